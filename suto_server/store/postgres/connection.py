# -*- test-case-name: tests.store.postgres.test_connection,tests.store.test_postgres,tests.store.postgres.test_outage -*-
"""
The connection under every part of L{suto_server.store.postgres.PostgresStore}:
reaching the server, bringing its database to the newest schema, the
transactions the parts run their statements in, siblings for another
thread, and closing.

Opening a database goes one of three ways, all under one session-level
advisory lock, so that two processes starting together take turns:
 - no C{version} table: the newest schema is built in one transaction
   (PostgreSQL's DDL is transactional, so a failure leaves nothing
   behind);
 - an older version: each upgrade script runs in its own transaction
   together with its version bump (back up with C{pg_dump} first: unlike
   the SQLite file, the store cannot copy a server's database aside);
 - the newest version: it is used as it is.
A version newer than this code knows raises L{DatabaseTooNew}, and a
database holding other tables but no C{version} table raises
L{CorruptDatabase}, both without changing anything.

Each object holds one connection of its own, in autocommit mode: a read or
a single write is its own transaction, and L{Connection._transaction}
groups several.  The parts write their statements with C{?} marks, as
SQLite takes them (L{suto_server.store.sql}), and this turns them into
psycopg's.  Where a part reads a row and then changes it, it reads with
C{FOR UPDATE} (L{Connection._LOCK_READ}), which serializes it with every
other writer of that row, in this process or another.

A connection the server dropped, or psycopg reports broken (the server
stopped or failed over, the network went away), is reported as a
L{StoreError} and opened again on the next call; so is one to a server a
failover made read-only.  No call waits for a server that is away longer
than the session's bounds (L{suto_server.store.postgres.session}), and
the store recovers by itself once the server is back: nothing is kept
between calls but the connection.
"""

import os
from contextlib import contextmanager

import psycopg
from twisted.logger import Logger

from suto_server.store.errors import CorruptDatabase, DatabaseTooNew, StoreError
from suto_server.store.postgres.session import (
    SNAPSHOT_MAY_IDLE,
    as_store_error,
    checked_location,
    connect,
    usable,
)
from suto_server.store.sql.schemafiles import (
    creation_scripts,
    newest_version,
    upgrade_scripts,
)

# The version the shipped schema/ files describe; a test holds them together.
SCHEMA_VERSION = 3

SHIPPED_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")

# The advisory lock key the schema is created and upgraded under: "SUTO".
_SCHEMA_LOCK = 0x5355544F


def _current_version(connection):
    """
    @return: the schema version of the database behind C{connection}, or
        L{None} for a database without SUTO's tables.
    @raise CorruptDatabase: it has other tables but no C{version}, or its
        C{version} table does not hold one version.
    """
    [(exists,)] = connection.execute(
        "SELECT to_regclass('version') IS NOT NULL"
    ).fetchall()
    if not exists:
        [(tables,)] = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        if tables:
            raise CorruptDatabase(
                "the database holds tables but no SUTO version table; give "
                "SUTO a database of its own"
            )
        return None
    rows = connection.execute("SELECT version FROM version").fetchall()
    if len(rows) != 1 or rows[0][0] < 1:
        raise CorruptDatabase(
            "the store's version table must hold one version; restore the "
            "database from a backup"
        )
    return rows[0][0]


def _refuse_newer(version, target):
    """
    @raise DatabaseTooNew: the schema C{version} of a database is newer
        than the newest, C{target}, this code knows.
    """
    if version is not None and version > target:
        raise DatabaseTooNew(
            f"the store has schema v{version} but this SUTO knows only "
            f"up to v{target}; run a newer SUTO or restore an older copy"
        )


def check_openable(uri):
    """
    Check, changing nothing, that L{Connection.open} could open the
    database at C{uri}: the URI names no password, the server lets us in,
    and the database is empty or holds a store of a schema this code can
    use or upgrade.

    @raise StoreError: it could not (L{CorruptDatabase} and
        L{DatabaseTooNew} among the reasons).
    """
    connection = connect(checked_location(uri), read_only=True)
    try:
        with as_store_error("reading the store's version"):
            version = _current_version(connection)
    finally:
        connection.close()
    _refuse_newer(version, SCHEMA_VERSION)


