# -*- test-case-name: tests.store.test_open -*-
"""
The one place a store is chosen and opened.

The daemon (L{suto_server.tap}) and the admin command
(L{suto_server.admin.cli}) name no store class: they pass a location here
and get an L{IStore}.  Today every location is the path of a SQLite file;
a second store plugs in by being chosen here from its location, and
nothing else changes.
"""

from suto_server.store.interfaces import IStore
from suto_server.store.sqlite import SQLiteStore


def open_store(location: str, read_only: bool = False) -> IStore:
    """
    Open the store at C{location}.

    @param location: the path of the SQLite file; its directory must
        exist.
    @param read_only: open an existing store to read it, changing nothing
        (no creation, no upgrade, every write refused): for checking a
        copy of the store, or the daemon's own while the daemon is down.
        Otherwise the store is created if missing and brought to the
        newest schema.
    @return: the store, on the thread that called this (see L{IStore}).
    @raise suto_server.store.errors.StoreError: the store cannot be opened
        (L{suto_server.store.errors.CorruptDatabase} and
        L{suto_server.store.errors.DatabaseTooNew} among the reasons).
    """
    if read_only:
        return SQLiteStore.open_read_only(location)
    return SQLiteStore.open(location)
