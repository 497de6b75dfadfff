"""
The shared suite of the profile records of L{IProfileStore}: reading,
listing and removing enrolled profiles.
"""

from dataclasses import replace

from zope.interface.verify import verifyObject

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IProfileStore
from suto_server.store.records import (
    MAX_NAME,
    MAX_SEALED_KEY,
    MAX_TIME,
)
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BAD_NAMES,
    HASH,
    PROFILE,
    WINDOW,
    not_refused,
    profile_for,
    window_for,
)

BAD_PROFILES = [
    replace(PROFILE, username="al ice"),
    replace(PROFILE, fingerprint_hash=bytes(31)),
    replace(PROFILE, fingerprint_hash=bytes(33)),
    replace(PROFILE, fingerprint_hash=bytearray(32)),
    replace(PROFILE, fingerprint_hash="0" * 32),
    replace(PROFILE, key_sealed=b""),
    replace(PROFILE, key_sealed=bytes(MAX_SEALED_KEY + 1)),
    replace(PROFILE, key_sealed=None),
    replace(PROFILE, key_id="0123456789ABCDEF" * 2),
    replace(PROFILE, key_id="0123456789abcdef"),
    replace(PROFILE, key_id="0123456789abcdef" * 2 + "\n"),
    replace(PROFILE, key_id=b"0123456789abcdef" * 2),
    replace(PROFILE, generation=-1),
    replace(PROFILE, generation=False),
    replace(PROFILE, generation=2**63),
    replace(PROFILE, enrolled_at=None),
    replace(PROFILE, enrolled_at=float("-inf")),
    replace(PROFILE, location="lab-east"),
    replace(PROFILE, location="10.2.3.0/24"),
    replace(PROFILE, location=None),
    replace(PROFILE, location_name=""),
    replace(PROFILE, location=7),
    replace(PROFILE, location="fe80::1%\nforged"),
    replace(PROFILE, location="fe80::1%" + "x" * MAX_NAME),
    replace(PROFILE, location_name="\x00"),
    replace(PROFILE, generation=1, previous_key_sealed=b"old"),
    replace(PROFILE, generation=1, previous_key_id="f" * 32),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"old",
        previous_key_id=PROFILE.key_id,
    ),
    replace(PROFILE, previous_key_sealed=b"old", previous_key_id="f" * 32),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"",
        previous_key_id="f" * 32,
    ),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=bytes(MAX_SEALED_KEY + 1),
        previous_key_id="f" * 32,
    ),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"old",
        previous_key_id="F" * 32,
    ),
    replace(PROFILE, current_confirmed=1),
    replace(PROFILE, current_confirmed=None),
    replace(PROFILE, rotated_at=-1),
    replace(PROFILE, rotated_at="1300"),
    replace(PROFILE, last_seen=float("nan")),
    replace(PROFILE, last_seen=MAX_TIME + 1),
    replace(PROFILE, last_address="lab-east"),
    replace(PROFILE, last_address=7),
    replace(PROFILE, rotation_failures=-1),
    replace(PROFILE, rotation_failures=1.0),
    replace(PROFILE, rotation_failures=True),
    WINDOW,
    None,
]


class ProfileStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s profile records.
    """

    def test_provides_interface(self):
        """
        The store provides L{IProfileStore} completely.
        """
        self.assertTrue(verifyObject(IProfileStore, self.store))

    def test_profile_hides_secrets(self):
        """
        A profile as listed does not show its fingerprint hash or its
        sealed keys, current and previous, when printed or logged.
        """
        profile = replace(
            PROFILE,
            generation=1,
            previous_key_sealed=bytes(range(200, 256)),
            previous_key_id="f" * 32,
        )
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(profile)
        shown = repr(self.store.list_profiles())
        self.assertIn(profile.key_id, shown)
        self.assertIn(profile.previous_key_id, shown)
        for secret in [
            profile.fingerprint_hash,
            profile.key_sealed,
            profile.previous_key_sealed,
        ]:
            self.assertNotIn(repr(secret), shown)
            self.assertNotIn(secret.hex(), shown)

    def test_profile_edge_values(self):
        """
        Profiles with no location name, an IPv6 location, a late
        generation, the largest sealed keys allowed and rotation state at
        its bounds are kept as given.
        """
        profiles = [
            profile_for("a", location_name=None, enrolled_at=0),
            profile_for(
                "b",
                location="2001:db8:9::17",
                generation=2**63 - 1,
                key_sealed=bytes(MAX_SEALED_KEY),
                enrolled_at=MAX_TIME,
            ),
            profile_for("c", key_sealed=b"\x00", fingerprint_hash=bytes(32)),
            profile_for(
                "d",
                generation=1,
                previous_key_sealed=bytes(MAX_SEALED_KEY),
                previous_key_id="f" * 32,
                current_confirmed=False,
                rotated_at=MAX_TIME,
                last_seen=0,
                last_address="fe80::1%eth0",
                rotation_failures=2**63 - 1,
            ),
        ]
        for profile in profiles:
            self.store.open_window(window_for(profile.username))
            self.store.complete_enrollment(profile)
        self.assert_unchanged([], profiles)

    def test_profiles_are_not_accounts(self):
        """
        Enrollment needs no password account, and removing an account of
        the same name leaves the profile.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.assertIsNone(self.store.hash_for("alice"))
        self.store.add_user("alice", HASH, 1000.0)
        self.store.remove_user("alice")
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_list_profiles_sorted(self):
        """
        C{list_profiles} returns the profiles sorted by name.
        """
        for name in ["carol", "alice", "Zed", "bob"]:
            self.store.open_window(window_for(name))
            self.store.complete_enrollment(profile_for(name))
        self.assertEqual(
            [profile.username for profile in self.store.list_profiles()],
            ["Zed", "alice", "bob", "carol"],
        )

    def test_remove_profile(self):
        """
        C{remove_profile} forgets the user's profile and says so; removing
        it again finds nothing.  Other profiles stay, and the user can
        enroll again without C{replace}.
        """
        for name in ["alice", "bob"]:
            self.store.open_window(window_for(name))
            self.store.complete_enrollment(profile_for(name))
        self.assertTrue(self.store.remove_profile("alice"))
        self.assertFalse(self.store.remove_profile("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(self.store.list_profiles(), [profile_for("bob")])
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_bad_names(self):
        """
        Every method that takes a name raises L{ValueError} for one the
        wire could not carry (or that is not a L{str}).
        """
        self.store.open_window(WINDOW)
        calls = {
            "get_profile": self.store.get_profile,
            "remove_profile": self.store.remove_profile,
        }
        for method, call in calls.items():
            self.assertEqual(
                (method, not_refused(ValueError, call, BAD_NAMES)), (method, [])
            )
        self.assert_unchanged([WINDOW], [])

    def test_closed(self):
        """
        After C{close}, every profile record method raises L{StoreError}.
        """
        store = self.make_store()
        store.open_window(WINDOW)
        store.close()
        calls = {
            "get_profile": lambda: store.get_profile("alice"),
            "list_profiles": store.list_profiles,
            "remove_profile": lambda: store.remove_profile("alice"),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )

    def test_bad_profiles(self):
        """
        Completing an enrollment with a profile with a field of the wrong
        type or out of bounds (or something that is not a profile) raises
        L{ValueError} and leaves the window open.
        """
        self.store.open_window(WINDOW)
        self.assertEqual(
            not_refused(
                ValueError, self.store.complete_enrollment, BAD_PROFILES
            ),
            [],
        )
        self.assert_unchanged([WINDOW], [])
