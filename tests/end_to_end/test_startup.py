"""
C{twistd suto} as operators run it, in a process of its own: a server
that cannot serve stops at start with one line and a non-zero exit,
before anything is served.
"""

import os
import socket
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server import tap
from suto_server.datafolder import ADMIN_SOCKET
from suto_server.datalock import DataFolderLock
from tests.support.folders import socket_folder

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
        self.cwd = socket_folder(self, "suto-start-")
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


class ListenerTakenTests(StartupFixture, SynchronousTestCase):
    """
    A server whose TLS port another socket holds stops at start, in the
    foreground and daemonized, with one line and exit status 1.
    """

    def setUp(self):
        super().setUp()
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        self.port = taken.getsockname()[1]
        self.line = f"--listen ssl:{self.port}: address already in use"

    def start(self, *twistd_arguments):
        # All interfaces: binding them conflicts with the loopback socket.
        return twistd(
            *twistd_arguments, *self.suto(listen=f"ssl:{self.port}"), cwd=self.cwd
        )

    def test_foreground(self):
        """
        In the foreground (as systemd runs it), twistd exits 1 and its log
        ends with the one line, once, with no traceback.
        """
        result = self.start("--nodaemon", "--pidfile=")
        self.assertEqual(result.returncode, 1)
        output = result.stdout + result.stderr
        self.assertTrue(
            output.rstrip("\n").endswith(f"suto: cannot start: {self.line}"), output
        )
        self.assertEqual(output.count("cannot start"), 1)
        self.assertNotIn("Traceback", output)

    def test_daemonized(self):
        """
        Daemonized, the process the operator started exits 1 with the
        line, as twistd reports the daemon's failure to start.  (The
        daemon then writes the line to its log file too, but it may do so
        after this process has exited.)
        """
        result = self.start("--pidfile=twistd.pid", "--logfile=twistd.log")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"CannotListen: {self.line}'", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


class AdminSocketPathTests(StartupFixture, SynchronousTestCase):
    """
    A data folder whose admin socket's path is longer than a UNIX socket
    address holds stops the server at start.
    """

    def test_too_long(self):
        """
        The server exits 1 with one line naming the admin socket and
        why, rather than serving devices with no admin API.
        """
        self.data = os.path.join(self.cwd, "d" * 120)
        result = twistd("--nodaemon", "--pidfile=", *self.suto(), cwd=self.cwd)
        self.assertEqual(result.returncode, 1)
        output = result.stdout + result.stderr
        socket_path = os.path.join(self.data, ADMIN_SOCKET)
        self.assertTrue(
            output.rstrip("\n").endswith(
                "suto: cannot start: the admin socket in --data "
                f"unix:{socket_path}:mode=600:lockfile=1: AF_UNIX path too long"
            ),
            output,
        )
        self.assertNotIn("Traceback", output)


class PrivateFilesTests(StartupFixture, TestCase):
    """
    What the running daemon leaves where other users could look: its data
    folder and admin socket are its owner's alone.
    """

    def test_admin_socket_and_data_folder(self):
        """
        Once the daemon's service has started, its admin socket is mode
        0600 and its data folder 0700, whatever the umask lets through.
        """
        os.makedirs(self.data, mode=0o777)
        os.chmod(self.data, 0o777)
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        options = tap.Options()
        options.parseOptions(list(self.suto()[1:]))
        server = tap.makeService(options)
        server.startService()
        self.addCleanup(server.stopService)
        socket_mode = os.stat(os.path.join(self.data, ADMIN_SOCKET)).st_mode
        self.assertEqual(socket_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.data).st_mode & 0o777, 0o700)
