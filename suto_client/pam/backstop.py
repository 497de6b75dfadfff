# -*- test-case-name: tests.client.pam.test_backstop -*-
"""
The hard deadline and the signals that end C{suto-pam} with a denial.

C{pam_exec} waits for its child without any limit, so a helper stuck in a
library call would hang every login.  The request itself carries the
deadline on the reactor's clock (L{suto_client.pam.verify}); behind it,
two backstops that hold whatever the code is doing:

 1. C{SIGALRM} one second after the deadline, whose handler writes the
    denial to the system log and leaves at once with L{DENIED}.  A Python
    handler runs as soon as the interpreter regains control, which a
    blocking system call grants it (it is interrupted with C{EINTR}).
 2. C{faulthandler}'s watchdog thread, two seconds later still, which
    calls C{_exit(1)} from C, even while the main thread is stuck inside
    a C function that never returns to the interpreter.  No log line is
    written then (nothing safe can be), but the exit is a denial all the
    same.

C{SIGINT} (Ctrl-C at the prompt: the helper is in the terminal's
foreground process group), C{SIGTERM}, C{SIGHUP} and C{SIGQUIT} deny at
once the same way; the terminal's stop signals (Ctrl-Z) are ignored, since
a stopped helper would hold the login past every deadline.

These are the operating system's timers, not a reactor's: they exist for
the case where the reactor is not running, so their tests run a real
process (C{tests.client.pam.test_backstop}).
"""

from __future__ import annotations

import faulthandler
import os
import signal
from collections.abc import Callable

#: The exit status of every denial.
DENIED = 1

#: Seconds between the deadline and the first backstop, and between the
#: first and the second.
GRACE = 1.0

_ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_STOPPING = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def arm(deadline: float, deny: Callable[[str, str], None], exit=os._exit) -> None:
    """
    Install the backstops for a decision due in C{deadline} seconds, and
    the handlers of the signals that end it.  Arming again replaces the
    timers (the configuration's deadline replaces the default one).

    @param deny: called with the kind of denial (C{deadline} or
        C{interrupted}) and the reason before leaving; it logs.
    @param exit: leaves the process with a status, without cleanup.
    """

    def leave(kind: str, reason: str) -> None:
        try:
            deny(kind, reason)
        finally:
            exit(DENIED)

    def on_alarm(number, frame) -> None:
        leave("deadline", f"the hard deadline of {deadline:g} s passed")

    def on_signal(number, frame) -> None:
        leave("interrupted", f"interrupted by {signal.Signals(number).name}")

    signal.signal(signal.SIGALRM, on_alarm)
    for number in _ENDING:
        signal.signal(number, on_signal)
    for number in _STOPPING:
        signal.signal(number, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, deadline + GRACE)
    # The watchdog dumps a traceback before its exit; it goes nowhere, as
    # it would show a user the helper's workings on the terminal.  The
    # watchdog holds a reference to the file, which stays open: were it
    # closed, its descriptor could be reused by a socket.
    faulthandler.dump_traceback_later(
        deadline + 2 * GRACE, exit=True, file=open(os.devnull, "w")  # noqa: SIM115
    )

