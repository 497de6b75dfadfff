"""
Tests for L{suto_server.tap}: what C{twistd suto} checks before it builds
the server, and the data folder it builds it on.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.datalock import DataFolderLock


def options(*arguments):
    """
    Parsed L{tap.Options}: C{arguments} after a server that sends hellos
    nowhere that answers.
    """
    parsed = tap.Options()
    parsed.parseOptions(["--hello-port", "9", *arguments])
    return parsed


class DataFolderTests(SynchronousTestCase):
    """
    The data folder: private, and one server's alone.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())

    def make(self, *arguments):
        server = tap.makeService(
            options("--data", self.data, "--listen", "tcp:0", *arguments)
        )
        self.addCleanup(server.store.close)
        return server

    def test_private(self):
        """
        The server makes its data folder its owner's alone (0700), also
        when the folder was there before, open to others.
        """
        os.makedirs(self.data, mode=0o755)
        os.chmod(self.data, 0o755)
        server = self.make()
        self.addCleanup(server.namedServices["data folder lock"].release)
        self.assertEqual(os.stat(self.data).st_mode & 0o777, 0o700)

    def test_locked_before_built(self):
        """
        A data folder another server holds stops the server at start with
        one line, before its store is opened.
        """
        os.makedirs(self.data)
        lock = DataFolderLock.acquire(self.data)
        self.addCleanup(lock.release)
        error = self.assertRaises(
            SystemExit,
            tap.makeService,
            options("--data", self.data),
        )
        self.assertEqual(
            error.code,
            f"suto: cannot start: the data folder {self.data} is in use by the "
            f"server with pid {os.getpid()}",
        )
        self.assertFalse(os.path.exists(os.path.join(self.data, tap.DATABASE_FILE)))

    def test_held_while_running(self):
        """
        The server holds its data folder's lock as one of its services,
        and lets it go when it fails to build.
        """
        server = self.make()
        lock = server.namedServices["data folder lock"]
        self.assertIsInstance(lock, DataFolderLock)
        self.assertRaises(SystemExit, tap.makeService, options("--data", self.data))
        lock.release()
        self.assertRaises(
            SystemExit,
            tap.makeService,
            options("--data", self.data, "--shadow", self.mktemp()),
        )
        DataFolderLock.acquire(self.data).release()
