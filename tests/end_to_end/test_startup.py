"""
C{twistd suto} as operators run it, in a process of its own: a server
that cannot serve stops at start with one line and a non-zero exit,
before anything is served.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from suto_server.datalock import DataFolderLock

#: How long a server may take to refuse to start.
TIMEOUT = 60


def twistd(*arguments, cwd):
    """
    Run C{twistd} with C{arguments} in the folder C{cwd} until it exits.

    @return: its L{subprocess.CompletedProcess}, output as text.
    """
    return subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         *arguments],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


class StartupFixture:
    """
    A working folder and a data folder in it, and the arguments of a
    server on them that listens on loopback only and sends no hellos
    anywhere that answers.
    """

    def setUp(self):
        self.cwd = tempfile.mkdtemp(prefix="suto-start-")
        self.addCleanup(shutil.rmtree, self.cwd, True)
        self.data = os.path.join(self.cwd, "data")

    def suto(self, *arguments, listen="tcp:0:interface=127.0.0.1"):
        return (
            "suto", "--data", self.data, "--listen", listen,
            "--hello-port", "9", *arguments,
        )


class DataFolderInUseTests(StartupFixture, SynchronousTestCase):
    """
    A second server on a data folder already in use stops at start.
    """

    def test_second_server_refused(self):
        """
        While a server holds the data folder, another started on it exits
        non-zero with one line naming the folder and the holder's pid.
        """
        os.makedirs(self.data)
        lock = DataFolderLock.acquire(self.data)
        self.addCleanup(lock.release)
        result = twistd("--nodaemon", "--pidfile=", *self.suto(), cwd=self.cwd)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            f"suto: cannot start: the data folder {self.data} is in use by "
            f"the server with pid {os.getpid()}\n",
        )
