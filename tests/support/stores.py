"""
Store mixins: the same rules tests run once over each store.

A test case mixes in one of these with a mixin of tests that calls
C{make_store()}, and C{reopen_store()} to stand for a restarted server.
"""

import os

from suto_server.store.memory import MemoryStore
from suto_server.store.sqlite import SQLiteStore


class MemoryStoreMixin:
    """
    Rules over a L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()

    def reopen_store(self, store):
        """
        The store a restarted server finds: in memory, the same object
        (a crash of the rules, not of the store).
        """
        return store


class SQLiteStoreMixin:
    """
    Rules over a L{SQLiteStore} in a file of its own.
    """

    def make_store(self):
        folder = self.mktemp()
        os.makedirs(folder)
        self.path = os.path.join(folder, "suto.db")
        return SQLiteStore.open(self.path)

    def reopen_store(self, store):
        """
        The store a restarted server finds: the database file opened
        again.
        """
        store.close()
        return SQLiteStore.open(self.path)