def _psycopg_sql(sql):
    """
    @param sql: a statement as the store's parts write it, with C{?}
        parameter marks (see L{suto_server.store.sql}).
    @return: the statement with psycopg's C{%s} marks instead.
    """
    return sql.replace("%", "%%").replace("?", "%s")


class _Statements:
    """
    A connection inside one of L{Connection._transaction}'s transactions,
    taking the store's statements as they are written.
    """

    def __init__(self, connection):
        self._connection = connection

    def execute(self, sql, parameters=()):
        """
        @return: the cursor that ran C{sql}.
        """
        return self._connection.execute(_psycopg_sql(sql), parameters)

    def executemany(self, sql, rows):
        """
        Run C{sql} once for each of C{rows}.
        """
        with self._connection.cursor() as cursor:
            cursor.executemany(_psycopg_sql(sql), rows)


class Connection:
    """
    One connection to the store's database; the parts of
    L{PostgresStore} run their statements through L{_read}, L{_write} and
    L{_transaction}.
    """

    log = Logger()

    # What a compare-and-swap reads stays locked until it commits, so a
    # writer in another session waits for it, then reads the new row.
    _LOCK_READ = " FOR UPDATE"

    def __init__(self, connection, uri=None):
        """
        @param connection: an open connection to a database of the newest
            schema; use L{PostgresStore.open} rather than calling this.
        @param uri: where C{connection} leads, to open it again (for
            L{sibling}, or once the server dropped it).
        """
        self._connection = connection
        self._uri = uri

    def sibling(self):
        """
        Open another connection to this store's database, for the thread
        that calls this.  The schema is not checked again: L{open} did
        that.

        @return: a new L{PostgresStore}.
        @raise StoreError: this store cannot connect again (it was built
            from a bare connection), or the server cannot be reached.
        """
        if self._uri is None:
            raise StoreError("this store has no URI to connect to again")
        return type(self)(connect(self._uri), self._uri)

    @classmethod
    def open(cls, uri, schema_dir=None):
        """
        Create the store's tables in the database at C{uri}, or upgrade
        the ones there.

        @param uri: a libpq connection URI naming no password.
        @param schema_dir: where the schema files are; the shipped ones
            unless given (tests give their own).
        @return: a L{PostgresStore} on the newest schema.
        @raise CorruptDatabase: the database is not a sound SUTO store.
        @raise DatabaseTooNew: the database is of a newer schema.
        @raise StoreError: the URI carries a password, the server cannot
            be reached, or the schema could not be created or upgraded.
        """
        if schema_dir is None:
            schema_dir = SHIPPED_SCHEMA_DIR
        target = newest_version(schema_dir)
        connection = connect(checked_location(uri))
        try:
            with as_store_error("preparing the store"):
                # Another process's upgrade may hold the schema lock, and
                # an upgrade's statements run, for longer than the
                # session's lock timeout (session.SESSION_DEFAULTS).
                [(timeout,)] = connection.execute(
                    "SELECT current_setting('lock_timeout')"
                ).fetchall()
                connection.execute("SET lock_timeout = 0")
                connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
                cls._prepare(connection, schema_dir, target)
                connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
                connection.execute(
                    "SELECT set_config('lock_timeout', %s, false)", (timeout,)
                )
        except BaseException:
            # Closing the session releases the lock too.
            connection.close()
            raise
        return cls(connection, uri)

    @classmethod
    def open_read_only(cls, uri):
        """
        Open the store at C{uri} to read it, changing nothing: no creation,
        no upgrade, no write.

        @return: a L{PostgresStore} whose every write fails with
            L{StoreError}.
        @raise CorruptDatabase: the database is not a sound SUTO store.
        @raise StoreError: it holds no store, or one of another schema, or
            cannot be reached.
        """
        connection = connect(checked_location(uri), read_only=True)
        try:
            with as_store_error("opening the store"):
                version = _current_version(connection)
            if version is None:
                raise StoreError("the database holds no SUTO store")
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"the store has schema v{version}, and this SUTO reads "
                    f"v{SCHEMA_VERSION} only"
                )
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    @classmethod
    def _prepare(cls, connection, schema_dir, target):
        """
        Bring the database behind C{connection} to schema C{target},
        holding the schema lock.
        """
        version = _current_version(connection)
        _refuse_newer(version, target)
        if version is None:
            cls._create(connection, schema_dir, target)
        elif version < target:
            cls._upgrade(connection, schema_dir, version, target)

    @classmethod
    def _create(cls, connection, schema_dir, version):
        """
        Build the tables of schema C{version} in one transaction: the
        newest full schema up to C{version}, then any upgrade scripts from
        it (which only tests need: the shipped files hold the newest
        version whole).
        """
        schema, steps = creation_scripts(schema_dir, version)
        cls.log.info("creating the store with schema v{version}", version=version)
        with connection.transaction():
            connection.execute(schema)
            for _, script in steps:
                connection.execute(script)
            connection.execute(
                "INSERT INTO version (version) VALUES (%s)", (version,)
            )

    @classmethod
    def _upgrade(cls, connection, schema_dir, version, target):
        """
        Upgrade the database from schema C{version} to C{target} one step
        at a time.  Every script is read before anything is changed, and
        each step commits together with its version bump, so a failure
        leaves a database of a known version.
        """
        steps = upgrade_scripts(schema_dir, version, target)
        for step, script in steps:
            cls.log.info("upgrading the store to schema v{version}", version=step)
            try:
                with (
                    as_store_error(f"upgrading the store to schema v{step}"),
                    connection.transaction(),
                ):
                    connection.execute(script)
                    connection.execute("UPDATE version SET version = %s", (step,))
            except StoreError as e:
                # The server's primary message only (see as_store_error).
                raise StoreError(f"{e}; it is left at v{step - 1}") from e.__cause__

    def _open_connection(self):
        """
        @return: the connection, opened again if the server dropped it.
        @raise StoreError: the store has been closed, or the server cannot
            be reached again.
        """
        if self._connection is None:
            raise StoreError("the store is closed")
        if self._uri is not None and not usable(self._connection):
            self._connection.close()
            self._connection = connect(self._uri)
        return self._connection

    @contextmanager
    def _session(self, doing):
        """
        Run statements on this object's connection, opened again first if
        it was lost.  A failure is a L{StoreError}; after one that says
        the server can no longer take the store's writes, the connection
        is given up, to be opened again by the next call: a primary
        demoted to a standby by a failover keeps its sessions but refuses
        every write, and connecting again (with
        C{target_session_attrs=read-write} in the URI) reaches the new
        primary.

        @param doing: what the statements do, for the message of a
            L{StoreError}.
        @return: a context manager giving the connection.
        @raise StoreError: the store is closed, or PostgreSQL failed.
        """
        connection = self._open_connection()
        try:
            with as_store_error(doing):
                yield connection
        except StoreError as error:
            if self._uri is not None and isinstance(
                error.__cause__, psycopg.errors.ReadOnlySqlTransaction
            ):
                connection.close()
            raise

    def _write(self, sql, parameters):
        """
        Run one changing statement in a transaction of its own.

        @return: how many rows it changed.
        @raise StoreError: the store is closed, or PostgreSQL failed.
        """
        with self._session("writing to the store") as connection:
            return connection.execute(_psycopg_sql(sql), parameters).rowcount

    def _read(self, sql, parameters=()):
        """
        Run one query.

        @return: all its rows.
        @raise StoreError: the store is closed, or PostgreSQL failed.
        """
        with self._session("reading the store") as connection:
            return connection.execute(_psycopg_sql(sql), parameters).fetchall()

    @contextmanager
    def _transaction(self, doing, snapshot=False):
        """
        Run several statements as one transaction: it commits if the block
        returns and rolls back if it raises.

        @param doing: what the transaction does, for the message of a
            L{StoreError}.
        @param snapshot: whether the block only reads, and must see one
            snapshot of the database throughout; such a block may stay
            idle in its transaction (L{SNAPSHOT_MAY_IDLE}).
        @return: a context manager giving the connection, which takes
            statements with C{?} parameter marks.
        @raise StoreError: the store is closed, or PostgreSQL failed.
        """
        with self._session(doing) as connection, connection.transaction():
            if snapshot:
                connection.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
                connection.execute(SNAPSHOT_MAY_IDLE)
            yield _Statements(connection)

    def close(self):
        """
        See L{IStore.close}.
        """
        if self._connection is None:
            raise StoreError("the store is closed")
        self._connection.close()
        self._connection = None
