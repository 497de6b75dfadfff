"""
Tests for L{suto_server.datalock}: one server per data folder.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.datalock import LOCK_FILE, DataFolderLock, DataFolderLocked


class DataFolderLockTests(SynchronousTestCase):
    """
    L{DataFolderLock}: an exclusive lock on the data folder, naming its
    holder.
    """

    def setUp(self):
        self.folder = self.mktemp()
        os.makedirs(self.folder)

    def test_held_once(self):
        """
        While one lock on a folder is held, a second is refused, naming
        the folder and the pid holding it; once the first is released
        the folder can be locked again.
        """
        first = DataFolderLock.acquire(self.folder)
        error = self.assertRaises(DataFolderLocked, DataFolderLock.acquire, self.folder)
        self.assertEqual((error.folder, error.pid), (self.folder, os.getpid()))
        self.assertEqual(
            str(error),
            f"the data folder {self.folder} is in use by the server with pid "
            f"{os.getpid()}",
        )
        first.release()
        DataFolderLock.acquire(self.folder).release()

    def test_stopping_releases(self):
        """
        The lock is a service of the server: it names the serving process
        when started and lets the folder go when stopped.
        """
        lock = DataFolderLock.acquire(self.folder)
        lock.privilegedStartService()
        lock.startService()
        with open(os.path.join(self.folder, LOCK_FILE)) as handle:
            self.assertEqual(handle.read(), f"{os.getpid()}\n")
        lock.stopService()
        DataFolderLock.acquire(self.folder).release()

    def test_holder_unknown(self):
        """
        A lock file naming no process still refuses, saying another
        server holds the folder.
        """
        first = DataFolderLock.acquire(self.folder)
        self.addCleanup(first.release)
        with open(os.path.join(self.folder, LOCK_FILE), "w") as handle:
            handle.write("")
        error = self.assertRaises(DataFolderLocked, DataFolderLock.acquire, self.folder)
        self.assertIsNone(error.pid)
        self.assertIn("in use by another server", str(error))

    def test_private(self):
        """
        The lock file is its owner's alone, like the rest of the folder.
        """
        DataFolderLock.acquire(self.folder).release()
        mode = os.stat(os.path.join(self.folder, LOCK_FILE)).st_mode
        self.assertEqual(mode & 0o777, 0o600)
