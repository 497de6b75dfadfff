# -*- test-case-name: tests.store.test_memory -*-
"""
What a L{suto_server.store.memory.MemoryStore} holds, and its hold on it:
the dictionaries standing for the SQLite store's tables, shared by a store
and its siblings, and open until each store is closed.
"""

from collections import deque

from suto_server.store.errors import StoreError
from suto_server.store.records import RETIRED_KEY_HISTORY


class Tables:
    """
    Everything a L{MemoryStore} holds.

    @ivar accounts: username -> (password hash, L{UserRecord}).
    @ivar windows: username -> L{EnrollmentWindow}.
    @ivar profiles: username -> L{Profile}.
    @ivar retired: username -> the ids of the keys its profile gave up,
        oldest first, in a L{deque} that keeps the newest
        L{RETIRED_KEY_HISTORY}; only profiles that retired a key have one.
    @ivar audit: the chained L{AuditEvent}s in the order they were
        appended.
    @ivar moves: username -> its L{Move}s, oldest first.
    @ivar offline: username -> the POSIX time its profile was marked
        offline.
    @ivar offline_steps: username -> the L{SpentOfflineStep} of the newest
        offline step its profile reconnected with.
    @ivar blacklist: username -> its L{BlacklistEntry}.
    """

    def __init__(self):
        self.accounts = {}
        self.windows = {}
        self.profiles = {}
        self.retired = {}
        self.audit = []
        self.moves = {}
        self.offline = {}
        self.offline_steps = {}
        self.blacklist = {}

    def retire(self, username, key_id):
        """
        Add C{key_id} to the retired keys of C{username}'s profile.
        """
        history = self.retired.setdefault(
            username, deque(maxlen=RETIRED_KEY_HISTORY)
        )
        history.append(key_id)

    def forget_profile(self, username):
        """
        Remove C{username}'s profile and its retired keys, as the database
        does through its foreign key.

        @return: whether there was a profile.
        """
        self.retired.pop(username, None)
        self.offline.pop(username, None)
        self.offline_steps.pop(username, None)
        return self.profiles.pop(username, None) is not None


class OpenTables:
    """
    A store's hold on its L{Tables}; the parts of L{MemoryStore} reach
    them through L{_open_tables}, which refuses once the store is closed.
    """

    def __init__(self, tables=None):
        """
        @param tables: the L{Tables} of the store this is a sibling of;
            new empty ones unless given.
        """
        # None once closed.
        self._tables = Tables() if tables is None else tables

    def sibling(self):
        """
        See L{IStore.sibling}: another store on the same tables.  The
        tables take no lock, which is enough for tests: they call one
        store at a time.
        """
        return type(self)(self._open_tables())

    def _open_tables(self):
        """
        @return: the tables.
        @raise StoreError: the store has been closed.
        """
        if self._tables is None:
            raise StoreError("the store is closed")
        return self._tables

    def close(self):
        """
        See L{IStore.close}.
        """
        self._open_tables()
        self._tables = None
