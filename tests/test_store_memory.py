"""
Tests for L{suto_server.store.memory}.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.memory import MemoryStore
from tests.store_suite import UserStoreTestsMixin


class MemoryStoreTests(UserStoreTestsMixin, SynchronousTestCase):
    """
    The shared store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()
