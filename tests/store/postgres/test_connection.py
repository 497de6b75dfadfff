"""
Tests for L{suto_server.store.postgres.connection}: the schema's life on
a real server (created fresh, reopened, too new, not ours, upgraded one
step at a time, created by one of two processes starting together), the
read-only store, and the URI's password rule.
"""

import os
import shutil
import sqlite3
import threading

import psycopg
from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.errors import CorruptDatabase, DatabaseTooNew, StoreError
from suto_server.store.postgres import SCHEMA_VERSION, PostgresStore
from suto_server.store.postgres.connection import SHIPPED_SCHEMA_DIR
from suto_server.store.sql.schemafiles import newest_version
from suto_server.store.sqlite import SQLiteStore
from tests.support.postgres import new_location
from tests.support.store_suite.offline import assert_spent_step_upgraded
from tests.support.store_suite.values import (
    AUDIT,
    HASH,
    PROFILE,
    WINDOW,
    enroll_numbered,
)

# A made-up later version: one step on from the shipped schema.
_STEP = "ALTER TABLE users ADD COLUMN note TEXT"


class PostgresSchemaTests(SynchronousTestCase):
    """
    The store's schema in a database of its own.
    """

    def setUp(self):
        self.location = new_location(self)

    def session(self):
        """
        @return: an autocommit session on the store's database, outside
            the store; closed after the test.
        """
        session = psycopg.connect(self.location, autocommit=True)
        self.addCleanup(session.close)
        return session

    def open_store(self, schema_dir=None):
        """
        @return: the store at the test's location, closed after the test.
        """
        store = PostgresStore.open(self.location, schema_dir)
        self.addCleanup(store.close)
        return store

    def columns(self):
        """
        @return: the store's tables, each with its columns in order.
        """
        rows = self.session().execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()
        tables = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        return tables

    def indexes(self):
        """
        @return: the store's indexes, as (table, index) pairs in order.
        """
        return self.session().execute(
            "SELECT tablename, indexname FROM pg_indexes"
            " WHERE schemaname = current_schema() ORDER BY tablename, indexname"
        ).fetchall()

    def version(self):
        """
        @return: the rows of the store's version table.
        """
        return self.session().execute("SELECT version FROM version").fetchall()

    def schema_dir(self, steps=()):
        """
        @param steps: the upgrade scripts after the shipped schema.
        @return: a folder of the shipped schema files and C{steps}.
        """
        folder = self.mktemp()
        shutil.copytree(SHIPPED_SCHEMA_DIR, folder)
        for number, step in enumerate(steps, SCHEMA_VERSION + 1):
            with open(os.path.join(folder, f"upgrade-to-v{number}.sql"), "w") as f:
                f.write(step)
        return folder

    def test_shipped_schema_files(self):
        """
        L{SCHEMA_VERSION} is the newest version the shipped files make.
        """
        self.assertEqual(newest_version(SHIPPED_SCHEMA_DIR), SCHEMA_VERSION)

    def test_fresh(self):
        """
        An empty database gets the newest schema, one version row, and the
        tables and columns of the SQLite store (which share the mapping of
        records to rows), with the audit log's head besides.
        """
        self.open_store()
        self.assertEqual(self.version(), [(SCHEMA_VERSION,)])
        folder = self.mktemp()
        os.mkdir(folder)
        path = os.path.join(folder, "suto.db")
        SQLiteStore.open(path).close()
        with sqlite3.connect(path) as connection:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            ]
            sqlite_columns = {
                table: [
                    row[1]
                    for row in connection.execute(f"PRAGMA table_info({table})")
                ]
                for table in tables
            }
        connection.close()
        sqlite_columns["audit_head"] = ["last_id"]
        self.assertEqual(self.columns(), sqlite_columns)

    def test_reopen_keeps_data(self):
        """
        What one store wrote a store opened later on the same database
        reads, the audit chain included.
        """
        store = PostgresStore.open(self.location)
        store.add_user("alice", HASH, 1.0)
        store.open_window(WINDOW)
        store.complete_enrollment(PROFILE)
        store.append_audits([AUDIT, AUDIT])
        store.close()
        again = self.open_store()
        self.assertEqual(again.hash_for("alice"), HASH)
        self.assertEqual(again.list_profiles(), [PROFILE])
        again.append_audit(AUDIT)
        self.assertEqual(len(again.audit_events()), 3)
        self.assertEqual(again.verify_audit(), [])
        self.assertEqual(self.version(), [(SCHEMA_VERSION,)])

    def test_too_new(self):
        """
        A store of a newer schema raises L{DatabaseTooNew} and is left as
        it was.
        """
        self.open_store()
        self.session().execute("UPDATE version SET version = version + 1")
        before = self.columns()
        self.assertRaises(DatabaseTooNew, PostgresStore.open, self.location)
        self.assertEqual(self.version(), [(SCHEMA_VERSION + 1,)])
        self.assertEqual(self.columns(), before)

    def test_foreign_tables(self):
        """
        A database holding tables but no version table is not SUTO's:
        L{CorruptDatabase}, and nothing is created beside them.
        """
        self.session().execute("CREATE TABLE theirs (id INTEGER)")
        self.assertRaises(CorruptDatabase, PostgresStore.open, self.location)
        self.assertEqual(self.columns(), {"theirs": ["id"]})

    def test_version_rows(self):
        """
        A version table without exactly one version row raises
        L{CorruptDatabase}.
        """
        self.open_store()
        session = self.session()
        session.execute("INSERT INTO version (version) VALUES (1)")
        self.assertRaises(CorruptDatabase, PostgresStore.open, self.location)
        session.execute("DELETE FROM version")
        self.assertRaises(CorruptDatabase, PostgresStore.open, self.location)

    def test_upgrade(self):
        """
        A store of the shipped schema opened by a code that knows one more
        step is upgraded to it, its data kept, and ends as a store created
        fresh at that version does.
        """
        store = PostgresStore.open(self.location)
        store.add_user("alice", HASH, 1.0)
        store.close()
        upgraded = self.open_store(self.schema_dir([_STEP]))
        self.assertEqual(upgraded.hash_for("alice"), HASH)
        self.assertEqual(self.version(), [(SCHEMA_VERSION + 1,)])
        self.assertIn("note", self.columns()["users"])
        columns = self.columns()
        self.location = new_location(self)
        self.open_store(self.schema_dir([_STEP]))
        self.assertEqual(self.columns(), columns)

    def test_upgrade_shipped_v1(self):
        """
        A store of the shipped v1 schema whose profile spent an offline
        step is upgraded to v2: the step is kept, with no key and no
        attempt nonces, the tables end as a fresh store's, and a
        reconnection's commit records its key and nonce on the step.
        """
        v1 = self.mktemp()
        os.mkdir(v1)
        shutil.copy(os.path.join(SHIPPED_SCHEMA_DIR, "v1.sql"), v1)
        old = PostgresStore.open(self.location, v1)
        enroll_numbered(old, "alice")
        old.close()
        self.assertEqual(self.version(), [(1,)])
        self.session().execute(
            "INSERT INTO offline_steps (username, step) VALUES ('alice', 70)"
        )
        upgraded = self.open_store()
        self.assertEqual(self.version(), [(SCHEMA_VERSION,)])
        assert_spent_step_upgraded(self, upgraded)
        columns = self.columns()
        self.location = new_location(self)
        self.open_store()
        self.assertEqual(self.columns(), columns)

    def test_upgrade_shipped_v2(self):
        """
        A store of the shipped v2 schema is upgraded to v3: its audit log
        is kept whole and intact, it gains the index of the log by event
        type, and its tables and indexes end as a fresh store's.
        """
        v2 = self.mktemp()
        os.mkdir(v2)
        for name in ["v1.sql", "upgrade-to-v2.sql"]:
            shutil.copy(os.path.join(SHIPPED_SCHEMA_DIR, name), v2)
        old = PostgresStore.open(self.location, v2)
        old.append_audit(AUDIT)
        old.close()
        self.assertEqual(self.version(), [(2,)])
        self.assertNotIn(("audit", "audit_by_event"), self.indexes())
        upgraded = self.open_store()
        self.assertEqual(self.version(), [(SCHEMA_VERSION,)])
        self.assertEqual(upgraded.audit_events(), [AUDIT])
        self.assertEqual(upgraded.verify_audit(), [])
        self.assertIn(("audit", "audit_by_event"), self.indexes())
        schema = self.columns(), self.indexes()
        self.location = new_location(self)
        self.open_store()
        self.assertEqual((self.columns(), self.indexes()), schema)

    def test_upgrade_step_fails(self):
        """
        An upgrade step that fails raises L{StoreError} and leaves the
        store at the version before it, with the steps before it applied.
        """
        self.open_store()
        self.assertRaises(
            StoreError,
            PostgresStore.open,
            self.location,
            self.schema_dir([_STEP, "ALTER TABLE nowhere ADD COLUMN x TEXT"]),
        )
        self.assertEqual(self.version(), [(SCHEMA_VERSION + 1,)])
        self.assertIn("note", self.columns()["users"])

    def test_upgrade_failure_detail_left_out(self):
        """
        The message of an upgrade step that fails has the server's primary
        message only: its detail may quote a row (a sealed key, a hash),
        which the daemon's start and C{suto-admin} would show.
        """
        self.open_store()
        with self.assertRaises(StoreError) as raised:
            PostgresStore.open(
                self.location,
                self.schema_dir(
                    [
                        "DO $$ BEGIN RAISE EXCEPTION 'row refused' USING DETAIL ="
                        " 'Failing row contains (sealed-key-bytes)'; END $$"
                    ]
                ),
            )
        message = str(raised.exception)
        self.assertNotIn("sealed-key-bytes", message)
        self.assertEqual(
            message,
            f"upgrading the store to schema v{SCHEMA_VERSION + 1} failed:"
            f" row refused; it is left at v{SCHEMA_VERSION}",
        )

    def test_started_together(self):
        """
        Stores opened at once on an empty database, by threads standing for
        daemons starting together, all succeed: one of them creates the
        schema under the advisory lock and the others find it made.
        """
        opened, failed = [], []

        def start():
            try:
                store = PostgresStore.open(self.location)
            except StoreError as e:
                failed.append(e)
            else:
                opened.append(store)
                store.close()

        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual((len(opened), failed), (4, []))
        self.assertEqual(self.version(), [(SCHEMA_VERSION,)])

    def test_read_only(self):
        """
        Read-only, the store there is read but never written; an empty
        database is not given a schema, and a store of another version is
        refused.
        """
        self.assertRaises(StoreError, PostgresStore.open_read_only, self.location)
        self.assertEqual(self.columns(), {})
        self.open_store().add_user("alice", HASH, 1.0)
        reader = PostgresStore.open_read_only(self.location)
        self.addCleanup(reader.close)
        self.assertEqual(reader.hash_for("alice"), HASH)
        self.assertEqual(reader.verify_audit(), [])
        self.assertRaises(StoreError, reader.add_user, "bob", HASH, 1.0)
        self.assertRaises(StoreError, reader.append_audit, AUDIT)
        self.assertRaises(StoreError, reader.sibling)
        self.session().execute("UPDATE version SET version = version + 1")
        self.assertRaises(StoreError, PostgresStore.open_read_only, self.location)

    def test_password_refused(self):
        """
        A URI carrying a password, in its user part or as a parameter, is
        refused before anything is connected to, saying where the password
        belongs.
        """
        for uri in [
            "postgresql://suto:secret@db.invalid/suto",
            "postgresql:///suto?password=secret",
            "postgresql:///suto?sslpassword=secret",
        ]:
            error = self.assertRaises(StoreError, PostgresStore.open, uri)
            self.assertIn("PGPASSFILE", str(error))
            self.assertNotIn("secret", str(error))
            self.assertRaises(StoreError, PostgresStore.open_read_only, uri)

    def test_unreadable_uri_hides_password(self):
        """
        A URI libpq cannot read is refused without quoting it, so a
        password in it never reaches a message or the log.
        """
        error = self.assertRaises(
            StoreError, PostgresStore.open, "postgresql://u:s3cret@[::1/db"
        )
        self.assertNotIn("s3cret", str(error))
