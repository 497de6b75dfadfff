"""
Tests for the upgrades in L{suto_server.store.sqlite.connection}: older
databases, shipped and made up, brought to the newest schema one backed-up
step at a time.
"""

import os
import shutil
import sqlite3
from dataclasses import replace

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.store import chain
from suto_server.store.errors import StoreError
from suto_server.store.records import RotationCommit
from suto_server.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.support.sqlite_files import (
    SHIPPED_TO_V2,
    SHIPPED_TO_V3,
    SHIPPED_TO_V5,
    SHIPPED_TO_V6,
    SHIPPED_V1,
    SQLiteFileCase,
    file_mode,
    query,
    schema_of,
    version_rows,
)
from tests.support.store_suite.offline import assert_spent_step_upgraded
from tests.support.store_suite.values import (
    AUDIT,
    HASH,
    MOVE,
    PROFILE,
    WINDOW,
    enroll_numbered,
    numbered_key_id,
)


class SQLiteUpgradeTests(SQLiteFileCase, SynchronousTestCase):
    """
    How L{SQLiteStore.open} upgrades a database of an older schema.
    """

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
        for path in SHIPPED_TO_V2:
            shutil.copy(path, v2)
        SQLiteStore.open(self.path, v2).close()
        self.assertEqual(version_rows(self.path), [(2,)])
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
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
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
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        backup = self.path + ".bak-v2"
        self.assertEqual(version_rows(backup), [(2,)])
        self.assertEqual(
            query(backup, "SELECT username FROM profiles ORDER BY username"),
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
        for path in SHIPPED_TO_V3:
            shutil.copy(path, v3)
        SQLiteStore.open(self.path, v3).close()
        self.assertEqual(version_rows(self.path), [(3,)])
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
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
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
            query(self.path, "SELECT id, previous_hash, hash FROM audit"),
            [
                (number, event.previous_hash, event.hash)
                for number, event in enumerate(expected, 1)
            ],
        )
        appended = upgraded.append_audit(AUDIT)
        self.assertEqual(appended.previous_hash, expected[-1].hash)
        self.assertEqual(
            query(self.path, "SELECT max(id) FROM audit"), [(5,)]
        )
        self.assertEqual(upgraded.verify_audit(), [])
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        backup = self.path + ".bak-v3"
        self.assertEqual(version_rows(backup), [(3,)])
        self.assertEqual(
            query(backup, "SELECT count(*) FROM audit"), [(len(events),)]
        )
        upgraded.open_window(WINDOW)
        upgraded.complete_enrollment(PROFILE)
        upgraded.record_move(
            MOVE.username,
            MOVE.time,
            MOVE.old_address,
            MOVE.new_address,
            MOVE.old_location_name,
            MOVE.new_location_name,
        )
        self.assertEqual(upgraded.moves("alice"), [MOVE])

    def test_upgrade_shipped_v5(self):
        """
        A database of the shipped v5 schema whose profile spent an offline
        step is backed up to C{<path>.bak-v5} and upgraded to
        L{SCHEMA_VERSION}: the step is kept, with no key and no attempt
        nonces, its schema equals a fresh database's, and a reconnection's
        commit records its key and nonce on it.
        """
        v5 = self.mktemp()
        os.mkdir(v5)
        for path in SHIPPED_TO_V5:
            shutil.copy(path, v5)
        old = SQLiteStore.open(self.path, v5)
        enroll_numbered(old, "alice")
        old.close()
        self.assertEqual(version_rows(self.path), [(5,)])
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute(
                "INSERT INTO offline_steps (username, step) VALUES (?, ?)",
                ("alice", 70),
            )
        connection.close()
        upgraded = self.open_store()
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
        assert_spent_step_upgraded(self, upgraded)
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        self.assertEqual(version_rows(self.path + ".bak-v5"), [(5,)])

    def test_upgrade_shipped_v6(self):
        """
        A database of the shipped v6 schema is backed up to
        C{<path>.bak-v6} and upgraded to L{SCHEMA_VERSION}: its audit log
        is kept whole and intact, it gains the index of the log by event
        type, and its schema equals a fresh database's.
        """
        v6 = self.mktemp()
        os.mkdir(v6)
        for path in SHIPPED_TO_V6:
            shutil.copy(path, v6)
        old = SQLiteStore.open(self.path, v6)
        old.append_audit(AUDIT)
        old.close()
        self.assertEqual(version_rows(self.path), [(6,)])
        upgraded = self.open_store()
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(upgraded.audit_events(), [AUDIT])
        self.assertEqual(upgraded.verify_audit(), [])
        self.assertEqual(
            query(
                self.path,
                "SELECT name FROM sqlite_master WHERE tbl_name = 'audit'"
                " AND type = 'index' ORDER BY name",
            ),
            [("audit_by_event",), ("audit_by_time",)],
        )
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        self.assertEqual(version_rows(self.path + ".bak-v6"), [(6,)])

    def test_upgrade_shipped_v3_empty_audit(self):
        """
        A v3 database with an empty audit log upgrades to an empty, intact
        one whose first record starts the chain.
        """
        v3 = self.mktemp()
        os.mkdir(v3)
        for path in SHIPPED_TO_V3:
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
        shutil.copy(SHIPPED_V1, v1)
        store = SQLiteStore.open(self.path, v1)
        store.add_user("alice", HASH, 1000.0)
        store.close()
        self.assertEqual(version_rows(self.path), [(1,)])
        upgraded = self.open_store()
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(upgraded.hash_for("alice"), HASH)
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        backup = self.path + ".bak-v1"
        self.assertEqual(version_rows(backup), [(1,)])
        self.assertEqual(
            query(backup, "SELECT username FROM users"), [("alice",)]
        )
        upgraded.open_window(WINDOW)
        upgraded.complete_enrollment(PROFILE)
        self.assertEqual(upgraded.list_profiles(), [PROFILE])

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
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        self.assertEqual(version_rows(self.path), [(3,)])
        backup = self.path + ".bak-v1"
        self.assertEqual(file_mode(backup), 0o600)
        self.assertEqual(version_rows(backup), [(1,)])
        self.assertEqual(
            query(backup, "SELECT username FROM users"), [("alice",)]
        )

    def test_create_through_upgrades(self):
        """
        A schema folder whose newest version has no full schema creates a
        new database from the newest full schema before it and the upgrade
        scripts after that: the same schema as a full one gives, at the
        newest version, with no backup made.
        """
        steps_only = self.fake_schema_dir(3)
        os.remove(os.path.join(steps_only, "v2.sql"))
        os.remove(os.path.join(steps_only, "v3.sql"))
        self.open_store(steps_only)
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path, self.fake_schema_dir(3)).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        self.assertEqual(version_rows(self.path), [(3,)])
        self.assertFalse(os.path.exists(self.path + ".bak-v1"))

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
        self.assertEqual(version_rows(self.path), [(2,)])
        v3 = self.fake_schema_dir(3)
        SQLiteStore.open(self.path, v3).close()
        fresh_path = os.path.join(self.directory, "fresh.db")
        SQLiteStore.open(fresh_path, v3).close()
        self.assertEqual(schema_of(self.path), schema_of(fresh_path))
        self.assertTrue(os.path.exists(self.path + ".bak-v1"))
        self.assertEqual(
            version_rows(self.path + ".bak-v2"), [(2,)]
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
        self.assertEqual(version_rows(self.path), [(1,)])
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
        self.assertEqual(version_rows(self.path), [(2,)])
        self.assertNotIn(
            "half", [name for _, name, _, _ in schema_of(self.path)]
        )
        self.assertTrue(os.path.exists(self.path + ".bak-v1"))
        store = self.open_store(self.fake_schema_dir(2))
        store.add_user("alice", HASH, 1000.0)
        self.assertEqual(store.hash_for("alice"), HASH)
