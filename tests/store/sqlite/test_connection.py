"""
Tests for L{suto_server.store.sqlite.connection}: what a reopened store
gives back, and how a failure of SQLite itself reaches callers.
"""

import sqlite3
from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.errors import StoreError
from suto_server.store.sqlite import SQLiteStore
from tests.support.sqlite_files import SQLiteFileCase
from tests.support.store_suite.values import (
    AUDIT,
    HASH,
    MOVE,
    OTHER_HASH,
    PROFILE,
    WINDOW,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
)


class SQLiteConnectionTests(SQLiteFileCase, SynchronousTestCase):
    """
    A store reopened on its file, and SQLite failing under it.
    """

    def test_sqlite_failure(self):
        """
        A failure of SQLite itself (here, another process holding the write
        lock) surfaces as L{StoreError}, and the store works again once the
        lock is released.
        """
        store = self.open_store()
        store._connection.execute("PRAGMA busy_timeout = 0")
        other = sqlite3.connect(self.path)
        other.execute("BEGIN IMMEDIATE")
        self.assertRaises(StoreError, store.add_user, "alice", HASH, 1000.0)
        other.rollback()
        other.close()
        store.add_user("alice", HASH, 1000.0)
        self.assertEqual(store.hash_for("alice"), HASH)

    def test_reopen_keeps_data(self):
        """
        Accounts written before closing are there after reopening.
        """
        store = SQLiteStore.open(self.path)
        store.add_user("alice", HASH, 1000.0)
        store.add_user("bob", OTHER_HASH, 1001.0)
        store.remove_user("bob")
        store.close()
        reopened = self.open_store()
        self.assertEqual(reopened.hash_for("alice"), HASH)
        self.assertEqual(
            [record.username for record in reopened.list_users()], ["alice"]
        )

    def test_reopen_keeps_enrollment_state(self):
        """
        Windows (with their absolute deadlines and attempt counts),
        profiles and the audit log written before closing are there after
        reopening, as they were.
        """
        store = SQLiteStore.open(self.path)
        bob = replace(WINDOW, username="bob", location_name=None)
        store.open_window(WINDOW)
        store.open_window(bob)
        store.record_failed_attempt("bob")
        store.complete_enrollment(PROFILE)
        store.open_window(replace(WINDOW, replace=True, deadline=1e9))
        store.append_audit(AUDIT)
        store.close()
        reopened = self.open_store()
        self.assertEqual(
            reopened.list_windows(),
            [
                replace(WINDOW, replace=True, deadline=1e9),
                replace(bob, attempts=1),
            ],
        )
        self.assertEqual(reopened.list_profiles(), [PROFILE])
        self.assertEqual(reopened.audit_events(), [AUDIT])

    def test_reopen_keeps_moves_and_chain(self):
        """
        Moves and the audit chain written before closing are there after
        reopening, and the chain goes on from its last record.
        """
        store = SQLiteStore.open(self.path)
        store.open_window(WINDOW)
        store.complete_enrollment(PROFILE)
        store.record_move(
            MOVE.username,
            MOVE.time,
            MOVE.old_address,
            MOVE.new_address,
            MOVE.old_location_name,
            MOVE.new_location_name,
        )
        first = store.append_audit(replace(AUDIT, locations=("lab",)))
        store.close()
        reopened = self.open_store()
        self.assertEqual(reopened.moves("alice"), [MOVE])
        self.assertEqual(
            [(e.locations, e.hash) for e in reopened.audit_events()],
            [(("lab",), first.hash)],
        )
        self.assertEqual(
            reopened.append_audit(AUDIT).previous_hash, first.hash
        )
        self.assertEqual(reopened.verify_audit(), [])

    def test_reopen_keeps_rotation_state(self):
        """
        Rotation state (the current and previous keys, the confirmation
        flag, times, address, failure count and retired keys) written
        before closing is there after reopening, as it was.
        """
        store = SQLiteStore.open(self.path)
        for name in ["alice", "bob"]:
            store.open_window(replace(WINDOW, username=name))
            store.complete_enrollment(
                replace(
                    PROFILE,
                    username=name,
                    key_sealed=numbered_seal(0),
                    key_id=numbered_key_id(0),
                )
            )
        for number in range(3):
            store.commit_rotations(
                [numbered_rotation("alice", number, number + 1, 2000.0)]
            )
        store.record_rotation_failure("alice")
        store.record_rotation_failure("bob")
        profiles = store.list_profiles()
        store.close()
        reopened = self.open_store()
        self.assertEqual(reopened.list_profiles(), profiles)
        alice = profiles[0]
        self.assertEqual(
            (
                alice.key_id,
                alice.previous_key_id,
                alice.current_confirmed,
                alice.rotation_failures,
            ),
            (numbered_key_id(3), numbered_key_id(2), False, 1),
        )
        self.assertEqual(
            [
                reopened.is_retired("alice", numbered_key_id(number))
                for number in range(4)
            ],
            [True, True, False, False],
        )
