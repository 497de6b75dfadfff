"""
The embedded default store of accounts, enrollment and key rotation state,
profile moves and the audit log: one SQLite file.

The schema lives in versioned SQL files: C{vN.sql} is the full schema of
version N (it creates the one-row C{version} table too) and
C{upgrade-to-vN.sql} turns version N-1 into version N.  The newest C{vN.sql}
is the version this code writes.

Opening a path goes one of three ways:
 - no file there: the newest schema is built under a temporary name beside
   the path and renamed into place only once complete, so a crash never
   leaves a half-made database at the path;
 - a file of an older version: after the checks below, it is copied with
   SQLite's backup API to C{<path>.bak-v<N>}, then each upgrade script runs
   in its own transaction together with its version bump;
 - a file of the newest version: it is used as it is.
An existing file is first checked (a SQLite file, SQLite's integrity and
foreign-key checks, one version row); a failure raises L{CorruptDatabase}
and a version newer than this code knows raises L{DatabaseTooNew}, in both
cases without changing the file.

Writes that must happen together (using up an enrollment window and
storing its profile; a batch of key rotations; reading the last audit
record and chaining the next one to it) run in one transaction that takes
the write lock at once, so no other process can slip in between its read
and its writes.  A batch of rotations thus costs one sync to disk
however many devices it serves.

Every connection runs with foreign keys on, a write-ahead log and
C{synchronous = FULL}, because secrets that must survive a power cut will
live here.  Every file is created with mode 0600 (SQLite gives the C{-wal}
and C{-shm} files the mode of the database itself).
"""

import os
import re
import sqlite3
import tempfile
import threading
import urllib.parse
from contextlib import contextmanager, nullcontext

from twisted.logger import Logger
from zope.interface import implementer

from suto_server.core.schemes import identify
from suto_server.store import chain
from suto_server.store.errors import (
    CorruptDatabase,
    DatabaseTooNew,
    ProfileExists,
    StoreError,
    UnknownProfile,
    UnknownUser,
    UnknownWindow,
    UserExists,
)
from suto_server.store.interfaces import IStore
from suto_server.store.records import (
    RETIRED_KEY_HISTORY,
    AuditEvent,
    BlacklistEntry,
    EnrollmentWindow,
    Move,
    Profile,
    UserRecord,
    check_blacklist_entry,
    check_key_id,
    check_key_use,
    check_move,
    check_profile,
    check_rotation_commit,
    check_time,
    check_username,
    check_window,
    checked_audit_events,
)

# The version the shipped schema/ files describe; a test holds them together.
SCHEMA_VERSION = 5

# A window's networks are kept as one text column; no network in CIDR
# notation contains this.
_NETWORK_SEPARATOR = ","
# So are an audit record's locations; the store accepts only printable
# ones, and a line break is not.
_LOCATION_SEPARATOR = "\n"

_WINDOW_COLUMNS = (
    "username, otp_hash, networks, location_name, opened_at, deadline,"
    " attempts, max_attempts, replace_profile"
)
_PROFILE_COLUMNS = (
    "username, fingerprint_hash, key_sealed, key_id, generation,"
    " enrolled_at, location, location_name, previous_key_sealed,"
    " previous_key_id, current_confirmed, rotated_at, last_seen,"
    " last_address, rotation_failures"
)
_PROFILE_PARAMETERS = ", ".join("?" * len(_PROFILE_COLUMNS.split(",")))
_AUDIT_COLUMNS = (
    "time, event, username, source, reason, locations, previous_hash, hash"
)
_BLACKLIST_COLUMNS = "username, time, reason, source, alert"
_MOVE_COLUMNS = (
    "username, time, old_address, new_address, old_location_name,"
    " new_location_name"
)

_SHIPPED_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")
_FULL_SCHEMA_NAME = re.compile(r"v([1-9][0-9]*)\.sql")


def _newest_version(schema_dir):
    """
    @param schema_dir: a directory of schema files.
    @return: the highest N for which C{schema_dir} holds C{vN.sql}.
    @raise StoreError: it holds none, or cannot be listed.
    """
    try:
        names = os.listdir(schema_dir)
    except OSError as e:
        raise StoreError(f"cannot list schema files: {e}") from e
    versions = [
        int(match.group(1))
        for match in map(_FULL_SCHEMA_NAME.fullmatch, names)
        if match is not None
    ]
    if not versions:
        raise StoreError(f"no vN.sql schema file in {schema_dir}")
    return max(versions)


