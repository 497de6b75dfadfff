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
from tests.support.store_suite.moves import MoveStoreTestsMixin
from tests.support.store_suite.offline import OfflineStoreTestsMixin
from tests.support.store_suite.profiles import ProfileStoreTestsMixin
from tests.support.store_suite.rotation import RotationStoreTestsMixin
from tests.support.store_suite.windows import WindowStoreTestsMixin


class MemoryStoreTests(StoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of the store's lifecycle, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryAccountStoreTests(AccountStoreTestsMixin, SynchronousTestCase):
    """
    The shared account store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryWindowStoreTests(WindowStoreTestsMixin, SynchronousTestCase):
    """
    The shared enrollment window suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryProfileStoreTests(ProfileStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of profile records, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryRotationStoreTests(RotationStoreTestsMixin, SynchronousTestCase):
    """
    The shared rotation suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryKeyStoreTests(KeyStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of key confirmation and roll-back, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryMoveStoreTests(MoveStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of moves, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryOfflineStoreTests(OfflineStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of offline spells, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryAuditStoreTests(AuditStoreTestsMixin, SynchronousTestCase):
    """
    The shared audit log suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryBlacklistStoreTests(BlacklistStoreTestsMixin, SynchronousTestCase):
    """
    The shared blacklist suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()
