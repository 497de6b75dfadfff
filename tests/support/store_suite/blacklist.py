"""
The shared suite of L{IBlacklistStore}: the profiles refused for good.
"""

from dataclasses import replace

from zope.interface.verify import verifyObject

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IBlacklistStore
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BLACKLISTED,
    not_refused,
)


class BlacklistStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IBlacklistStore} behaviour.  Profiles start at key number
    0, last seen when they enrolled (1200.5).
    """

    enrolled_at_start = ("alice", "bob")

    def test_provides_interface(self):
        """
        The store provides L{IBlacklistStore} completely.
        """
        self.assertTrue(verifyObject(IBlacklistStore, self.store))

    def test_blacklist(self):
        """
        A blacklist entry comes back field for field; a second entry for
        the same profile is not added and the first stays.
        """
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertTrue(self.store.add_to_blacklist(BLACKLISTED))
        self.assertFalse(
            self.store.add_to_blacklist(replace(BLACKLISTED, reason="again"))
        )
        bob = replace(BLACKLISTED, username="bob", source=None, alert="blacklisted")
        self.store.add_to_blacklist(bob)
        self.assertEqual(self.store.blacklist_entry("alice"), BLACKLISTED)
        self.assertEqual(self.store.list_blacklist(), [BLACKLISTED, bob])
        self.assertEqual(self.store.count_blacklisted(), 2)

    def test_standing(self):
        """
        A profile's standing says, in one read, whether it is blacklisted
        and since when it is offline, as L{blacklist_entry} and
        L{offline_since} do; a name without a profile has neither.
        """
        self.assertEqual(self.store.standing("alice"), (False, None))
        self.store.mark_offline(["alice"], 2000.0)
        self.assertEqual(self.store.standing("alice"), (False, 2000.0))
        self.store.add_to_blacklist(BLACKLISTED)
        self.assertEqual(self.store.standing("alice"), (True, 2000.0))
        self.assertEqual(self.store.standing("bob"), (False, None))
        self.assertEqual(self.store.standing("carol"), (False, None))

    def test_rotation_start(self):
        """
        A rotation's start reads, at once, the profile with its keys and
        its standing: each as L{get_profile} and L{standing} return it,
        whether or not there is a profile, a mark, or both.
        """

        def check(user):
            start = self.store.rotation_start(user)
            self.assertEqual(start.profile, self.store.get_profile(user))
            self.assertEqual(
                (start.blacklisted, start.offline_since), self.store.standing(user)
            )
            return start

        self.assertIsNotNone(check("alice").profile)
        self.store.mark_offline(["alice"], 2000.0)
        self.assertEqual(check("alice").offline_since, 2000.0)
        self.store.add_to_blacklist(BLACKLISTED)
        self.assertTrue(check("alice").blacklisted)
        self.assertFalse(check("bob").blacklisted)
        self.assertIsNone(check("carol").profile)
        # An entry outlives its profile: the marks come without one.
        self.store.remove_profile("alice")
        self.assertEqual(
            (check("alice").profile, check("alice").blacklisted), (None, True)
        )

    def test_unblock(self):
        """
        Lifting an entry removes it and the profile with its keys, so the
        device must enroll again; lifting a missing entry changes nothing.
        """
        self.store.add_to_blacklist(BLACKLISTED)
        self.assertFalse(self.store.unblock("bob"))
        self.assertIsNotNone(self.store.get_profile("bob"))
        self.assertTrue(self.store.unblock("alice"))
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertFalse(self.store.unblock("alice"))
        self.assertEqual(self.store.count_blacklisted(), 0)

    def test_blacklist_outlives_removal(self):
        """
        Removing a blacklisted profile leaves its entry: only lifting it
        ends it.
        """
        self.store.add_to_blacklist(BLACKLISTED)
        self.store.remove_profile("alice")
        self.assertEqual(self.store.blacklist_entry("alice"), BLACKLISTED)

    def test_bad_arguments(self):
        """
        Entries with a field of the wrong type or out of bounds (or
        something that is not an entry) raise L{ValueError} and add
        nothing.
        """
        for bad in [
            replace(BLACKLISTED, username="-alice"),
            replace(BLACKLISTED, time=-1.0),
            replace(BLACKLISTED, reason=""),
            replace(BLACKLISTED, reason="two\nlines"),
            replace(BLACKLISTED, alert="Not An Alert"),
            "alice",
        ]:
            self.assertRaises(ValueError, self.store.add_to_blacklist, bad)
        self.assertEqual(self.store.list_blacklist(), [])

    def test_closed(self):
        """
        After C{close}, every blacklist method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "add_to_blacklist": lambda: store.add_to_blacklist(BLACKLISTED),
            "blacklist_entry": lambda: store.blacklist_entry("alice"),
            "list_blacklist": store.list_blacklist,
            "count_blacklisted": store.count_blacklisted,
            "unblock": lambda: store.unblock("alice"),
            "standing": lambda: store.standing("alice"),
            "rotation_start": lambda: store.rotation_start("alice"),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
