"""
Tests for L{suto_server.store.sqlite.dbfile}: how a new database file is
created, what an existing one must pass before it is used, and opening
one read-only.
"""

import os
import sqlite3

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import schemes
from suto_server.store.errors import CorruptDatabase, DatabaseTooNew, StoreError
from suto_server.store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.support.sqlite_files import (
    SHIPPED_SCHEMA_DIR,
    SQLiteFileCase,
    file_mode,
    query,
    read_bytes,
    version_rows,
)
from tests.support.store_suite.values import HASH


class SQLiteFileTests(SQLiteFileCase, SynchronousTestCase):
    """
    How L{SQLiteStore.open} creates and checks the database file, and
    L{SQLiteStore.open_read_only} reads it.
    """

    def assert_corrupt(self):
        """
        Opening C{self.path} raises L{CorruptDatabase} naming the path and
        the way out, and leaves the file as it was.
        """
        before = read_bytes(self.path)
        error = self.assertRaises(CorruptDatabase, SQLiteStore.open, self.path)
        self.assertIn(self.path, str(error))
        self.assertIn(".bak", str(error))
        self.assertIn("move it away", str(error))
        self.assertEqual(read_bytes(self.path), before)

    def test_fresh(self):
        """
        Opening a path with no file creates a database there, mode 0600, in
        write-ahead-log mode, whose version row is L{SCHEMA_VERSION} (6).
        While it is in use, its C{-wal} and C{-shm} files are 0600 too and
        no temporary file is left behind.
        """
        store = self.open_store()
        store.add_user("alice", HASH, 1000.0)
        self.assertEqual(SCHEMA_VERSION, 7)
        self.assertEqual(version_rows(self.path), [(SCHEMA_VERSION,)])
        self.assertEqual(query(self.path, "PRAGMA journal_mode"), [("wal",)])
        self.assertEqual(
            sorted(os.listdir(self.directory)),
            ["suto.db", "suto.db-shm", "suto.db-wal"],
        )
        for name in os.listdir(self.directory):
            self.assertEqual(
                (name, file_mode(os.path.join(self.directory, name))),
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

    def test_shipped_schema_files(self):
        """
        The shipped schema folder holds the full schemas of v1 (where
        every upgrade starts) and of L{SCHEMA_VERSION} (what a fresh
        database is made with), and an upgrade script for every step.
        """
        self.assertEqual(
            sorted(os.listdir(SHIPPED_SCHEMA_DIR)),
            sorted(
                ["v1.sql", f"v{SCHEMA_VERSION}.sql"]
                + [
                    f"upgrade-to-v{n}.sql"
                    for n in range(2, SCHEMA_VERSION + 1)
                ]
            ),
        )

    def test_read_only(self):
        """
        L{SQLiteStore.open_read_only} reads a store of this schema and
        refuses every write with L{StoreError}, leaving the file as it
        was.
        """
        SQLiteStore.open(self.path).close()
        before = read_bytes(self.path)
        store = SQLiteStore.open_read_only(self.path)
        self.addCleanup(store.close)
        self.assertEqual(store.verify_audit(), [])
        self.assertRaises(
            StoreError, store.add_user, "alice", schemes.hash_password("pw"), 1.0
        )
        self.assertEqual(read_bytes(self.path), before)

    def test_read_only_refuses(self):
        """
        L{SQLiteStore.open_read_only} neither creates a missing file nor
        upgrades an older schema, and reports a corrupt file as such; none
        is changed.
        """
        self.assertRaises(StoreError, SQLiteStore.open_read_only, self.path)
        self.assertFalse(os.path.exists(self.path))
        SQLiteStore.open(self.path, self.fake_schema_dir(1)).close()
        before = read_bytes(self.path)
        error = self.assertRaises(StoreError, SQLiteStore.open_read_only, self.path)
        self.assertIn(
            f"has schema v1, and this SUTO reads v{SCHEMA_VERSION}", str(error)
        )
        self.assertEqual(read_bytes(self.path), before)
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
        before = read_bytes(self.path)
        error = self.assertRaises(DatabaseTooNew, SQLiteStore.open, self.path)
        self.assertIn(self.path, str(error))
        self.assertEqual(read_bytes(self.path), before)

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
