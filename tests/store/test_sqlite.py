"""
Tests for L{suto_server.store.sqlite}: every shared store suite, run
against L{SQLiteStore}, and what only a database can get wrong (a
transaction half done, a write lock held by another process).  The life
of the database file is tested in C{tests/store/sqlite/}.
"""

import os
import sqlite3
from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.errors import StoreError
from suto_server.store.sqlite import SQLiteStore
from tests.support.store_suite.accounts import AccountStoreTestsMixin
from tests.support.store_suite.audit import AuditStoreTestsMixin
from tests.support.store_suite.blacklist import BlacklistStoreTestsMixin
from tests.support.store_suite.keys import KeyStoreTestsMixin
from tests.support.store_suite.lifecycle import StoreTestsMixin
from tests.support.store_suite.locations import LocationStoreTestsMixin
from tests.support.store_suite.moves import MoveStoreTestsMixin
from tests.support.store_suite.offline import OfflineStoreTestsMixin
from tests.support.store_suite.profiles import ProfileStoreTestsMixin
from tests.support.store_suite.rotation import RotationStoreTestsMixin
from tests.support.store_suite.values import (
    PROFILE,
    WINDOW,
    numbered_key_id,
    numbered_rotation,
)
from tests.support.store_suite.windows import WindowStoreTestsMixin


class _OnSQLite:
    """
    Runs a shared store suite on a L{SQLiteStore}.
    """

    def make_store(self):
        """
        @return: a L{SQLiteStore} on a new file in a folder of its own.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        return SQLiteStore.open(os.path.join(directory, "suto.db"))


class SQLiteStoreTests(_OnSQLite, StoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of the store's lifecycle, run against L{SQLiteStore}.
    """


class SQLiteAccountStoreTests(_OnSQLite, AccountStoreTestsMixin, SynchronousTestCase):
    """
    The shared account store suite, run against L{SQLiteStore}.
    """


