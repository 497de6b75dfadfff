"""
Tests for L{suto_client.pam.backstop}: the operating system's timers and
signals end a stuck helper with a denial.

They exist for a process whose reactor is not running, so each test runs
a real one: a child interpreter arms the backstop with a deadline of a
fraction of a second and then blocks, and the test checks how it ended.
"""

from __future__ import annotations

import subprocess
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

_CHILD = """
import os, select, signal, sys
from suto_client.pam import backstop
backstop.arm(0.2, lambda kind, reason: print(kind, "-", reason, flush=True))
if sys.argv[1] == "blocked":
    # SIGALRM cannot reach the interpreter: only the C watchdog is left.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
elif sys.argv[1] == "interrupt":
    os.kill(os.getpid(), signal.SIGINT)
elif sys.argv[1] == "stop":
    os.kill(os.getpid(), signal.SIGTSTP)
# A call that never returns by itself: only a backstop ends the process.
select.select([], [], [])
"""


def _run(mode: str) -> tuple[int, str, float]:
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, mode],
        capture_output=True,
        text=True,
        timeout=25,
    )
    return child.returncode, child.stdout, time.monotonic() - started


class BackstopTests(SynchronousTestCase):
    def test_alarm(self):
        """
        A helper stuck in a blocking call is denied, with the reason
        logged, a second after its deadline.
        """
        status, output, took = _run("sleep")
        self.assertEqual(status, 1)
        self.assertEqual(output, "deadline - the hard deadline of 0.2 s passed\n")
        self.assertLess(took, 10)

    def test_watchdog(self):
        """
        A helper that the alarm cannot reach is still ended, by the
        watchdog thread, with a denying status and nothing printed.
        """
        status, output, took = _run("blocked")
        self.assertEqual(status, 1)
        self.assertEqual(output, "")
        self.assertLess(took, 10)

    def test_interrupted(self):
        """
        Ctrl-C (SIGINT) at the prompt denies at once.
        """
        status, output, _ = _run("interrupt")
        self.assertEqual(status, 1)
        # Not the alarm's reason: the signal ended it before its deadline.
        self.assertEqual(output, "interrupted - interrupted by SIGINT\n")

    def test_not_stopped(self):
        """
        Ctrl-Z (SIGTSTP) does not stop the helper: its deadline holds.
        """
        status, output, took = _run("stop")
        self.assertEqual(status, 1)
        self.assertEqual(output, "deadline - the hard deadline of 0.2 s passed\n")
        self.assertLess(took, 10)
