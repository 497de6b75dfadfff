"""
Tests for L{suto_server.store.postgres}: every shared store suite, run
against L{PostgresStore} on a real PostgreSQL server
(L{tests.support.postgres}), and what only a database server can get
wrong (a transaction half done, a row locked by another session).  The
life of the schema is tested in C{tests/store/postgres/}.
"""

import threading
import time
from dataclasses import replace

import psycopg
from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.errors import StoreError
from suto_server.store.postgres import PostgresStore
from tests.support.postgres import admin_connection, new_location
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
    AUDIT,
    HASH,
    PROFILE,
    WINDOW,
    numbered_key_id,
    numbered_rotation,
)
from tests.support.store_suite.windows import WindowStoreTestsMixin

# A trigger function that fails the statement it fires on, standing for a
# full disk.
_FAIL = (
    "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left'; END $$"
)


class _OnPostgres:
    """
    Runs a shared store suite on a L{PostgresStore}.
    """

    def make_store(self):
        """
        @return: a L{PostgresStore} in a new schema of its own.
        """
        self.location = new_location(self)
        return PostgresStore.open(self.location)

    def fail_on(self, when, table="profiles", condition="true"):
        """
        Make every change to a row of C{table} C{when} (say,
        C{"BEFORE INSERT"}) fail where C{condition} holds, as a full disk
        would, until L{heal} is called.
        """
        self.store._connection.execute(_FAIL)
        self.store._connection.execute(
            f"CREATE TRIGGER fail {when} ON {table} FOR EACH ROW"
            f" WHEN ({condition}) EXECUTE FUNCTION fail()"
        )

    def heal(self, table="profiles"):
        """
        Undo L{fail_on}.
        """
        self.store._connection.execute(f"DROP TRIGGER fail ON {table}")

    def other_session(self):
        """
        @return: another session on the store's database, outside the
            store, in a transaction of its own; closed after the test.
        """
        other = psycopg.connect(self.location)
        self.addCleanup(other.close)
        return other


