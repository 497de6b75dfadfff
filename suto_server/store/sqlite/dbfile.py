# -*- test-case-name: tests.store.sqlite.test_dbfile -*-
"""
The SQLite store's file: its atomic creation, the checks an existing file
must pass, and the pragmas every connection runs with.  Its schema lives
in versioned SQL files in C{schema/} beside this module, read as
L{suto_server.store.sql.schemafiles} says.
"""

import os
import sqlite3
import tempfile
import urllib.parse

from suto_server.store.errors import CorruptDatabase, StoreError

# The version the shipped schema/ files describe; a test holds them together.
SCHEMA_VERSION = 7

SHIPPED_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")


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


def write_atomically(path, fill):
    """
    Create the SQLite file C{path} all at once: C{fill} writes a new
    database under a temporary name in the same directory (mode 0600), which
    is renamed to C{path} only if C{fill} returns.  On any failure the
    temporary file is removed and nothing appears at C{path}.

    @param fill: called with a L{sqlite3.Connection} to the new file.

    Not L{suto_server.core.atomicfile.write_atomically}: that one writes
    bytes held in memory, while here SQLite itself writes the temporary
    file (a fresh schema, or a backup page by page through its backup
    API), so the file must exist and stay open to SQLite until it is
    renamed.
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


def connect(path, read_only=False):
    """
    No connection maps the file into memory (SQLite's C{mmap_size} stays
    0): the server reads on one connection while the database thread
    commits on another, and a read transaction that finds the other's
    commit unmaps the whole file (SQLite's C{pagerBeginReadTransaction})
    and faults its pages in again, which cost more than the reads through
    the file it saved (bench/RESULTS.md, "Issue 21: the rotation's
    statements").

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


def checked_version(connection, path):
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
