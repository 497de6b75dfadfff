"""
Tests for L{suto_server.store.sqlite}: the shared store suites, and the
life of the database file (creation, reopening, corruption, versions,
upgrades).
"""

import os
import re
import shutil
import sqlite3
import stat
from dataclasses import replace

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import schemes
from suto_server.store import chain
from suto_server.store import sqlite as store_sqlite
from suto_server.store.errors import (
    CorruptDatabase,
    DatabaseTooNew,
    StoreError,
)
from suto_server.store.records import RotationCommit
from suto_server.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.support.store_suite.accounts import AccountStoreTestsMixin
from tests.support.store_suite.audit import AuditStoreTestsMixin
from tests.support.store_suite.blacklist import BlacklistStoreTestsMixin
from tests.support.store_suite.keys import KeyStoreTestsMixin
from tests.support.store_suite.lifecycle import StoreTestsMixin
from tests.support.store_suite.moves import MoveStoreTestsMixin
from tests.support.store_suite.offline import OfflineStoreTestsMixin
from tests.support.store_suite.profiles import ProfileStoreTestsMixin
from tests.support.store_suite.rotation import RotationStoreTestsMixin
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
from tests.support.store_suite.windows import WindowStoreTestsMixin

_SHIPPED_SCHEMA_DIR = os.path.join(
    os.path.dirname(store_sqlite.__file__), "schema"
)
_SHIPPED_V1 = os.path.join(_SHIPPED_SCHEMA_DIR, "v1.sql")
_SHIPPED_TO_V2 = [
    os.path.join(_SHIPPED_SCHEMA_DIR, name)
    for name in ["v1.sql", "upgrade-to-v2.sql", "v2.sql"]
]
_SHIPPED_TO_V3 = _SHIPPED_TO_V2 + [
    os.path.join(_SHIPPED_SCHEMA_DIR, name)
    for name in ["upgrade-to-v3.sql", "v3.sql"]
]

# Later schema versions for the upgrade tests, each one step on from the
# one before; step 3 depends on step 2, so the steps must run in order.
_STEPS = [
    """
    CREATE TABLE keys
    (
     username TEXT NOT NULL REFERENCES users (username),
     key BLOB NOT NULL
    );
    """,
    "CREATE INDEX keys_by_user ON keys (username);",
]


_PUNCTUATION = re.compile(r"([(),;])")


def _mode(path):
    """
    @return: the permission bits of C{path}.
    """
    return stat.S_IMODE(os.stat(path).st_mode)


def _query(path, sql):
    """
    @return: all rows of C{sql} run on the database at C{path} through a
        connection of its own.
    """
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _version(path):
    """
    @return: the rows of the database's version table.
    """
    return _query(path, "SELECT version FROM version")


def _schema(path):
    """
    @return: the database's schema as SQLite records it, with whitespace
        normalised, so that schemas written differently can be compared.
    """
    rows = _query(
        path,
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master"
        " ORDER BY name",
    )
    return [
        (kind, name, table, " ".join(_PUNCTUATION.sub(r" \1 ", sql).split()))
        for kind, name, table, sql in rows
    ]


def _read_bytes(path):
    """
    @return: the contents of the file at C{path}.
    """
    with open(path, "rb") as f:
        return f.read()


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