def _read_script(schema_dir, name):
    """
    @return: the text of the schema file C{name} in C{schema_dir}.
    @raise StoreError: the file cannot be read.
    """
    try:
        with open(os.path.join(schema_dir, name), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise StoreError(f"cannot read schema file {name}: {e}") from e


def _sync_directory(path):
    """
    Flush a directory's entries to disk, so that a rename into it survives
    a power cut.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path, fill):
    """
    Create the SQLite file C{path} all at once: C{fill} writes a new
    database under a temporary name in the same directory (mode 0600), which
    is renamed to C{path} only if C{fill} returns.  On any failure the
    temporary file is removed and nothing appears at C{path}.

    @param fill: called with a L{sqlite3.Connection} to the new file.
    """
    directory = os.path.dirname(path) or os.curdir
    fd, temporary = tempfile.mkstemp(
        prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    os.close(fd)
    try:
        connection = sqlite3.connect(temporary)
        try:
            connection.execute("PRAGMA synchronous = FULL")
            fill(connection)
        finally:
            connection.close()
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    _sync_directory(directory)


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


def _window_row(window):
    """
    @return: the C{windows} row of C{window}, in L{_WINDOW_COLUMNS} order.
    """
    return (
        window.username,
        window.otp_hash,
        _NETWORK_SEPARATOR.join(window.networks),
        window.location_name,
        window.opened_at,
        window.deadline,
        window.attempts,
        window.max_attempts,
        int(window.replace),
    )


def _window_from_row(row):
    """
    @return: the L{EnrollmentWindow} a C{windows} row read with
        L{_WINDOW_COLUMNS} holds.
    """
    (
        username,
        otp_hash,
        networks,
        location_name,
        opened_at,
        deadline,
        attempts,
        max_attempts,
        replace_profile,
    ) = row
    return EnrollmentWindow(
        username=username,
        otp_hash=otp_hash,
        networks=tuple(networks.split(_NETWORK_SEPARATOR)),
        location_name=location_name,
        opened_at=opened_at,
        deadline=deadline,
        attempts=attempts,
        max_attempts=max_attempts,
        replace=bool(replace_profile),
    )


def _profile_row(profile):
    """
    @return: the C{profiles} row of C{profile}, in L{_PROFILE_COLUMNS}
        order.
    """
    return (
        profile.username,
        profile.fingerprint_hash,
        profile.key_sealed,
        profile.key_id,
        profile.generation,
        profile.enrolled_at,
        profile.location,
        profile.location_name,
        profile.previous_key_sealed,
        profile.previous_key_id,
        int(profile.current_confirmed),
        profile.rotated_at,
        profile.last_seen,
        profile.last_address,
        profile.rotation_failures,
    )


def _profile_from_row(row):
    """
    @return: the L{Profile} a C{profiles} row read with L{_PROFILE_COLUMNS}
        holds.
    """
    (
        username,
        fingerprint_hash,
        key_sealed,
        key_id,
        generation,
        enrolled_at,
        location,
        location_name,
        previous_key_sealed,
        previous_key_id,
        current_confirmed,
        rotated_at,
        last_seen,
        last_address,
        rotation_failures,
    ) = row
    return Profile(
        username=username,
        fingerprint_hash=fingerprint_hash,
        key_sealed=key_sealed,
        key_id=key_id,
        generation=generation,
        enrolled_at=enrolled_at,
        location=location,
        location_name=location_name,
        previous_key_sealed=previous_key_sealed,
        previous_key_id=previous_key_id,
        current_confirmed=bool(current_confirmed),
        rotated_at=rotated_at,
        last_seen=last_seen,
        last_address=last_address,
        rotation_failures=rotation_failures,
    )


def _locations_from_text(text):
    """
    @return: the locations an audit record's C{locations} column holds.
    """
    return tuple(text.split(_LOCATION_SEPARATOR)) if text else ()


def _audit_row(event):
    """
    @return: the C{audit} row of a chained C{event}, in L{_AUDIT_COLUMNS}
        order.
    """
    return (
        event.time,
        event.event,
        event.username,
        event.source,
        event.reason,
        _LOCATION_SEPARATOR.join(event.locations),
        event.previous_hash,
        event.hash,
    )


def _audit_from_row(row):
    """
    @return: the L{AuditEvent} an C{audit} row read with L{_AUDIT_COLUMNS}
        holds.
    """
    time, event, username, source, reason, locations, previous, hash_ = row
    return AuditEvent(
        time=time,
        event=event,
        username=username,
        source=source,
        reason=reason,
        locations=_locations_from_text(locations),
        previous_hash=previous,
        hash=hash_,
    )


def _audit_link(previous, time, event, username, source, reason, locations):
    """
    L{chain.link} over the columns of an C{audit} row, for the upgrade
    script that chains the records of an older database.
    """
    return chain.link(
        previous,
        AuditEvent(
            time,
            event,
            username,
            source,
            reason,
            _locations_from_text(locations),
        ),
    )


def _missing(first, last):
    """
    @return: the problem of the audit records of ids C{first} to C{last}
        having been removed.
    """
    if first == last:
        return f"the record of id {first} was removed"
    return f"the records of ids {first} to {last} were removed"


def _retire(connection, username, key_id, now):
    """
    Add C{key_id} to the retired keys of C{username}'s profile, forgetting
    all but the newest L{RETIRED_KEY_HISTORY} of them, within the caller's
    transaction.
    """
    connection.execute(
        "INSERT INTO retired_keys (username, key_id, retired_at)"
        " VALUES (?, ?, ?)",
        (username, key_id, now),
    )
    connection.execute(
        "DELETE FROM retired_keys WHERE username = ? AND id NOT IN"
        " (SELECT id FROM retired_keys WHERE username = ?"
        " ORDER BY id DESC LIMIT ?)",
        (username, username, RETIRED_KEY_HISTORY),
    )


def _commit_one(connection, commit):
    """
    Apply one rotation within the caller's transaction, if the profile's
    current key is still the one it was derived from.

    @param commit: a checked L{RotationCommit}.
    @return: whether it was applied.
    """
    rows = connection.execute(
        "SELECT previous_key_id FROM profiles"
        " WHERE username = ? AND key_id = ? AND generation = ?",
        (
            commit.username,
            commit.expected_key_id,
            commit.new_generation - 1,
        ),
    ).fetchall()
    if not rows:
        return False
    (previous_key_id,) = rows[0]
    if previous_key_id is not None:
        _retire(connection, commit.username, previous_key_id, commit.now)
    connection.execute(
        "UPDATE profiles SET previous_key_sealed = key_sealed,"
        " previous_key_id = key_id, key_sealed = ?, key_id = ?,"
        " generation = ?, current_confirmed = 0, rotated_at = ?,"
        " last_seen = ?, last_address = ?, rotation_failures = 0"
        " WHERE username = ?",
        (
            commit.new_key_sealed,
            commit.new_key_id,
            commit.new_generation,
            commit.now,
            commit.now,
            commit.address,
            commit.username,
        ),
    )
    _end_offline_spell(connection, commit)
    return True


def _end_offline_spell(connection, commit):
    """
    A rotation committed: the profile is online again, and the offline
    step it reconnected with, if any, is spent.  Within the caller's
    transaction.
    """
    connection.execute("DELETE FROM offline WHERE username = ?", (commit.username,))
    if commit.offline_step is not None:
        connection.execute(
            "INSERT INTO offline_steps (username, step) VALUES (?, ?)"
            " ON CONFLICT (username) DO UPDATE"
            " SET step = max(step, excluded.step)",
            (commit.username, commit.offline_step),
        )


def _corrupt(path, reason):
    """
    @return: a L{CorruptDatabase} saying what is wrong with C{path} and
        what an operator can do about it.
    """
    return CorruptDatabase(
        f"{path} is not a usable SUTO database ({reason}); restore it from "
        f"a {path}.bak-v<N> copy if there is one, or move it away to start "
        f"with an empty store"
    )


def _connect(path, read_only=False):
    """
    @param read_only: open C{path} so that nothing can be written to it.
    @return: a connection to C{path} with the pragmas every connection to
        the store runs with (the journal mode is set once the file is known
        to be ours).
    @raise StoreError: the file cannot be opened.
    @raise CorruptDatabase: the file is not a SQLite database.
    """
    try:
        if read_only:
            uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True)
        else:
            connection = sqlite3.connect(path)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open {path}: {e}") from e
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as e:
        connection.close()
        raise _corrupt(path, str(e)) from e
    return connection


def _checked_version(connection, path):
    """
    Check that C{path} is a sound SUTO database, without changing it.

    @return: its schema version.
    @raise CorruptDatabase: it is not.
    """
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchall()
        dangling = connection.execute("PRAGMA foreign_key_check").fetchall()
        rows = connection.execute("SELECT version FROM version").fetchall()
    except sqlite3.DatabaseError as e:
        raise _corrupt(path, str(e)) from e
    if integrity != [("ok",)]:
        raise _corrupt(path, "integrity check failed")
    if dangling:
        raise _corrupt(path, "foreign key check failed")
    if len(rows) != 1 or type(rows[0][0]) is not int or rows[0][0] < 1:
        raise _corrupt(path, "the version table must hold one version")
    return rows[0][0]


@implementer(IStore)
class SQLiteStore:
    """
    Accounts, enrollment and rotation state, moves and the audit log kept
    in one SQLite file, through one connection.  Every method is
    synchronous: a local SQLite read takes well under a millisecond.

    A store may have siblings (L{SQLiteStore.sibling}): connections of
    their own to the same file, for another thread.  The file is in
    write-ahead-log mode, so each connection reads the last committed
    state while another writes, and the siblings take one lock around
    every write transaction, so a writer waits exactly as long as the
    transaction before it rather than polling SQLite's busy handler.
    """

    log = Logger()

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
        return type(self)(_connect(self._path), self._path, self._write_lock)

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
            schema_dir = _SHIPPED_SCHEMA_DIR
        target = _newest_version(schema_dir)
        if not os.path.exists(path):
            cls._create(path, schema_dir, target)
        connection = _connect(path)
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
        connection = _connect(path, read_only=True)
        try:
            version = _checked_version(connection, path)
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
        Build a new database of schema C{version} at C{path}, atomically.

        @raise StoreError: the schema could not be applied or the file not
            written; nothing is left at C{path}.
        """
        schema = _read_script(schema_dir, f"v{version}.sql")

        def fill(connection):
            connection.executescript(schema)
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
            _write_atomically(path, fill)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot create {path}: {e}") from e

    @classmethod
    def _prepare(cls, connection, path, schema_dir, target):
        """
        Check the database behind C{connection}, switch it to write-ahead
        logging and bring it to schema C{target}.
        """
        version = _checked_version(connection, path)
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
        steps = [
            (step, _read_script(schema_dir, f"upgrade-to-v{step}.sql"))
            for step in range(version + 1, target + 1)
        ]
        connection.create_function(
            "audit_link", 7, _audit_link, deterministic=True
        )
        backup = f"{path}.bak-v{version}"
        cls.log.info(
            "backing up {path} (schema v{version}) to {backup}",
            path=path,
            version=version,
            backup=backup,
        )
        try:
            _write_atomically(backup, connection.backup)
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

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify, so the account could never log in.
        """
        check_username(username)
        scheme = identify(password_hash)
        added = self._write(
            "INSERT INTO users"
            " (username, password_hash, scheme, created, updated)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (username) DO NOTHING",
            (username, password_hash, scheme, now, now),
        )
        if added == 0:
            raise UserExists(f"user {username} already exists")

    def set_password_hash(self, username, password_hash, now):
        """
        See L{IUserStore.set_password_hash}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
        changed = self._write(
            "UPDATE users SET password_hash = ?, scheme = ?, updated = ?"
            " WHERE username = ?",
            (password_hash, scheme, now, username),
        )
        if changed == 0:
            raise UnknownUser(f"no user {username}")

    def remove_user(self, username):
        """
        See L{IUserStore.remove_user}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        removed = self._write(
            "DELETE FROM users WHERE username = ?", (username,)
        )
        if removed == 0:
            raise UnknownUser(f"no user {username}")

    def list_users(self):
        """
        See L{IUserStore.list_users}.
        """
        rows = self._read(
            "SELECT username, scheme, created, updated FROM users"
            " ORDER BY username"
        )
        return [UserRecord(*row) for row in rows]

    def hash_for(self, username):
        """
        See L{IPasswordHashSource.hash_for}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        rows = self._read(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None

    def open_window(self, window):
        """
        See L{IWindowStore.open_window}.

        @raise suto_server.core.schemes.UnsupportedScheme: the one-time
            password's hash is not one SUTO can verify.
        """
        check_window(window)
        self._write(
            f"INSERT OR REPLACE INTO windows ({_WINDOW_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _window_row(window),
        )

    def get_window(self, username):
        """
        See L{IWindowStore.get_window}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM windows WHERE username = ?",
            (username,),
        )
        return _window_from_row(rows[0]) if rows else None

    def list_windows(self):
        """
        See L{IWindowStore.list_windows}.
        """
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM windows ORDER BY username"
        )
        return [_window_from_row(row) for row in rows]

    def record_failed_attempt(self, username):
        """
        See L{IWindowStore.record_failed_attempt}.
        """
        check_username(username)
        with self._transaction("counting a failed attempt") as connection:
            rows = connection.execute(
                "UPDATE windows SET attempts = attempts + 1"
                " WHERE username = ? RETURNING attempts",
                (username,),
            ).fetchall()
        if not rows:
            raise UnknownWindow(f"no enrollment window for {username}")
        return rows[0][0]

    def close_window(self, username):
        """
        See L{IWindowStore.close_window}.
        """
        check_username(username)
        return (
            self._write("DELETE FROM windows WHERE username = ?", (username,))
            > 0
        )

    def complete_enrollment(self, profile):
        """
        See L{IWindowStore.complete_enrollment}.
        """
        check_profile(profile)
        username = profile.username
        with self._transaction("completing an enrollment") as connection:
            rows = connection.execute(
                "DELETE FROM windows WHERE username = ?"
                " RETURNING replace_profile",
                (username,),
            ).fetchall()
            if not rows:
                raise UnknownWindow(f"no enrollment window for {username}")
            if rows[0][0]:
                connection.execute(
                    "DELETE FROM profiles WHERE username = ?", (username,)
                )
            added = connection.execute(
                f"INSERT INTO profiles ({_PROFILE_COLUMNS})"
                f" VALUES ({_PROFILE_PARAMETERS})"
                " ON CONFLICT (username) DO NOTHING",
                _profile_row(profile),
            ).rowcount
            if added == 0:
                raise ProfileExists(f"{username} is already enrolled")

    def get_profile(self, username):
        """
        See L{IProfileStore.get_profile}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE username = ?",
            (username,),
        )
        return _profile_from_row(rows[0]) if rows else None

    def list_profiles(self):
        """
        See L{IProfileStore.list_profiles}.
        """
        rows = self._read(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles ORDER BY username"
        )
        return [_profile_from_row(row) for row in rows]

    def remove_profile(self, username):
        """
        See L{IProfileStore.remove_profile}.
        """
        check_username(username)
        return (
            self._write("DELETE FROM profiles WHERE username = ?", (username,))
            > 0
        )

    def append_audit(self, event):
        """
        See L{IAuditStore.append_audit}.
        """
        return self.append_audits([event])[0]

    def append_audits(self, events):
        """
        See L{IAuditStore.append_audits}.
        """
        events = checked_audit_events(events)
        with self._transaction("appending to the audit log") as connection:
            rows = connection.execute(
                "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchall()
            stored = chain.chained_all(rows[0][0] if rows else chain.GENESIS, events)
            connection.executemany(
                f"INSERT INTO audit ({_AUDIT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_audit_row(record) for record in stored],
            )
        return stored

    def audit_events(self, since=None):
        """
        See L{IAuditStore.audit_events}.

        @raise ValueError: C{since} is neither L{None} nor a time the store
            accepts (see L{check_time}).
        """
        if since is not None:
            check_time("since", since)
        rows = self._read(
            f"SELECT {_AUDIT_COLUMNS} FROM audit"
            " WHERE ? IS NULL OR time >= ? ORDER BY time, id",
            (since, since),
        )
        return [_audit_from_row(row) for row in rows]

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}.

        Besides the chain, the ids tell what the chain alone cannot: they
        are given out one after the other from 1, and SQLite remembers the
        last one given (in C{sqlite_sequence}), so records removed from
        the end, even if more were appended since, leave missing ids.
        """
        with self._transaction(
            "verifying the audit log", begin="BEGIN"
        ) as connection:
            rows = connection.execute(
                f"SELECT id, {_AUDIT_COLUMNS} FROM audit ORDER BY id"
            ).fetchall()
            given = connection.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'audit'"
            ).fetchall()
        found = chain.breaks(_audit_from_row(row[1:]) for row in rows)
        expected = 1
        for position, (number, *_) in enumerate(rows, 1):
            if number != expected:
                found.append((position, _missing(expected, number - 1)))
            expected = number + 1
        if given and given[0][0] >= expected:
            found.append((len(rows) + 1, _missing(expected, given[0][0])))
        found.sort(key=lambda problem: problem[0])
        return [problem for _, problem in found]

    def record_move(
        self,
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
    ):
        """
        See L{IProfileStore.record_move}.
        """
        move = Move(
            username,
            time,
            old_address,
            new_address,
            old_location_name,
            new_location_name,
        )
        check_move(move)
        with self._transaction("recording a move") as connection:
            connection.execute(
                f"INSERT INTO moves ({_MOVE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    move.username,
                    move.time,
                    move.old_address,
                    move.new_address,
                    move.old_location_name,
                    move.new_location_name,
                ),
            )
            connection.execute(
                "UPDATE profiles SET last_address = ?, last_seen = ?"
                " WHERE username = ?",
                (move.new_address, move.time, move.username),
            )

    def moves(self, username):
        """
        See L{IProfileStore.moves}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {_MOVE_COLUMNS} FROM moves WHERE username = ?"
            " ORDER BY id",
            (username,),
        )
        return [Move(*row) for row in rows]

    def commit_rotations(self, rotations):
        """
        See L{IProfileStore.commit_rotations}.
        """
        rotations = list(rotations)
        for commit in rotations:
            check_rotation_commit(commit)
        with self._transaction("committing rotations") as connection:
            return [_commit_one(connection, commit) for commit in rotations]

    def confirm_current(self, username, key_id, now, address):
        """
        See L{IProfileStore.confirm_current}.
        """
        check_key_use(username, key_id, now, address)
        with self._transaction("confirming a key") as connection:
            rows = connection.execute(
                "SELECT previous_key_id FROM profiles"
                " WHERE username = ? AND key_id = ?",
                (username, key_id),
            ).fetchall()
            if not rows:
                return False
            (previous_key_id,) = rows[0]
            if previous_key_id is not None:
                _retire(connection, username, previous_key_id, now)
            connection.execute(
                "UPDATE profiles SET current_confirmed = 1,"
                " previous_key_sealed = NULL, previous_key_id = NULL,"
                " last_seen = ?, last_address = ? WHERE username = ?",
                (now, address, username),
            )
        return True

    def roll_back(self, username, key_id, now, address):
        """
        See L{IProfileStore.roll_back}.
        """
        check_key_use(username, key_id, now, address)
        with self._transaction("rolling back a rotation") as connection:
            rows = connection.execute(
                "SELECT key_id FROM profiles WHERE username = ?"
                " AND previous_key_id = ? AND current_confirmed = 0",
                (username, key_id),
            ).fetchall()
            if not rows:
                return False
            _retire(connection, username, rows[0][0], now)
            connection.execute(
                "UPDATE profiles SET key_sealed = previous_key_sealed,"
                " key_id = previous_key_id, generation = generation - 1,"
                " previous_key_sealed = NULL, previous_key_id = NULL,"
                " current_confirmed = 1, last_seen = ?, last_address = ?"
                " WHERE username = ?",
                (now, address, username),
            )
        return True

    def record_rotation_failure(self, username):
        """
        See L{IProfileStore.record_rotation_failure}.
        """
        check_username(username)
        with self._transaction("counting a failed rotation") as connection:
            rows = connection.execute(
                "UPDATE profiles SET rotation_failures = rotation_failures + 1"
                " WHERE username = ? RETURNING rotation_failures",
                (username,),
            ).fetchall()
        if not rows:
            raise UnknownProfile(f"no profile for {username}")
        return rows[0][0]

    def is_retired(self, username, key_id):
        """
        See L{IProfileStore.is_retired}.
        """
        check_username(username)
        check_key_id(key_id)
        rows = self._read(
            "SELECT 1 FROM retired_keys WHERE username = ? AND key_id = ?",
            (username, key_id),
        )
        return bool(rows)

    def silent_profiles(self, before):
        """
        See L{IProfileStore.silent_profiles}.
        """
        check_time("before", before)
        rows = self._read(
            "SELECT username FROM profiles WHERE last_seen < ?"
            " AND username NOT IN (SELECT username FROM offline)"
            " ORDER BY username",
            (before,),
        )
        return [username for (username,) in rows]

    def mark_offline(self, usernames, now, silent_before=None):
        """
        See L{IProfileStore.mark_offline}.
        """
        usernames = list(usernames)
        for username in usernames:
            check_username(username)
        check_time("now", now)
        if silent_before is not None:
            check_time("silent_before", silent_before)
        marked = []
        with self._transaction("marking profiles offline") as connection:
            for username in usernames:
                added = connection.execute(
                    "INSERT INTO offline (username, since)"
                    " SELECT username, ? FROM profiles WHERE username = ?"
                    " AND (? IS NULL OR last_seen < ?)"
                    " ON CONFLICT (username) DO NOTHING",
                    (now, username, silent_before, silent_before),
                ).rowcount
                if added:
                    marked.append(username)
        return marked

    def offline_profiles(self):
        """
        See L{IProfileStore.offline_profiles}.
        """
        return dict(self._read("SELECT username, since FROM offline"))

    def offline_since(self, username):
        """
        See L{IProfileStore.offline_since}.
        """
        check_username(username)
        rows = self._read(
            "SELECT since FROM offline WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None

    def standing(self, username):
        """
        See L{IBlacklistStore.standing}: one query for both marks.
        """
        check_username(username)
        [(blacklisted, since)] = self._read(
            "SELECT EXISTS (SELECT 1 FROM blacklist WHERE username = ?), "
            "(SELECT since FROM offline WHERE username = ?)",
            (username, username),
        )
        return bool(blacklisted), since

    def last_offline_step(self, username):
        """
        See L{IProfileStore.last_offline_step}.
        """
        check_username(username)
        rows = self._read(
            "SELECT step FROM offline_steps WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None

    def add_to_blacklist(self, entry):
        """
        See L{IBlacklistStore.add_to_blacklist}.
        """
        check_blacklist_entry(entry)
        return (
            self._write(
                f"INSERT INTO blacklist ({_BLACKLIST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (
                    entry.username,
                    entry.time,
                    entry.reason,
                    entry.source,
                    entry.alert,
                ),
            )
            > 0
        )

    def blacklist_entry(self, username):
        """
        See L{IBlacklistStore.blacklist_entry}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {_BLACKLIST_COLUMNS} FROM blacklist WHERE username = ?",
            (username,),
        )
        return BlacklistEntry(*rows[0]) if rows else None

    def list_blacklist(self):
        """
        See L{IBlacklistStore.list_blacklist}.
        """
        rows = self._read(
            f"SELECT {_BLACKLIST_COLUMNS} FROM blacklist ORDER BY username"
        )
        return [BlacklistEntry(*row) for row in rows]

    def unblock(self, username):
        """
        See L{IBlacklistStore.unblock}.
        """
        check_username(username)
        with self._transaction("lifting a blacklist entry") as connection:
            lifted = connection.execute(
                "DELETE FROM blacklist WHERE username = ?", (username,)
            ).rowcount
            if lifted:
                connection.execute(
                    "DELETE FROM profiles WHERE username = ?", (username,)
                )
        return lifted > 0

    def close(self):
        """
        See L{IStore.close}.
        """
        self._open_connection().close()
        self._connection = None
