"""
The shared suite of key use in L{IProfileStore}: confirming the current
key, rolling back to the previous one, retired keys and failed rotations.
"""

from dataclasses import replace

from suto_server.store.errors import UnknownProfile
from suto_server.store.records import RETIRED_KEY_HISTORY
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BAD_NAMES,
    not_refused,
    numbered_key_id,
    numbered_rotation,
)


class KeyStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s key confirmation, roll-back and
    retirement.  Profiles here start at key number 0 (generation 0); key
    number M is the key of generation M along one chain.
    """

    enrolled_at_start = ("alice", "bob")

    def test_confirm_current(self):
        """
        Confirming the current key marks it confirmed, retires and drops
        the previous key, and records when and from where; the key, its
        generation and the rotation time stay.
        """
        self.rotate("alice", 0, 1, 2000.0)
        rotated = self.store.get_profile("alice")
        self.assertTrue(
            self.store.confirm_current(
                "alice", numbered_key_id(1), 2060.0, "::1"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                rotated,
                previous_key_sealed=None,
                previous_key_id=None,
                current_confirmed=True,
                last_seen=2060.0,
                last_address="::1",
            ),
        )
        self.assert_retired("alice", [0], kept=[1])

    def test_confirm_confirmed(self):
        """
        Confirming a key already confirmed only records when and from
        where, and retires nothing.
        """
        self.assertTrue(
            self.store.confirm_current(
                "alice", numbered_key_id(0), 2060.0, "::1"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"), last_seen=2060.0, last_address="::1"
            ),
        )
        self.assert_retired("alice", [], kept=[0])

    def test_confirm_not_current(self):
        """
        Confirming a key that is not the profile's current one (its
        previous key, another profile's key, any other) or a profile that
        does not exist answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("bob", 0, 5, 2000.0)
        before = self.store.list_profiles()
        for username, number in [
            ("alice", 0),
            ("alice", 5),
            ("alice", 9),
            ("dave", 1),
        ]:
            self.assertEqual(
                (
                    username,
                    number,
                    self.store.confirm_current(
                        username, numbered_key_id(number), 2060.0, "::1"
                    ),
                ),
                (username, number, False),
            )
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_roll_back(self):
        """
        Rolling back to the previous key of an unconfirmed rotation makes
        it current again with its own generation and seal, confirmed, with
        no previous key; the abandoned key is retired, and when and from
        where are recorded.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.assertTrue(
            self.store.roll_back(
                "alice", numbered_key_id(0), 2060.0, "10.2.3.50"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"),
                rotated_at=2000.0,
                last_seen=2060.0,
                last_address="10.2.3.50",
            ),
        )
        self.assert_retired("alice", [1], kept=[0])

    def test_roll_back_then_rotate(self):
        """
        After a roll back the profile rotates from the key it went back
        to, at the generation after it.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.store.roll_back("alice", numbered_key_id(0), 2060.0, "10.2.3.50")
        self.rotate("alice", 0, 2, 2061.0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation, profile.previous_key_id),
            (numbered_key_id(2), 1, numbered_key_id(0)),
        )

    def test_no_roll_back_once_confirmed(self):
        """
        Once the current key is confirmed its predecessor is gone: rolling
        back to it answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.store.confirm_current("alice", numbered_key_id(1), 2060.0, "::1")
        confirmed = self.store.get_profile("alice")
        self.assertFalse(
            self.store.roll_back("alice", numbered_key_id(0), 2120.0, "::1")
        )
        self.assertEqual(self.store.get_profile("alice"), confirmed)

    def test_roll_back_refused(self):
        """
        Rolling back to a key that is not the previous one (the current
        key, another key, a profile that never rotated, a profile that does
        not exist) answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        for username, number in [
            ("alice", 1),
            ("alice", 7),
            ("bob", 0),
            ("dave", 0),
        ]:
            self.assertEqual(
                (
                    username,
                    number,
                    self.store.roll_back(
                        username, numbered_key_id(number), 2060.0, "::1"
                    ),
                ),
                (username, number, False),
            )
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_retired_history(self):
        """
        Each profile keeps the last L{RETIRED_KEY_HISTORY} (16) keys it
        retired and forgets older ones; another profile's retirements
        neither count towards that nor show in it.
        """
        self.assertEqual(RETIRED_KEY_HISTORY, 16)
        last = RETIRED_KEY_HISTORY + 3
        for number in range(last):
            now = 2000.0 + number
            self.rotate("alice", number, number + 1, now)
            self.store.confirm_current(
                "alice", numbered_key_id(number + 1), now, "::1"
            )
        self.rotate("bob", 0, 100, 2000.0)
        self.store.confirm_current("bob", numbered_key_id(100), 2000.0, "::1")
        self.assert_retired(
            "alice", range(last - RETIRED_KEY_HISTORY, last), kept=[0, 1, 2]
        )
        self.assert_retired("alice", [], kept=[last, 100])
        self.assert_retired("bob", [0], kept=[1, last - 1])

    def test_retired_history_of_rotations(self):
        """
        A profile rotating again and again without confirming (the
        server's steady state: each rotation retires the key before the
        one it rotates from) keeps exactly the last L{RETIRED_KEY_HISTORY}
        keys it retired, however its rotations share batches with another
        profile's, whose own history is kept apart.
        """
        last = RETIRED_KEY_HISTORY + 3
        for number in range(last):
            batch = [
                numbered_rotation(username, number, number + 1, 2000.0 + number)
                for username in ("alice", "bob")
            ]
            self.assertEqual(self.store.commit_rotations(batch), [True, True])
        self.rotate("bob", last, last + 1, 3000.0)
        self.assert_retired(
            "alice",
            range(last - 1 - RETIRED_KEY_HISTORY, last - 1),
            kept=[0, 1, last - 1, last],
        )
        self.assert_retired(
            "bob",
            range(last - RETIRED_KEY_HISTORY, last),
            kept=[0, 1, 2, last, last + 1],
        )

    def test_record_rotation_failure(self):
        """
        Failed rotations are counted per profile, and a committed rotation
        starts the count again.
        """
        self.assertEqual(
            [self.store.record_rotation_failure("alice") for _ in range(3)],
            [1, 2, 3],
        )
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 3)
        self.assertEqual(self.store.get_profile("bob").rotation_failures, 0)
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(self.store.record_rotation_failure("alice"), 1)

    def test_record_rotation_failure_unknown(self):
        """
        Counting a failed rotation of a profile that does not exist raises
        L{UnknownProfile} and creates nothing.
        """
        before = self.store.list_profiles()
        self.assertRaises(
            UnknownProfile, self.store.record_rotation_failure, "dave"
        )
        self.assertEqual(self.store.list_profiles(), before)

    def test_retired_keys_go_with_profile(self):
        """
        Removing a profile, or enrolling over it, forgets its retired keys
        along with it: they belonged to a device that is no longer
        enrolled.
        """
        for username in ["alice", "bob"]:
            self.rotate(username, 0, 1, 2000.0)
            self.store.confirm_current(
                username, numbered_key_id(1), 2001.0, "::1"
            )
            self.assert_retired(username, [0])
        self.store.remove_profile("alice")
        self.enroll("alice")
        self.enroll("bob", replacing=True)
        self.assert_retired("alice", [], kept=[0, 1])
        self.assert_retired("bob", [], kept=[0, 1])

    def test_bad_arguments(self):
        """
        Every other rotation method raises L{ValueError} for a name the
        wire could not carry, a malformed key id, a time out of range or
        an address that is not one, and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        good = {
            "username": "alice",
            "key_id": numbered_key_id(1),
            "now": 2060.0,
            "address": "::1",
        }
        bad = {
            "username": BAD_NAMES,
            "key_id": [
                "A" * 32,
                numbered_key_id(1)[1:],
                numbered_key_id(1) + "\n",
                None,
            ],
            "now": [-1, float("nan"), "2060"],
            "address": ["", "::1\n", "fe80::1%\n", "somewhere", None, 7],
        }
        calls = {
            "confirm_current": (
                self.store.confirm_current,
                ["username", "key_id", "now", "address"],
            ),
            "roll_back": (
                self.store.roll_back,
                ["username", "key_id", "now", "address"],
            ),
            "is_retired": (self.store.is_retired, ["username", "key_id"]),
            "record_rotation_failure": (
                self.store.record_rotation_failure,
                ["username"],
            ),
        }
        for method, (call, arguments) in calls.items():
            for argument in arguments:

                def one(value, call=call, arguments=arguments, name=argument):
                    call(**{**{a: good[a] for a in arguments}, name: value})

                accepted = not_refused(ValueError, one, bad[argument])
                self.assertEqual(
                    (method, argument, accepted), (method, argument, [])
                )
        self.assertEqual(self.store.list_profiles(), before)
