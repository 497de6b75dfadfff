"""
The shared suite of the offline spells of L{IProfileStore}: silent
profiles, marking them offline, and the rotation that ends a spell.
"""

from suto_server.store.errors import StoreError
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    not_refused,
    numbered_rotation,
)


class OfflineStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s offline spells.  Profiles start at key
    number 0, last seen when they enrolled (1200.5).
    """

    enrolled_at_start = ("alice", "bob")

    def test_silent_profiles(self):
        """
        Profiles last seen before the given time are silent, in order of
        name; one seen since (here by a rotation) is not.
        """
        self.assertEqual(self.store.silent_profiles(1200.5), [])
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice", "bob"])
        self.store.commit_rotations([numbered_rotation("bob", 0, 1, 1500.0)])
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice"])

    def test_mark_offline_silent_before(self):
        """
        Given the sweep's cut-off, marking skips a profile seen since the
        sweep found it silent (it rotated meanwhile, on another thread),
        and marks the one still silent; a bad cut-off changes nothing.
        """
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice", "bob"])
        self.store.commit_rotations([numbered_rotation("bob", 0, 1, 1500.0)])
        self.assertEqual(
            self.store.mark_offline(["alice", "bob"], 2000.0, silent_before=1300.0),
            ["alice"],
        )
        self.assertIsNone(self.store.offline_since("bob"))
        self.assertRaises(
            ValueError,
            self.store.mark_offline,
            ["bob"],
            2000.0,
            silent_before=float("nan"),
        )
        self.assertIsNone(self.store.offline_since("bob"))

    def test_mark_offline(self):
        """
        Marking profiles offline records the time once: a second marking
        keeps the first time and reports nothing new; a name without a
        profile is skipped.  Offline profiles are no longer silent.
        """
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(
            self.store.mark_offline(["alice", "carol"], 2000.0), ["alice"]
        )
        self.assertEqual(self.store.mark_offline(["alice", "bob"], 3000.0), ["bob"])
        self.assertEqual(self.store.offline_since("alice"), 2000.0)
        self.assertEqual(self.store.offline_since("bob"), 3000.0)
        self.assertIsNone(self.store.offline_since("carol"))
        self.assertEqual(
            self.store.offline_profiles(), {"alice": 2000.0, "bob": 3000.0}
        )
        self.assertEqual(self.store.silent_profiles(4000.0), [])

    def test_rotation_ends_offline_spell(self):
        """
        A committed rotation ends the profile's offline spell and, when it
        ends a reconnection, spends its offline step: only a newer step is
        remembered after it.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=70)]
        )
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(self.store.last_offline_step("alice"), 70)
        self.store.mark_offline(["alice"], 2200.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 1, 2, 2300.0, offline_step=60)]
        )
        self.assertEqual(self.store.last_offline_step("alice"), 70)
        self.assertIsNone(self.store.last_offline_step("bob"))

    def test_refused_rotation_keeps_offline_spell(self):
        """
        A rotation whose compare-and-swap fails changes nothing: the
        profile stays offline and no step is spent.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.assertEqual(
            self.store.commit_rotations(
                [numbered_rotation("alice", 5, 6, 2100.0, offline_step=70)]
            ),
            [False],
        )
        self.assertEqual(self.store.offline_since("alice"), 2000.0)
        self.assertIsNone(self.store.last_offline_step("alice"))

    def test_removed_profile_forgets_offline_state(self):
        """
        Removing a profile removes its offline spell and steps with it.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=70)]
        )
        self.store.mark_offline(["alice"], 2200.0)
        self.store.remove_profile("alice")
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertIsNone(self.store.last_offline_step("alice"))

    def test_bad_arguments(self):
        """
        Arguments of the wrong type or out of bounds raise L{ValueError}
        and change nothing.
        """
        self.assertRaises(ValueError, self.store.mark_offline, ["-x"], 1.0)
        self.assertRaises(ValueError, self.store.mark_offline, ["alice"], -1.0)
        self.assertRaises(ValueError, self.store.silent_profiles, "soon")
        self.assertRaises(
            ValueError,
            self.store.commit_rotations,
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=-1)],
        )
        self.assertIsNone(self.store.offline_since("alice"))

    def test_closed(self):
        """
        After C{close}, every offline method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "silent_profiles": lambda: store.silent_profiles(1300.0),
            "mark_offline": lambda: store.mark_offline(["alice"], 2000.0),
            "offline_profiles": store.offline_profiles,
            "offline_since": lambda: store.offline_since("alice"),
            "last_offline_step": lambda: store.last_offline_step("alice"),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
