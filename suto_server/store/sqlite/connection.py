# -*- test-case-name: tests.store.sqlite.test_connection,tests.store.sqlite.test_upgrade -*-
"""
The connection under every part of L{suto_server.store.sqlite.SQLiteStore}:
opening (creating, checking, upgrading) the file, the transactions the
parts run their statements in, siblings for another thread, and closing.
"""

import os
import sqlite3
import threading
from contextlib import contextmanager, nullcontext

from twisted.logger import Logger

from suto_server.store.errors import DatabaseTooNew, StoreError
from suto_server.store.sql.schemafiles import (
    creation_scripts,
    newest_version,
    upgrade_scripts,
)
from suto_server.store.sqlite.audit import audit_link
from suto_server.store.sqlite.dbfile import (
    SCHEMA_VERSION,
    SHIPPED_SCHEMA_DIR,
    checked_version,
    connect,
    write_atomically,
)


@contextmanager
def _as_store_error(doing):
    """
    Turn a failure of SQLite itself (a full disk, a lock held too long by
    another process) into a L{StoreError}, so callers need to know only the
    store's errors.

    @param doing: what was being done, for the message.
    """
    try:
        yield
    except sqlite3.Error as e:
        raise StoreError(f"{doing} failed: {e}") from e


def _provide_audit_link(connection):
    """
    Give the upgrade scripts on C{connection} the audit chain's hash
    function, which the v4 upgrade chains the existing audit log with.
    """
    connection.create_function("audit_link", 7, audit_link, deterministic=True)


