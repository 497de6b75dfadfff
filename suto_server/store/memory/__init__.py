# -*- test-case-name: tests.store.test_memory -*-
"""
A store of accounts, enrollment windows, profiles, the audit log and the
blacklist kept in dictionaries, for tests that need a store but not a
file.  It behaves exactly as L{suto_server.store.sqlite.SQLiteStore} does;
the shared store test suite holds the two together.  L{MemoryStore} is
composed of one part per concept of
L{suto_server.store.interfaces.IStore}, the same cut as the SQLite
store's, all over one L{tables.Tables}.

Each method checks everything it can refuse before changing anything, so
a refused call leaves the store as it was, as a rolled-back transaction
would; a batch of rotations, whose items cannot fail once checked, is
applied whole.
"""

from zope.interface import implementer

from suto_server.store.interfaces import IStore
from suto_server.store.memory.accounts import Accounts
from suto_server.store.memory.audit import Audit
from suto_server.store.memory.blacklist import Blacklist
from suto_server.store.memory.presence import Presence
from suto_server.store.memory.profiles import Profiles
from suto_server.store.memory.tables import OpenTables
from suto_server.store.memory.windows import Windows

__all__ = ["MemoryStore"]


@implementer(IStore)
class MemoryStore(Accounts, Windows, Profiles, Presence, Audit, Blacklist, OpenTables):
    """
    Accounts, enrollment and rotation state, moves and the audit log in
    memory, lost when the object goes.
    """
