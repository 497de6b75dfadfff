# -*- test-case-name: tests.store.sqlite.test_dbfile -*-
"""
The SQLite store's file: its versioned schema files, its atomic creation,
the checks an existing file must pass, and the pragmas every connection
runs with.

The schema lives in versioned SQL files beside this module: each
C{upgrade-to-vN.sql} turns version N-1 into version N, and a C{vN.sql} is
the full schema of version N (it creates the one-row C{version} table
too).  Only v1 and the newest version are kept whole: v1 is where every
chain of upgrades starts, and the newest creates a fresh database in one
script.  A database of any version between is v1 followed by its upgrade
scripts, so no version's tables are written out twice.  The highest
version named by either kind of file is the version this code writes.
"""

import os
import re
import sqlite3
import tempfile
import urllib.parse

from suto_server.store.errors import CorruptDatabase, StoreError

# The version the shipped schema/ files describe; a test holds them together.
SCHEMA_VERSION = 5

SHIPPED_SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")
_SCHEMA_NAME = re.compile(r"(upgrade-to-)?v([1-9][0-9]*)\.sql")


def _schema_versions(schema_dir):
    """
    @param schema_dir: a directory of schema files.
    @return: two sets: the versions C{schema_dir} holds a full schema
        (C{vN.sql}) of, and those it holds an upgrade script
        (C{upgrade-to-vN.sql}) to.
    @raise StoreError: it holds no full schema, or cannot be listed.
    """
    try:
        names = os.listdir(schema_dir)
    except OSError as e:
        raise StoreError(f"cannot list schema files: {e}") from e
    full, upgrades = set(), set()
    for match in map(_SCHEMA_NAME.fullmatch, names):
        if match is not None:
            kind = upgrades if match.group(1) else full
            kind.add(int(match.group(2)))
    if not full:
        raise StoreError(f"no vN.sql schema file in {schema_dir}")
    return full, upgrades


def newest_version(schema_dir):
    """
    @param schema_dir: a directory of schema files.
    @return: the highest N for which C{schema_dir} holds C{vN.sql} or
        C{upgrade-to-vN.sql}.
    @raise StoreError: it holds no full schema, or cannot be listed.
    """
    return max(set().union(*_schema_versions(schema_dir)))


def upgrade_scripts(schema_dir, version, target):
    """
    Read every script that upgrades schema C{version} to C{target}.

    @return: a list of (step, script) pairs, one for each version after
        C{version} up to C{target}, in order.
    @raise StoreError: a script is missing or cannot be read.
    """
    return [
        (step, read_script(schema_dir, f"upgrade-to-v{step}.sql"))
        for step in range(version + 1, target + 1)
    ]


def creation_scripts(schema_dir, version):
    """
    Read the scripts that build a new database of schema C{version}: the
    newest full schema up to C{version}, then the upgrades from it.

    @return: the full schema's text and a list of (step, script) pairs as
        L{upgrade_scripts} gives them.
    @raise StoreError: a script is missing or cannot be read.
    """
    full, _ = _schema_versions(schema_dir)
    base = max(number for number in full if number <= version)
    return (
        read_script(schema_dir, f"v{base}.sql"),
        upgrade_scripts(schema_dir, base, version),
    )


def read_script(schema_dir, name):
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