class Connection:
    """
    One connection to the store's file, and the write lock it shares
    with its siblings; the parts of L{SQLiteStore} run their statements
    through L{_read}, L{_write} and L{_transaction}.
    """

    log = Logger()

    # A write transaction holds the whole database from its start (see
    # _transaction), so a row it reads needs no lock of its own.
    _LOCK_READ = ""

    def __init__(self, connection, path=None, write_lock=None):
        """
        @param connection: an open connection to a database of the newest
            schema; use L{SQLiteStore.open} rather than calling this.
        @param path: the file behind C{connection}, for L{sibling}.
        @param write_lock: the lock shared with the siblings; a new one
            unless given.
        """
        self._connection = connection
        self._path = path
        self._write_lock = threading.RLock() if write_lock is None else write_lock

    def sibling(self):
        """
        Open another connection to this store's file, with the same
        pragmas and the same write lock, for use by the thread that calls
        this (SQLite connections are bound to the thread that opened
        them).  The file is not checked again: L{open} did that.

        @return: a new L{SQLiteStore}.
        @raise StoreError: this store has no file (it was built from a
            bare connection), or the file cannot be opened.
        """
        if self._path is None:
            raise StoreError("this store has no file to open again")
        return type(self)(connect(self._path), self._path, self._write_lock)

    @classmethod
    def open(cls, path, schema_dir=None):
        """
        Create the database at C{path}, or open and upgrade the one there.

        @param path: the database file; its directory must exist.
        @param schema_dir: where the schema files are; the shipped ones
            unless given (tests give their own).
        @return: a L{SQLiteStore} on the newest schema.
        @raise CorruptDatabase: the file there is not a sound SUTO database.
        @raise DatabaseTooNew: the file there is of a newer schema.
        @raise StoreError: the file could not be created, opened or
            upgraded.
        """
        if schema_dir is None:
            schema_dir = SHIPPED_SCHEMA_DIR
        target = newest_version(schema_dir)
        if not os.path.exists(path):
            cls._create(path, schema_dir, target)
        connection = connect(path)
        try:
            cls._prepare(connection, path, schema_dir, target)
        except BaseException:
            connection.close()
            raise
        return cls(connection, path)

    @classmethod
    def open_read_only(cls, path):
        """
        Open the database at C{path} to read it, changing nothing: no
        creation, no upgrade, no write.  For checking a copy of the store,
        or the daemon's own while the daemon is down.

        @return: a L{SQLiteStore} whose every write fails with
            L{StoreError}.
        @raise CorruptDatabase: the file there is not a sound SUTO
            database.
        @raise StoreError: there is no file there, it cannot be opened, or
            it is not of this SUTO's schema.
        """
        if not os.path.isfile(path):
            raise StoreError(f"no database at {path}")
        connection = connect(path, read_only=True)
        try:
            version = checked_version(connection, path)
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has schema v{version}, and this SUTO reads "
                    f"v{SCHEMA_VERSION} only"
                )
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    @classmethod
    def _create(cls, path, schema_dir, version):
        """
        Build a new database of schema C{version} at C{path}, atomically:
        the newest full schema up to C{version}, then any upgrade scripts
        from it (which only tests need: the shipped files hold the newest
        version whole).

        @raise StoreError: the schema could not be applied or the file not
            written; nothing is left at C{path}.
        """
        schema, steps = creation_scripts(schema_dir, version)

        def fill(connection):
            _provide_audit_link(connection)
            connection.executescript(schema)
            for _, script in steps:
                connection.executescript(script)
            with connection:
                connection.execute(
                    "INSERT INTO version (version) VALUES (?)", (version,)
                )

        cls.log.info(
            "creating store {path} with schema v{version}",
            path=path,
            version=version,
        )
        try:
            write_atomically(path, fill)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot create {path}: {e}") from e

    @classmethod
    def _prepare(cls, connection, path, schema_dir, target):
        """
        Check the database behind C{connection}, switch it to write-ahead
        logging and bring it to schema C{target}.
        """
        version = checked_version(connection, path)
        if version > target:
            raise DatabaseTooNew(
                f"{path} has schema v{version} but this SUTO knows only up "
                f"to v{target}; run a newer SUTO or restore an older copy"
            )
        with _as_store_error(f"opening {path}"):
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != ("wal",):
            raise StoreError(f"cannot use a write-ahead log for {path}")
        if version < target:
            cls._upgrade(connection, path, schema_dir, version, target)

    @classmethod
    def _upgrade(cls, connection, path, schema_dir, version, target):
        """
        Back up the database at C{path}, then upgrade it from schema
        C{version} to C{target} one step at a time.  Every script is read
        before anything is changed, and each step commits together with its
        version bump, so a failure leaves a database of a known version.

        @raise StoreError: a script is missing, the backup failed or a
            step failed.
        """
        steps = upgrade_scripts(schema_dir, version, target)
        _provide_audit_link(connection)
        backup = f"{path}.bak-v{version}"
        cls.log.info(
            "backing up {path} (schema v{version}) to {backup}",
            path=path,
            version=version,
            backup=backup,
        )
        try:
            write_atomically(backup, connection.backup)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot back up {path} to {backup}: {e}") from e
        for step, script in steps:
            cls.log.info(
                "upgrading {path} to schema v{version}",
                path=path,
                version=step,
            )
            try:
                connection.executescript(
                    f"BEGIN;\n{script}\n;\n"
                    f"UPDATE version SET version = {step:d};\nCOMMIT;"
                )
            except sqlite3.Error as e:
                connection.rollback()
                raise StoreError(
                    f"upgrading {path} to schema v{step} failed ({e}); it is "
                    f"left at v{step - 1}"
                ) from e

    def _open_connection(self):
        """
        @return: the connection.
        @raise StoreError: the store has been closed.
        """
        if self._connection is None:
            raise StoreError("the store is closed")
        return self._connection

    def _write(self, sql, parameters):
        """
        Run one changing statement in a transaction of its own.

        @return: how many rows it changed.
        @raise StoreError: the store is closed, or SQLite failed.
        """
        connection = self._open_connection()
        with self._write_lock, _as_store_error("writing to the store"), connection:
            return connection.execute(sql, parameters).rowcount

    def _read(self, sql, parameters=()):
        """
        Run one query.

        @return: all its rows.
        @raise StoreError: the store is closed, or SQLite failed.
        """
        connection = self._open_connection()
        with _as_store_error("reading the store"):
            return connection.execute(sql, parameters).fetchall()

    @contextmanager
    def _transaction(self, doing, begin="BEGIN IMMEDIATE"):
        """
        Run several statements as one transaction, which takes the write
        lock at once so no other writer can change what it read: it
        commits if the block returns and rolls back if it raises.

        @param doing: what the transaction does, for the message of a
            L{StoreError}.
        @param begin: the statement that starts it; C{"BEGIN"} for one that
            only reads, which sees one snapshot of the database without
            keeping writers waiting.
        @return: a context manager giving the connection.
        @raise StoreError: the store is closed, or SQLite failed.
        """
        connection = self._open_connection()
        # A read-only transaction keeps no writer waiting.
        lock = self._write_lock if begin == "BEGIN IMMEDIATE" else nullcontext()
        with lock, _as_store_error(doing):
            connection.execute(begin)
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def backup_to(self, path):
        """
        Copy the whole store to a new file at C{path} through SQLite's
        online backup API: one consistent snapshot, with what is still in
        the write-ahead log (which a plain copy of the file misses), taken
        while the daemon goes on writing.  The copy is one self-contained
        file (a rollback journal, not a write-ahead log), readable as it
        is, and appears at C{path} only once it is complete.

        @raise StoreError: the copy failed; nothing is left at C{path}.
        """
        connection = self._open_connection()

        def fill(copy):
            connection.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")

        try:
            write_atomically(path, fill)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot back up the store to {path}: {e}") from e

    def close(self):
        """
        See L{IStore.close}.
        """
        self._open_connection().close()
        self._connection = None