class PostgresStoreTests(_OnPostgres, StoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of the store's lifecycle, run against L{PostgresStore},
    and the server going away under it.
    """

    def test_lost_connection(self):
        """
        When the server ends the store's idle session, the next call
        finds it ended before using it, and works on a new session (the
        server stopping and failing over are in
        C{tests/store/postgres/test_outage.py}).
        """
        self.store.add_user("alice", HASH, 1.0)
        pid = self.store._connection.info.backend_pid
        # Waiting (up to 10 s) for the session to be gone.
        admin_connection().execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertNotEqual(self.store._connection.info.backend_pid, pid)

    def test_unreachable(self):
        """
        A server that cannot be reached makes opening the store raise
        L{StoreError}.
        """
        self.assertRaises(
            StoreError,
            PostgresStore.open,
            "postgresql://suto@/suto?host=/nonexistent&connect_timeout=1",
        )


class PostgresAccountStoreTests(
    _OnPostgres, AccountStoreTestsMixin, SynchronousTestCase
):
    """
    The shared account store suite, run against L{PostgresStore}.
    """


class PostgresLocationStoreTests(
    _OnPostgres, LocationStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of the profiles' locations, run against L{PostgresStore}.
    """


class PostgresProfileStoreTests(
    _OnPostgres, ProfileStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of profile records, run against L{PostgresStore}.
    """


class PostgresAuditStoreTests(_OnPostgres, AuditStoreTestsMixin, SynchronousTestCase):
    """
    The shared audit log suite, run against L{PostgresStore}, with
    appenders that really run at once, and records removed behind the
    store's back.
    """

    def test_concurrent_appends_one_chain(self):
        """
        Two threads appending through siblings of their own, each on its
        own session, take turns: the log is one unbroken chain of all
        their events.
        """

        def append(count):
            sibling = self.store.sibling()
            try:
                for number in range(count):
                    sibling.append_audits(
                        [replace(AUDIT, time=float(number))] * 2
                    )
            finally:
                sibling.close()

        threads = [threading.Thread(target=append, args=(20,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(len(self.store.audit_events()), 80)
        self.assertEqual(self.store.verify_audit(), [])

    def test_removed_records(self):
        """
        Records deleted from the middle and from the end of the log show
        in L{verify_audit}, even once more were appended after them.
        """
        self.store.append_audits([AUDIT] * 4)
        self.store._connection.execute("DELETE FROM audit WHERE id IN (2, 4)")
        self.store.append_audit(AUDIT)
        self.assertEqual(
            self.store.verify_audit(),
            [
                (
                    "record 2 does not follow record 1: a record between them "
                    "was removed, or the one before rewritten"
                ),
                "the record of id 2 was removed",
                "the record of id 4 was removed",
            ],
        )

    def test_failed_append_gives_no_ids(self):
        """
        An append that fails (here, storing the records) gives out no
        ids: the next append follows on, and the log verifies.
        """
        self.store.append_audit(AUDIT)
        self.fail_on("BEFORE INSERT", table="audit")
        self.assertRaises(StoreError, self.store.append_audits, [AUDIT] * 3)
        self.heal(table="audit")
        self.store.append_audit(AUDIT)
        self.assertEqual(len(self.store.audit_events()), 2)
        self.assertEqual(self.store.verify_audit(), [])


class PostgresKeyStoreTests(_OnPostgres, KeyStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of key confirmation and roll-back, run against
    L{PostgresStore}.
    """


class PostgresBlacklistStoreTests(
    _OnPostgres, BlacklistStoreTestsMixin, SynchronousTestCase
):
    """
    The shared blacklist suite, run against L{PostgresStore}.
    """


class PostgresWindowStoreTests(
    _OnPostgres, WindowStoreTestsMixin, SynchronousTestCase
):
    """
    The shared enrollment window suite, run against L{PostgresStore}, and
    what only a database can get wrong in using a window up.
    """

    def test_complete_enrollment_is_one_transaction(self):
        """
        When storing the profile fails after the window was deleted,
        L{StoreError} is raised and the window deletion is rolled back with
        it: the window is still open and no profile is stored.  The store
        works on afterwards.
        """
        self.store.open_window(WINDOW)
        self.fail_on("BEFORE INSERT")
        self.assertRaises(StoreError, self.store.complete_enrollment, PROFILE)
        self.assertEqual(self.store.list_windows(), [WINDOW])
        self.assertEqual(self.store.list_profiles(), [])
        self.heal()
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
        self.fail_on("BEFORE INSERT")
        self.assertRaises(
            StoreError,
            self.store.complete_enrollment,
            replace(PROFILE, key_id="f" * 32),
        )
        self.assertEqual(self.store.list_windows(), [window])
        self.assertEqual(self.store.list_profiles(), [PROFILE])


class PostgresRotationStoreTests(
    _OnPostgres, RotationStoreTestsMixin, SynchronousTestCase
):
    """
    The shared rotation store suite, run against L{PostgresStore}, and
    what only a database can get wrong.
    """

    def test_batch_fails_whole(self):
        """
        When writing one rotation of a batch fails, L{StoreError} is
        raised and the rotations before it in the batch are rolled back
        too, retired keys included.  The store works on afterwards.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        self.fail_on("BEFORE UPDATE", condition="NEW.username = 'bob'")
        batch = [
            numbered_rotation("alice", 1, 2, 2100.0),
            numbered_rotation("bob", 0, 1, 2100.0),
        ]
        self.assertRaises(StoreError, self.store.commit_rotations, batch)
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0])
        self.heal()
        self.assertEqual(self.store.commit_rotations(batch), [True, True])
        self.assert_retired("alice", [0])

    def test_row_locked(self):
        """
        While another session holds a profile's row, a rotation of it
        waits, and here, with a lock timeout, raises L{StoreError} and
        changes nothing; once the row is released it commits.  This is
        what keeps two processes from both applying a compare-and-swap
        to the same key.
        """
        other = self.other_session()
        other.execute("SELECT 1 FROM profiles WHERE username = 'alice' FOR UPDATE")
        self.store._connection.execute("SET lock_timeout = '50ms'")
        self.assertRaises(
            StoreError,
            self.store.commit_rotations,
            [numbered_rotation("alice", 0, 1, 2000.0)],
        )
        self.assertRaises(StoreError, self.store.record_rotation_failure, "alice")
        other.rollback()
        self.assertEqual(
            self.store.list_profiles(),
            [self.enrolled("alice"), self.enrolled("bob")],
        )
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(self.store.record_rotation_failure("alice"), 1)

    def test_key_moved_while_waiting(self):
        """
        A rotation that waits for a profile's row while another session
        moves its key (another process's rotation) then finds the key
        gone: it applies nothing, retires no key, and leaves the offline
        spell, all in the batch's one round trip.  PostgreSQL checks the
        compare-and-swap's condition again on the row as it was committed
        meanwhile.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.store.mark_offline(["alice"], 2050.0)
        other = self.other_session()
        other.execute(
            "UPDATE profiles SET previous_key_id = key_id, key_id = %s,"
            " generation = 2 WHERE username = 'alice'",
            (numbered_key_id(5),),
        )
        results = []
        rotation = threading.Thread(
            target=lambda: results.append(
                self.store.commit_rotations([numbered_rotation("alice", 1, 2, 2100.0)])
            )
        )
        rotation.start()
        self.addCleanup(rotation.join)
        watcher = admin_connection()
        other_pid = other.info.backend_pid
        deadline = time.monotonic() + 10
        while not watcher.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE %s = ANY(pg_blocking_pids(pid))",
            (other_pid,),
        ).fetchone()[0]:
            self.assertLess(time.monotonic(), deadline, "the rotation never waited")
        other.commit()
        rotation.join()
        self.assertEqual(results, [[False]])
        self.assert_retired("alice", [], kept=[0, 1])
        self.assertEqual(self.store.offline_since("alice"), 2050.0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation), (numbered_key_id(5), 2)
        )


class PostgresMoveStoreTests(_OnPostgres, MoveStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of moves, run against L{PostgresStore}.
    """


class PostgresOfflineStoreTests(
    _OnPostgres, OfflineStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of offline spells, run against L{PostgresStore}.
    """
