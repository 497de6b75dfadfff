"""
The shared suite of L{IStore} itself: the whole interface, siblings and
closing.
"""

from zope.interface.verify import verifyObject

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    AUDIT,
    HASH,
    numbered_rotation,
)


class StoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IStore}'s lifecycle.  A sibling is used here on the thread
    that opened it, as the contract requires.
    """

    def sibling(self):
        """
        @return: a sibling of the store, closed after the test.
        """
        sibling = self.store.sibling()
        self.addCleanup(sibling.close)
        return sibling

    def test_provides_interface(self):
        """
        The store and its siblings provide L{IStore} completely.
        """
        self.assertTrue(verifyObject(IStore, self.store))
        self.assertTrue(verifyObject(IStore, self.sibling()))

    def test_sibling_shares_data(self):
        """
        What the store commits its sibling reads, and the other way
        round: the batch writes the database thread makes through its
        sibling are the store's own.
        """
        sibling = self.sibling()
        self.store.add_user("alice", HASH, 1000.0)
        self.enroll("alice")
        self.assertEqual(sibling.hash_for("alice"), HASH)
        self.assertEqual(
            sibling.commit_rotations([numbered_rotation("alice", 0, 1, 2000.0)]),
            [True],
        )
        sibling.append_audits([AUDIT])
        self.assertEqual(self.store.get_profile("alice").generation, 1)
        self.assertEqual(len(self.store.audit_events()), 1)

    def test_closing_sibling_leaves_store(self):
        """
        Closing a sibling leaves the store open, and closing the store
        leaves its sibling open.
        """
        first = self.store.sibling()
        first.close()
        self.assertRaises(StoreError, first.list_users)
        self.assertEqual(self.store.list_users(), [])
        store = self.make_store()
        other = store.sibling()
        self.addCleanup(other.close)
        store.close()
        self.assertEqual(other.list_users(), [])

    def test_closed_twice(self):
        """
        Closing a store a second time raises L{StoreError}, as every other
        call after the first close does.
        """
        store = self.make_store()
        store.close()
        self.assertRaises(StoreError, store.close)
