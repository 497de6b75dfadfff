"""
Tests for L{suto_server.restoration}: a restored set of files lands whole
or not at all, whatever moment a crash picks.
"""

import os
import shutil

from twisted.trial.unittest import SynchronousTestCase

from suto_server import restoration
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.restoration import (
    JOURNAL,
    MANIFEST,
    finish_restore,
    restore_files,
)


class Crash(Exception):
    """
    The power cut: raised where the test stops the world.
    """


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


class RestoreTests(SynchronousTestCase):
    """
    L{restore_files} and L{finish_restore} on a data folder that holds an
    old set (store, master key, a stale write-ahead log) and a backup
    holding a new one.
    """

    def setUp(self):
        self.data = self.mktemp()
        self.backup = self.mktemp()
        os.makedirs(self.data)
        os.makedirs(self.backup)
        for name in (DATABASE_FILE, MASTER_KEY_FILE):
            _write(os.path.join(self.data, name), b"old " + name.encode())
            _write(os.path.join(self.backup, name), b"new " + name.encode())
        _write(os.path.join(self.data, f"{DATABASE_FILE}-wal"), b"old log")
        self.files = {
            DATABASE_FILE: (os.path.join(self.backup, DATABASE_FILE), 0o600),
            MASTER_KEY_FILE: (os.path.join(self.backup, MASTER_KEY_FILE), 0o400),
        }

    def contents(self):
        """
        @return: the set the data folder holds: each file's content, the
            write-ahead log's presence, and whether a journal is left.
        """
        return (
            _read(os.path.join(self.data, DATABASE_FILE)),
            _read(os.path.join(self.data, MASTER_KEY_FILE)),
            os.path.exists(os.path.join(self.data, f"{DATABASE_FILE}-wal")),
            os.path.exists(os.path.join(self.data, JOURNAL)),
        )

    NEW = (b"new suto.db", b"new master.key", False, False)
    OLD = (b"old suto.db", b"old master.key", True, False)

    def crash_at(self, function, calls):
        """
        Restore, the C{calls}-th call of C{os.<function>} cutting the power
        (the earlier calls happen; nothing runs after it).
        """
        real, rmtree = getattr(os, function), shutil.rmtree
        seen = []

        def failing(*args, **kwargs):
            seen.append(args)
            if len(seen) == calls:
                raise Crash()
            return real(*args, **kwargs)

        self.patch(restoration.os, function, failing)
        # Nothing runs after a power cut: not even the clean-up of a
        # journal that was never committed.
        self.patch(restoration.shutil, "rmtree", lambda path, **kwargs: None)
        self.assertRaises(Crash, restore_files, self.data, self.files)
        self.patch(restoration.os, function, real)
        self.patch(restoration.shutil, "rmtree", rmtree)

    def test_whole_set(self):
        """
        Every file is replaced with its mode, the stale write-ahead log
        goes, and no journal is left.
        """
        restore_files(self.data, self.files)
        self.assertEqual(self.contents(), self.NEW)
        mode = os.stat(os.path.join(self.data, MASTER_KEY_FILE)).st_mode
        self.assertEqual(mode & 0o777, 0o400)

    def test_crash_before_commit(self):
        """
        A crash while the files are staged leaves the old set as it was;
        the next settlement throws the staged files away and says no
        restore was carried through.
        """
        self.crash_at("replace", 2)
        self.assertEqual(self.contents(), self.OLD[:3] + (True,))
        self.assertFalse(finish_restore(self.data))
        self.assertEqual(self.contents(), self.OLD)

    def test_crash_after_commit(self):
        """
        A crash between two renames into place, after the manifest is
        written, leaves a mixed folder that the next settlement completes
        into the new set.
        """
        self.crash_at("rename", 2)
        self.assertEqual(
            _read(os.path.join(self.data, DATABASE_FILE)), b"new suto.db"
        )
        self.assertEqual(
            _read(os.path.join(self.data, MASTER_KEY_FILE)), b"old master.key"
        )
        self.assertTrue(finish_restore(self.data))
        self.assertEqual(self.contents(), self.NEW)

    def test_crash_before_first_move(self):
        """
        A crash right after the commit point, before any file moved,
        still ends in the new set.
        """
        self.crash_at("rename", 1)
        self.assertEqual(
            self.contents()[:2], (b"old suto.db", b"old master.key")
        )
        self.assertTrue(finish_restore(self.data))
        self.assertEqual(self.contents(), self.NEW)

    def test_next_restore_settles(self):
        """
        A restore that finds a committed journal of an earlier one
        carries it through before its own set, which wins.
        """
        self.crash_at("rename", 2)
        newer = os.path.join(self.backup, "newer.key")
        _write(newer, b"newer key")
        restore_files(self.data, {MASTER_KEY_FILE: (newer, 0o400)})
        self.assertEqual(
            self.contents(), (b"new suto.db", b"newer key", False, False)
        )

    def test_nothing_to_settle(self):
        """
        A data folder without a journal is left alone.
        """
        self.assertFalse(finish_restore(self.data))
        self.assertEqual(self.contents(), self.OLD)

    def test_damaged_manifest(self):
        """
        A manifest naming anything but a plain file of the data folder is
        refused before a file moves.
        """
        journal = os.path.join(self.data, JOURNAL)
        os.makedirs(journal)
        _write(os.path.join(journal, "passwd"), b"x")
        _write(os.path.join(journal, MANIFEST), b"../passwd\n")
        error = self.assertRaises(OSError, finish_restore, self.data)
        self.assertIn("../passwd", str(error))
        self.assertEqual(self.contents()[:3], self.OLD[:3])
