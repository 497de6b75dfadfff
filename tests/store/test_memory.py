"""
Tests for L{suto_server.store.memory}.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.memory import MemoryStore
from tests.support.store_suite import (
    EnrollmentStoreTestsMixin,
    OfflineStoreTestsMixin,
    RegistryStoreTestsMixin,
    RotationStoreTestsMixin,
    UserStoreTestsMixin,
)


class MemoryStoreTests(UserStoreTestsMixin, SynchronousTestCase):
    """
    The shared account store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryEnrollmentStoreTests(
    EnrollmentStoreTestsMixin, SynchronousTestCase
):
    """
    The shared enrollment store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryRotationStoreTests(RotationStoreTestsMixin, SynchronousTestCase):
    """
    The shared rotation store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryRegistryStoreTests(RegistryStoreTestsMixin, SynchronousTestCase):
    """
    The shared registry store suite, run against L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()


class MemoryOfflineStoreTests(OfflineStoreTestsMixin, SynchronousTestCase):
    """
    The shared offline and blacklist store suite, run against
    L{MemoryStore}.
    """

    def make_store(self):
        return MemoryStore()
