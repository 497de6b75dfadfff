"""
Tests for L{suto_server.store.memory}: every shared store suite, run
against L{MemoryStore}.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.memory import MemoryStore
from tests.support.store_suite.accounts import AccountStoreTestsMixin
from tests.support.store_suite.audit import AuditStoreTestsMixin
from tests.support.store_suite.blacklist import BlacklistStoreTestsMixin
from tests.support.store_suite.keys import KeyStoreTestsMixin
from tests.support.store_suite.lifecycle import StoreTestsMixin
from tests.support.store_suite.locations import LocationStoreTestsMixin
from tests.support.store_suite.moves import MoveStoreTestsMixin
from tests.support.store_suite.offline import OfflineStoreTestsMixin
from tests.support.store_suite.profiles import ProfileStoreTestsMixin
from tests.support.store_suite.rotation import RotationStoreTestsMixin
from tests.support.store_suite.windows import WindowStoreTestsMixin


class _InMemory:
    """
    Runs a shared store suite on a L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryStoreTests(_InMemory, StoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of the store's lifecycle, run against L{MemoryStore}.
    """


class MemoryAccountStoreTests(_InMemory, AccountStoreTestsMixin, SynchronousTestCase):
    """
    The shared account store suite, run against L{MemoryStore}.
    """


class MemoryWindowStoreTests(_InMemory, WindowStoreTestsMixin, SynchronousTestCase):
    """
    The shared enrollment window suite, run against L{MemoryStore}.
    """


class MemoryProfileStoreTests(_InMemory, ProfileStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of profile records, run against L{MemoryStore}.
    """


class MemoryLocationStoreTests(
    _InMemory, LocationStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of the profiles' locations, run against L{MemoryStore}.
    """


class MemoryRotationStoreTests(_InMemory, RotationStoreTestsMixin, SynchronousTestCase):
    """
    The shared rotation suite, run against L{MemoryStore}.
    """


class MemoryKeyStoreTests(_InMemory, KeyStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of key confirmation and roll-back, run against L{MemoryStore}.
    """


class MemoryMoveStoreTests(_InMemory, MoveStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of moves, run against L{MemoryStore}.
    """


class MemoryOfflineStoreTests(_InMemory, OfflineStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of offline spells, run against L{MemoryStore}.
    """


class MemoryAuditStoreTests(_InMemory, AuditStoreTestsMixin, SynchronousTestCase):
    """
    The shared audit log suite, run against L{MemoryStore}.
    """


class MemoryBlacklistStoreTests(
    _InMemory, BlacklistStoreTestsMixin, SynchronousTestCase
):
    """
    The shared blacklist suite, run against L{MemoryStore}.
    """
