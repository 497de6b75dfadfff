# -*- test-case-name: tests.store.sqlite.test_connection,tests.store.sqlite.test_dbfile,tests.store.sqlite.test_upgrade,tests.store.test_sqlite -*-
"""
The embedded default store of accounts, enrollment and key rotation state,
profile moves and the audit log: one SQLite file.

The schema lives in versioned SQL files (see
L{suto_server.store.sqlite.dbfile}).  L{SQLiteStore} is composed of one
part per concept of L{suto_server.store.interfaces.IStore}, each over its
own tables: those every SQL store shares (L{suto_server.store.sql}:
accounts, windows, profiles and presence, blacklist) and an L{audit} part
of its own, all running their statements through the one L{connection}.

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

from zope.interface import implementer

from suto_server.store.interfaces import IStore
from suto_server.store.sql.accounts import Accounts
from suto_server.store.sql.blacklist import Blacklist
from suto_server.store.sql.presence import Presence
from suto_server.store.sql.profiles import Profiles
from suto_server.store.sql.windows import Windows
from suto_server.store.sqlite.audit import Audit
from suto_server.store.sqlite.connection import Connection
from suto_server.store.sqlite.dbfile import SCHEMA_VERSION
from suto_server.store.sqlite.transfer import SQLiteTransfer
from suto_server.store.transfer import IStoreTransfer

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]


@implementer(IStore, IStoreTransfer)
class SQLiteStore(
    Accounts, Windows, Profiles, Presence, Audit, Blacklist, SQLiteTransfer, Connection
):
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