class SQLiteProfileStoreTests(_OnSQLite, ProfileStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of profile records, run against L{SQLiteStore}.
    """


class SQLiteLocationStoreTests(
    _OnSQLite, LocationStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of the profiles' locations, run against L{SQLiteStore}.
    """


class SQLiteAuditStoreTests(_OnSQLite, AuditStoreTestsMixin, SynchronousTestCase):
    """
    The shared audit log suite, run against L{SQLiteStore}.
    """


class SQLiteKeyStoreTests(_OnSQLite, KeyStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of key confirmation and roll-back, run against
    L{SQLiteStore}.
    """


class SQLiteBlacklistStoreTests(
    _OnSQLite, BlacklistStoreTestsMixin, SynchronousTestCase
):
    """
    The shared blacklist suite, run against L{SQLiteStore}.
    """


class SQLiteWindowStoreTests(_OnSQLite, WindowStoreTestsMixin, SynchronousTestCase):
    """
    The shared enrollment window suite, run against L{SQLiteStore}, and
    what only a database can get wrong in using a window up.
    """

    def test_complete_enrollment_is_one_transaction(self):
        """
        When storing the profile fails after the window was deleted (here a
        trigger stands for a full disk), L{StoreError} is raised and the
        window deletion is rolled back with it: the window is still open
        and no profile is stored.  The store works on afterwards.
        """
        self.store.open_window(WINDOW)
        self.store._connection.execute(
            "CREATE TEMP TRIGGER fail BEFORE INSERT ON profiles"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        self.assertRaises(
            StoreError, self.store.complete_enrollment, PROFILE
        )
        self.assertEqual(self.store.list_windows(), [WINDOW])
        self.assertEqual(self.store.list_profiles(), [])
        self.store._connection.execute("DROP TRIGGER fail")
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.list_profiles(), [PROFILE])
        self.assertEqual(self.store.list_windows(), [])

    def test_replacing_is_one_transaction(self):
        """
        When storing the replacement profile fails, the old profile, which
        was deleted first in the same transaction, is back, and so is the
        window.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        window = replace(WINDOW, replace=True)
        self.store.open_window(window)
        self.store._connection.execute(
            "CREATE TEMP TRIGGER fail BEFORE INSERT ON profiles"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        self.assertRaises(
            StoreError,
            self.store.complete_enrollment,
            replace(PROFILE, key_id="f" * 32),
        )
        self.assertEqual(self.store.list_windows(), [window])
        self.assertEqual(self.store.list_profiles(), [PROFILE])

    def test_write_lock_held(self):
        """
        While another process holds the write lock, completing an
        enrollment and counting a failed attempt raise L{StoreError} and
        change nothing; once the lock is released they work.
        """
        self.store.open_window(WINDOW)
        self.store._connection.execute("PRAGMA busy_timeout = 0")
        path = self.store._connection.execute(
            "PRAGMA database_list"
        ).fetchone()[2]
        other = sqlite3.connect(path)
        other.execute("BEGIN IMMEDIATE")
        self.assertRaises(
            StoreError, self.store.complete_enrollment, PROFILE
        )
        self.assertRaises(
            StoreError, self.store.record_failed_attempt, "alice"
        )
        other.rollback()
        other.close()
        self.assertEqual(self.store.list_windows(), [WINDOW])
        self.assertEqual(self.store.record_failed_attempt("alice"), 1)
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.list_profiles(), [PROFILE])


class SQLiteRotationStoreTests(_OnSQLite, RotationStoreTestsMixin, SynchronousTestCase):
    """
    The shared rotation store suite, run against L{SQLiteStore}, and what
    only a database can get wrong.
    """

    def test_batch_is_one_transaction(self):
        """
        A batch of rotations, some applied and some refused as stale, is
        written in one transaction: SQLite runs exactly one C{BEGIN} and
        one C{COMMIT} for it, so one sync to disk serves the whole batch.
        """
        self.enroll("carol")
        statements = []
        self.store._connection.set_trace_callback(statements.append)
        results = self.store.commit_rotations(
            [
                numbered_rotation("alice", 0, 1, 2000.0),
                numbered_rotation("bob", 3, 4, 2000.0),
                numbered_rotation("carol", 0, 1, 2000.0),
                numbered_rotation("alice", 0, 2, 2000.0),
            ]
        )
        self.store._connection.set_trace_callback(None)
        self.assertEqual(results, [True, False, True, False])
        self.assertEqual(
            [
                statement
                for statement in statements
                if statement.split()[0].upper()
                in ("BEGIN", "COMMIT", "ROLLBACK")
            ],
            ["BEGIN IMMEDIATE", "COMMIT"],
        )

    def test_batch_fails_whole(self):
        """
        When writing one rotation of a batch fails (here a trigger stands
        for a full disk), L{StoreError} is raised and the rotations before
        it in the batch are rolled back too, retired keys included.  The
        store works on afterwards.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        self.store._connection.execute(
            "CREATE TEMP TRIGGER fail BEFORE UPDATE ON profiles"
            " WHEN NEW.username = 'bob'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        batch = [
            numbered_rotation("alice", 1, 2, 2100.0),
            numbered_rotation("bob", 0, 1, 2100.0),
        ]
        self.assertRaises(StoreError, self.store.commit_rotations, batch)
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0])
        self.store._connection.execute("DROP TRIGGER fail")
        self.assertEqual(self.store.commit_rotations(batch), [True, True])
        self.assert_retired("alice", [0])

    def test_write_lock_held(self):
        """
        While another process holds the write lock, every rotation write
        raises L{StoreError} and changes nothing; once the lock is
        released they work.
        """
        connection = self.store._connection
        connection.execute("PRAGMA busy_timeout = 0")
        path = connection.execute("PRAGMA database_list").fetchone()[2]
        other = sqlite3.connect(path)
        other.execute("BEGIN IMMEDIATE")
        key_id = numbered_key_id(0)
        calls = [
            lambda: self.store.commit_rotations(
                [numbered_rotation("alice", 0, 1, 1.0)]
            ),
            lambda: self.store.confirm_current("bob", key_id, 1.0, "::1"),
            lambda: self.store.roll_back("bob", key_id, 1.0, "::1"),
            lambda: self.store.record_rotation_failure("bob"),
        ]
        for call in calls:
            self.assertRaises(StoreError, call)
        other.rollback()
        other.close()
        self.assertEqual(
            self.store.list_profiles(),
            [self.enrolled("alice"), self.enrolled("bob")],
        )
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(self.store.record_rotation_failure("bob"), 1)


class SQLiteMoveStoreTests(_OnSQLite, MoveStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of moves, run against L{SQLiteStore}.
    """


class SQLiteOfflineStoreTests(_OnSQLite, OfflineStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of offline spells, run against L{SQLiteStore}.
    """