class SQLiteFileTests(SynchronousTestCase):
    """
    How L{SQLiteStore.open} creates, checks and upgrades the database file.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.path = os.path.join(self.directory, "suto.db")

    def open_store(self, schema_dir=None):
        """
        @return: a store on C{self.path}, closed when the test ends.
        """
        store = SQLiteStore.open(self.path, schema_dir)
        self.addCleanup(store.close)
        return store

    def fake_schema_dir(self, version):
        """
        Write a schema directory that goes up to C{version}: the shipped
        v1 followed by the first C{version - 1} of L{_STEPS}, as full
        schemas and as upgrade scripts.

        @return: its path.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        full = _read_bytes(_SHIPPED_V1).decode("utf-8")
        for number in range(1, version + 1):
            if number > 1:
                step = _STEPS[number - 2]
                full += step
                self.write(directory, f"upgrade-to-v{number}.sql", step)
            self.write(directory, f"v{number}.sql", full)
        return directory

    def write(self, directory, name, text):
        """
        Write C{text} to the file C{name} in C{directory}.
        """
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)

    def test_fresh(self):
        """
        Opening a path with no file creates a database there, mode 0600, in
        write-ahead-log mode, whose version row is L{SCHEMA_VERSION} (4).
        While it is in use, its C{-wal} and C{-shm} files are 0600 too and
        no temporary file is left behind.
        """
        store = self.open_store()
        store.add_user("alice", HASH, 1000.0)
        self.assertEqual(SCHEMA_VERSION, 5)
        self.assertEqual(_version(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(_query(self.path, "PRAGMA journal_mode"), [("wal",)])
        self.assertEqual(
            sorted(os.listdir(self.directory)),
            ["suto.db", "suto.db-shm", "suto.db-wal"],
        )
        for name in os.listdir(self.directory):
            self.assertEqual(
                (name, _mode(os.path.join(self.directory, name))),
                (name, 0o600),
            )

    def test_connection_pragmas(self):
        """
        The store's connection enforces foreign keys and syncs fully on
        every commit.
        """
        store = self.open_store()
        connection = store._connection
        self.assertEqual(
            connection.execute("PRAGMA foreign_keys").fetchall(), [(1,)]
        )
        self.assertEqual(
            connection.execute("PRAGMA synchronous").fetchall(), [(2,)]
        )

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

    def test_upgrade_shipped_v2(self):
        """
        A database of the shipped v2 schema holding windows, profiles and
        audit events, opened with the shipped schema files, is backed up to
        C{<path>.bak-v2} and upgraded to L{SCHEMA_VERSION}: everything is
        kept, each profile as a device that has just enrolled (key
        confirmed, last seen when and where it enrolled), its schema equals
        a fresh database's, and rotation works on it.
        """
        v2 = self.mktemp()
        os.mkdir(v2)
        for path in _SHIPPED_TO_V2:
            shutil.copy(path, v2)
        SQLiteStore.open(self.path, v2).close()
        self.assertEqual(_version(self.path), [(2,)])
        bob = replace(PROFILE, username="bob", location_name=None)
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute(
                "INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    WINDOW.username,
                    WINDOW.otp_hash,
                    ",".join(WINDOW.networks),
                    WINDOW.location_name,
                    WINDOW.opened_at,
                    WINDOW.deadline,
                    WINDOW.attempts,
                    WINDOW.max_attempts,
                    0,
                ),
            )
            for profile in [PROFILE, bob]:
                connection.execute(
                    "INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        profile.username,
                        profile.fingerprint_hash,
                        profile.key_sealed,
                        profile.key_id,
                        profile.generation,
                        profile.enrolled_at,
                        profile.location,
                        profile.location_name,
                    ),
                )
            connection.execute(
                "INSERT INTO audit (time, event, username, source, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    AUDIT.time,
                    AUDIT.event,
                    AUDIT.username,
                    AUDIT.source,
                    AUDIT.reason,
                ),
            )
        connection.close()
        upgraded = self.open_store()
        self.assertEqual(_version(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(upgraded.list_windows(), [WINDOW])
        self.assertEqual(upgraded.list_profiles(), [PROFILE, bob])
        alice = upgraded.get_profile("alice")
        self.assertEqual(
            (
                alice.previous_key_id,
                alice.current_confirmed,
                alice.rotated_at,
                alice.last_seen,
                alice.last_address,
                alice.rotation_failures,
            ),
            (None, True, None, PROFILE.enrolled_at, PROFILE.location, 0),
        )
        self.assertEqual(upgraded.audit_events(), [AUDIT])
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(_schema(self.path), _schema(fresh_path))
        backup = self.path + ".bak-v2"
        self.assertEqual(_version(backup), [(2,)])
        self.assertEqual(
            _query(backup, "SELECT username FROM profiles ORDER BY username"),
            [("alice",), ("bob",)],
        )
        rotation = RotationCommit(
            username="bob",
            expected_key_id=bob.key_id,
            new_key_sealed=b"sealed 1",
            new_key_id=numbered_key_id(1),
            new_generation=1,
            now=3000.0,
            address="10.2.3.18",
        )
        self.assertEqual(upgraded.commit_rotations([rotation]), [True])
        self.assertTrue(
            upgraded.confirm_current(
                "bob", numbered_key_id(1), 3001.0, "10.2.3.18"
            )
        )
        self.assertTrue(upgraded.is_retired("bob", bob.key_id))
        upgraded.remove_profile("bob")
        self.assertFalse(upgraded.is_retired("bob", bob.key_id))

    def test_upgrade_shipped_v3(self):
        """
        A database of the shipped v3 schema holding audit records, opened
        with the shipped schema files, is backed up to C{<path>.bak-v3} and
        upgraded to L{SCHEMA_VERSION}: its records are kept, with no
        locations, and chained in the order they were appended (not the
        order of their times); the chain verifies, new records continue
        it, its schema equals a fresh database's, and moves can be
        recorded.
        """
        v3 = self.mktemp()
        os.mkdir(v3)
        for path in _SHIPPED_TO_V3:
            shutil.copy(path, v3)
        SQLiteStore.open(self.path, v3).close()
        self.assertEqual(_version(self.path), [(3,)])
        events = [
            replace(AUDIT, time=30.0),
            replace(AUDIT, time=10.0, username=None, source=None),
            replace(AUDIT, time=20.0, event="enrolled", reason=""),
            replace(AUDIT, time=20.0, event="clone_suspected"),
        ]
        connection = sqlite3.connect(self.path)
        with connection:
            for event in events:
                connection.execute(
                    "INSERT INTO audit (time, event, username, source, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        event.time,
                        event.event,
                        event.username,
                        event.source,
                        event.reason,
                    ),
                )
        connection.close()
        upgraded = self.open_store()
        self.assertEqual(_version(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(
            upgraded.audit_events(),
            [events[1], events[2], events[3], events[0]],
        )
        self.assertEqual(upgraded.verify_audit(), [])
        previous = chain.GENESIS
        expected = []
        for event in events:
            expected.append(chain.chained(previous, event))
            previous = expected[-1].hash
        self.assertEqual(
            _query(self.path, "SELECT id, previous_hash, hash FROM audit"),
            [
                (number, event.previous_hash, event.hash)
                for number, event in enumerate(expected, 1)
            ],
        )
        appended = upgraded.append_audit(AUDIT)
        self.assertEqual(appended.previous_hash, expected[-1].hash)
        self.assertEqual(
            _query(self.path, "SELECT max(id) FROM audit"), [(5,)]
        )
        self.assertEqual(upgraded.verify_audit(), [])
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(_schema(self.path), _schema(fresh_path))
        backup = self.path + ".bak-v3"
        self.assertEqual(_version(backup), [(3,)])
        self.assertEqual(
            _query(backup, "SELECT count(*) FROM audit"), [(len(events),)]
        )
        upgraded.record_move(
            MOVE.username,
            MOVE.time,
            MOVE.old_address,
            MOVE.new_address,
            MOVE.old_location_name,
            MOVE.new_location_name,
        )
        self.assertEqual(upgraded.moves("alice"), [MOVE])

    def test_upgrade_shipped_v3_empty_audit(self):
        """
        A v3 database with an empty audit log upgrades to an empty, intact
        one whose first record starts the chain.
        """
        v3 = self.mktemp()
        os.mkdir(v3)
        for path in _SHIPPED_TO_V3:
            shutil.copy(path, v3)
        SQLiteStore.open(self.path, v3).close()
        upgraded = self.open_store()
        self.assertEqual(upgraded.audit_events(), [])
        self.assertEqual(
            upgraded.append_audit(AUDIT).previous_hash, chain.GENESIS
        )
        self.assertEqual(upgraded.verify_audit(), [])

    def test_upgrade_shipped_v1(self):
        """
        A database made with the shipped v1 schema, opened with the shipped
        schema files, is backed up to C{<path>.bak-v1} and upgraded to
        L{SCHEMA_VERSION}: its accounts are kept, its schema equals a fresh
        database's, and enrollment works on it.
        """
        v1 = self.mktemp()
        os.mkdir(v1)
        shutil.copy(_SHIPPED_V1, v1)
        store = SQLiteStore.open(self.path, v1)
        store.add_user("alice", HASH, 1000.0)
        store.close()
        self.assertEqual(_version(self.path), [(1,)])
        upgraded = self.open_store()
        self.assertEqual(_version(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(upgraded.hash_for("alice"), HASH)
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(_schema(self.path), _schema(fresh_path))
        backup = self.path + ".bak-v1"
        self.assertEqual(_version(backup), [(1,)])
        self.assertEqual(
            _query(backup, "SELECT username FROM users"), [("alice",)]
        )
        upgraded.open_window(WINDOW)
        upgraded.complete_enrollment(PROFILE)
        self.assertEqual(upgraded.list_profiles(), [PROFILE])

    def test_shipped_schema_files(self):
        """
        The shipped schema folder holds a full schema for every version up
        to L{SCHEMA_VERSION}, and an upgrade script for every step.
        """
        self.assertEqual(
            sorted(os.listdir(_SHIPPED_SCHEMA_DIR)),
            sorted(
                [f"v{n}.sql" for n in range(1, SCHEMA_VERSION + 1)]
                + [
                    f"upgrade-to-v{n}.sql"
                    for n in range(2, SCHEMA_VERSION + 1)
                ]
            ),
        )

    def assert_corrupt(self):
        """
        Opening C{self.path} raises L{CorruptDatabase} naming the path and
        the way out, and leaves the file as it was.
        """
        before = _read_bytes(self.path)
        error = self.assertRaises(CorruptDatabase, SQLiteStore.open, self.path)
        self.assertIn(self.path, str(error))
        self.assertIn(".bak", str(error))
        self.assertIn("move it away", str(error))
        self.assertEqual(_read_bytes(self.path), before)

    def test_read_only(self):
        """
        L{SQLiteStore.open_read_only} reads a store of this schema and
        refuses every write with L{StoreError}, leaving the file as it
        was.
        """
        SQLiteStore.open(self.path).close()
        before = _read_bytes(self.path)
        store = SQLiteStore.open_read_only(self.path)
        self.addCleanup(store.close)
        self.assertEqual(store.verify_audit(), [])
        self.assertRaises(
            StoreError, store.add_user, "alice", schemes.hash_password("pw"), 1.0
        )
        self.assertEqual(_read_bytes(self.path), before)

    def test_read_only_refuses(self):
        """
        L{SQLiteStore.open_read_only} neither creates a missing file nor
        upgrades an older schema, and reports a corrupt file as such; none
        is changed.
        """
        self.assertRaises(StoreError, SQLiteStore.open_read_only, self.path)
        self.assertFalse(os.path.exists(self.path))
        SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        before = _read_bytes(self.path)
        error = self.assertRaises(StoreError, SQLiteStore.open_read_only, self.path)
        self.assertIn(
            f"has schema v1, and this SUTO reads v{SCHEMA_VERSION}", str(error)
        )
        self.assertEqual(_read_bytes(self.path), before)
        with open(self.path, "wb") as f:
            f.write(b"this is not a database\x00\xff" * 200)
        self.assertRaises(CorruptDatabase, SQLiteStore.open_read_only, self.path)

    def test_garbage(self):
        """
        A file that is not a SQLite database is reported as corrupt.
        """
        with open(self.path, "wb") as f:
            f.write(b"this is not a database\x00\xff" * 200)
        self.assert_corrupt()

    def test_no_version_table(self):
        """
        A SQLite database without a version table is reported as corrupt.
        """
        connection = sqlite3.connect(self.path)
        connection.execute("CREATE TABLE something (other TEXT)")
        connection.close()
        self.assert_corrupt()

    def test_no_version_row(self):
        """
        A database whose version table is empty is reported as corrupt.
        """
        SQLiteStore.open(self.path).close()
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute("DELETE FROM version")
        connection.close()
        self.assert_corrupt()

    def test_integrity_check_fails(self):
        """
        A database that fails SQLite's integrity check (here, an index whose
        entries disagree with its table) is reported as corrupt.
        """
        connection = sqlite3.connect(self.path)
        connection.executescript(
            """
            CREATE TABLE version (version INTEGER NOT NULL);
            INSERT INTO version VALUES (1);
            CREATE TABLE t (x TEXT, y TEXT);
            CREATE INDEX t_i ON t (x);
            INSERT INTO t VALUES ('a', 'b');
            PRAGMA writable_schema = ON;
            UPDATE sqlite_master SET sql = 'CREATE INDEX t_i ON t (y)'
             WHERE name = 't_i';
            """
        )
        connection.close()
        self.assert_corrupt()

    def test_too_new(self):
        """
        A database of a schema newer than this code knows raises
        L{DatabaseTooNew} and is left as it was.
        """
        store = SQLiteStore.open(self.path)
        store.add_user("alice", HASH, 1000.0)
        store.close()
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute(
                "UPDATE version SET version = ?", (SCHEMA_VERSION + 1,)
            )
        connection.close()
        before = _read_bytes(self.path)
        error = self.assertRaises(DatabaseTooNew, SQLiteStore.open, self.path)
        self.assertIn(self.path, str(error))
        self.assertEqual(_read_bytes(self.path), before)

    def test_upgrade(self):
        """
        A v1 database opened with schemas up to v3 is backed up to
        C{<path>.bak-v1} (mode 0600), then upgraded in order: its schema
        equals a fresh v3's, its accounts are kept and its version is 3.
        """
        store = SQLiteStore.open(self.path, self.fake_schema_dir(1))
        store.add_user("alice", HASH, 1000.0)
        store.close()
        v3 = self.fake_schema_dir(3)
        upgraded = self.open_store(v3)
        self.assertEqual(upgraded.hash_for("alice"), HASH)
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path, v3).close()
        self.assertEqual(_schema(self.path), _schema(fresh_path))
        self.assertEqual(_version(self.path), [(3,)])
        backup = self.path + ".bak-v1"
        self.assertEqual(_mode(backup), 0o600)
        self.assertEqual(_version(backup), [(1,)])
        self.assertEqual(
            _query(backup, "SELECT username FROM users"), [("alice",)]
        )

    def test_logs(self):
        """
        Creating and upgrading the file are logged with its path and the
        version reached (and the backup's path), so an operator can follow
        what happened to it; opening a current file logs nothing.
        """
        with capturedLogs() as created:
            SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        with capturedLogs() as reopened:
            SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        with capturedLogs() as upgraded:
            self.open_store(self.fake_schema_dir(3))
        self.assertEqual(
            [(event["path"], event["version"]) for event in created],
            [(self.path, 1)],
        )
        self.assertEqual(reopened, [])
        self.assertEqual(
            [(event["path"], event["version"]) for event in upgraded],
            [(self.path, 1), (self.path, 2), (self.path, 3)],
        )
        self.assertEqual(upgraded[0]["backup"], self.path + ".bak-v1")

    def test_upgrade_one_step_at_a_time(self):
        """
        Upgrading v1 to v2 and later v2 to v3 gives the same schema as a
        fresh v3, with a backup of each version left behind.
        """
        SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        SQLiteStore.open(self.path, self.fake_schema_dir(2)).close()
        self.assertEqual(_version(self.path), [(2,)])
        v3 = self.fake_schema_dir(3)
        SQLiteStore.open(self.path, v3).close()
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path, v3).close()
        self.assertEqual(_schema(self.path), _schema(fresh_path))
        self.assertTrue(os.path.exists(self.path + ".bak-v1"))
        self.assertEqual(
            _version(self.path + ".bak-v2"), [(2,)]
        )

    def test_upgrade_script_missing(self):
        """
        When an upgrade script is missing, opening raises L{StoreError}
        before anything is changed: no backup is made and the database
        stays at its version.
        """
        SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        v3 = self.fake_schema_dir(3)
        os.remove(os.path.join(v3, "upgrade-to-v3.sql"))
        self.assertRaises(StoreError, SQLiteStore.open, self.path, v3)
        self.assertEqual(_version(self.path), [(1,)])
        self.assertEqual(sorted(os.listdir(self.directory)), ["suto.db"])

    def test_upgrade_step_fails(self):
        """
        When an upgrade script fails, opening raises L{StoreError}, that
        step is rolled back whole and the database is left at the version
        before it, still usable.
        """
        SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        v3 = self.fake_schema_dir(3)
        self.write(
            v3,
            "upgrade-to-v3.sql",
            "CREATE TABLE half (x TEXT);\nCREATE TABLE broken (;\n",
        )
        error = self.assertRaises(StoreError, SQLiteStore.open, self.path, v3)
        self.assertIn("left at v2", str(error))
        self.assertEqual(_version(self.path), [(2,)])
        self.assertNotIn(
            "half", [name for _, name, _, _ in _schema(self.path)]
        )
        self.assertTrue(os.path.exists(self.path + ".bak-v1"))
        store = self.open_store(self.fake_schema_dir(2))
        store.add_user("alice", HASH, 1000.0)
        self.assertEqual(store.hash_for("alice"), HASH)

    def test_creation_fails(self):
        """
        When the schema cannot be applied to a new database, opening raises
        L{StoreError} and leaves nothing at the path, nor any temporary
        file.
        """
        schema_dir = self.mktemp()
        os.mkdir(schema_dir)
        self.write(
            schema_dir,
            "v1.sql",
            "CREATE TABLE version (version INTEGER NOT NULL);\n"
            "CREATE TABLE broken (;\n",
        )
        self.assertRaises(StoreError, SQLiteStore.open, self.path, schema_dir)
        self.assertEqual(os.listdir(self.directory), [])

    def test_missing_directory(self):
        """
        A path in a directory that does not exist raises L{StoreError}.
        """
        path = os.path.join(self.directory, "absent", "suto.db")
        self.assertRaises(StoreError, SQLiteStore.open, path)
        self.assertEqual(os.listdir(self.directory), [])


class SQLiteOfflineStoreTests(_OnSQLite, OfflineStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of offline spells, run against L{SQLiteStore}.
    """
