"""
What the SQLite store's file tests share: the shipped schema files, made-up
later schema steps, reading a database file behind the store's back, and
a test case base with a file of its own.
"""

import os
import re
import sqlite3
import stat

from suto_server.store import sqlite as store_sqlite
from suto_server.store.sqlite import SQLiteStore

SHIPPED_SCHEMA_DIR = os.path.join(
    os.path.dirname(store_sqlite.__file__), "schema"
)
SHIPPED_V1 = os.path.join(SHIPPED_SCHEMA_DIR, "v1.sql")
# The shipped files that make a database of an older version: v1 and the
# upgrades up to it.
SHIPPED_TO_V2 = [
    os.path.join(SHIPPED_SCHEMA_DIR, name)
    for name in ["v1.sql", "upgrade-to-v2.sql"]
]
SHIPPED_TO_V3 = SHIPPED_TO_V2 + [
    os.path.join(SHIPPED_SCHEMA_DIR, "upgrade-to-v3.sql")
]
SHIPPED_TO_V5 = SHIPPED_TO_V3 + [
    os.path.join(SHIPPED_SCHEMA_DIR, name)
    for name in ["upgrade-to-v4.sql", "upgrade-to-v5.sql"]
]
SHIPPED_TO_V6 = SHIPPED_TO_V5 + [
    os.path.join(SHIPPED_SCHEMA_DIR, "upgrade-to-v6.sql")
]

# Later schema versions for the upgrade tests, each one step on from the
# one before; step 3 depends on step 2, so the steps must run in order.
STEPS = [
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


def file_mode(path):
    """
    @return: the permission bits of C{path}.
    """
    return stat.S_IMODE(os.stat(path).st_mode)


def query(path, sql):
    """
    @return: all rows of C{sql} run on the database at C{path} through a
        connection of its own.
    """
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def statement_plans(store, path, act):
    """
    @param store: a L{SQLiteStore} on the database at C{path}.
    @param act: reads or changes C{store} once.
    @return: a list of (statement, plan) pairs, one for each statement
        C{act} ran, in order, with the values it was run with; a plan is
        the details of SQLite's query plan for it, as the database is once
        C{act} returned.
    """
    statements = []
    connection = store._open_connection()
    connection.set_trace_callback(statements.append)
    try:
        act()
    finally:
        connection.set_trace_callback(None)
    return [
        (
            statement,
            [row[-1] for row in query(path, f"EXPLAIN QUERY PLAN {statement}")],
        )
        for statement in statements
    ]


def statement_plan(store, path, read):
    """
    @param store: a L{SQLiteStore} on the database at C{path}.
    @param read: reads C{store} once, with one statement.
    @return: the details of SQLite's query plan for the statement C{read}
        ran, with the values it was run with.
    """
    [(_, plan)] = statement_plans(store, path, read)
    return plan


def version_rows(path):
    """
    @return: the rows of the database's version table.
    """
    return query(path, "SELECT version FROM version")


def schema_of(path):
    """
    @return: the database's schema as SQLite records it, with whitespace
        normalised, so that schemas written differently can be compared.
    """
    rows = query(
        path,
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master"
        " ORDER BY name",
    )
    return [
        (kind, name, table, " ".join(_PUNCTUATION.sub(r" \1 ", sql).split()))
        for kind, name, table, sql in rows
    ]


def read_bytes(path):
    """
    @return: the contents of the file at C{path}.
    """
    with open(path, "rb") as f:
        return f.read()


class SQLiteFileCase:
    """
    A database path of its own in C{self.path}, in a folder of its own
    (C{self.directory}), for a trial C{TestCase}.
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
        v1 followed by the first C{version - 1} of L{STEPS}, as full
        schemas and as upgrade scripts.

        @return: its path.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        full = read_bytes(SHIPPED_V1).decode("utf-8")
        for number in range(1, version + 1):
            if number > 1:
                step = STEPS[number - 2]
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
