# -*- test-case-name: tests.store.test_open -*-
"""
The one place a store is chosen and opened.

The daemon (L{suto_server.tap}) and the admin command
(L{suto_server.admin.cli}) name no store class: they pass a location here
and get an L{IStore}.  A location is either a libpq connection URI
(C{postgresql://…} or C{postgres://…}), for the PostgreSQL store, or the
path of a SQLite file, the default.  Another store plugs in by being
chosen here from its location, and nothing else changes.
"""

from suto_server.store.interfaces import IStore
from suto_server.store.postgres import PostgresStore
from suto_server.store.sqlite import SQLiteStore

#: The schemes of a location that names a PostgreSQL database.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(location: str, read_only: bool = False) -> IStore:
    """
    Open the store at C{location}.

    @param location: a libpq connection URI (C{postgresql://…} or
        C{postgres://…}) naming no password (libpq reads it from
        C{PGPASSFILE} or C{PGPASSWORD}), or else the path of the SQLite
        file, whose directory must exist.
    @param read_only: open an existing store to read it, changing nothing
        (no creation, no upgrade, every write refused): for checking a
        copy of the store, or the daemon's own while the daemon is down.
        Otherwise the store is created if missing and brought to the
        newest schema.
    @return: the store, on the thread that called this (see L{IStore}).
    @raise suto_server.store.errors.StoreError: the store cannot be opened
        (L{suto_server.store.errors.CorruptDatabase} and
        L{suto_server.store.errors.DatabaseTooNew} among the reasons, and
        a URI that carries a password).
    """
    if is_postgres(location):
        store_class = PostgresStore
    else:
        store_class = SQLiteStore
    if read_only:
        return store_class.open_read_only(location)
    return store_class.open(location)


def is_postgres(location: str) -> bool:
    """
    @return: whether C{location} names a PostgreSQL database rather than
        a SQLite file.
    """
    return location.startswith(POSTGRES_SCHEMES)


def postgres_location(value: str) -> str:
    """
    Check an operator's C{--store}, which names a PostgreSQL database: the
    SQLite store has no option of its own, being always the data folder's
    file.

    @return: C{value}, a C{postgresql://} or C{postgres://} URI.
    @raise ValueError: it is not one.
    """
    if not is_postgres(value):
        raise ValueError(
            "must be a PostgreSQL connection URI (postgresql://...); without "
            "it the store is the data folder's SQLite file"
        )
    return value
