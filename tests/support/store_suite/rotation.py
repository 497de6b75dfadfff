"""
The shared suite of the key rotation of L{IProfileStore}: committing
rotations, one at a time and in batches, as compare-and-swaps.
"""

from dataclasses import replace

from suto_server.store.errors import StoreError
from suto_server.store.records import (
    MAX_NAME,
    MAX_SEALED_KEY,
)
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    PROFILE,
    not_refused,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
)

ROTATION = numbered_rotation("alice", 0, 1, 2000.0)

# Each differs from ROTATION in one field the store must refuse.
BAD_ROTATIONS = [
    replace(ROTATION, username="al ice"),
    replace(ROTATION, username=None),
    replace(ROTATION, expected_key_id="0" * 31),
    replace(ROTATION, expected_key_id=None),
    replace(ROTATION, new_key_sealed=b""),
    replace(ROTATION, new_key_sealed=bytes(MAX_SEALED_KEY + 1)),
    replace(ROTATION, new_key_sealed=bytearray(b"sealed")),
    replace(ROTATION, new_key_id="0" * 31 + "G"),
    replace(ROTATION, new_key_id=numbered_key_id(1).encode("ascii")),
    replace(ROTATION, new_key_id=numbered_key_id(0)),
    replace(ROTATION, new_generation=0),
    replace(ROTATION, new_generation=2**63),
    replace(ROTATION, new_generation=1.0),
    replace(ROTATION, now=float("inf")),
    replace(ROTATION, now=None),
    replace(ROTATION, address="10.2.3.0/24"),
    replace(ROTATION, address="10.2.3.99\n"),
    replace(ROTATION, address="fe80::1%\nforged"),
    replace(ROTATION, address="fe80::1%" + "x" * MAX_NAME),
    replace(ROTATION, address=None),
    PROFILE,
    None,
]


class RotationStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s rotation commits.  Profiles here start at key
    number 0 (generation 0); key number M is the key of generation M
    along one chain.
    """

    enrolled_at_start = ("alice", "bob")

    def test_rotation_hides_sealed_key(self):
        """
        A rotation does not show its sealed key when printed or logged.
        """
        shown = repr(ROTATION)
        self.assertIn(ROTATION.new_key_id, shown)
        self.assertNotIn(repr(ROTATION.new_key_sealed), shown)
        self.assertNotIn(ROTATION.new_key_sealed.hex(), shown)

    def test_enrolled(self):
        """
        A profile stored at enrollment without rotation fields is a device
        that has just enrolled: its key confirmed, no previous key, never
        rotated, last seen when and where it enrolled, no failures, no
        retired keys.
        """
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (
                profile.previous_key_sealed,
                profile.previous_key_id,
                profile.current_confirmed,
                profile.rotated_at,
                profile.last_seen,
                profile.last_address,
                profile.rotation_failures,
            ),
            (None, None, True, None, PROFILE.enrolled_at, PROFILE.location, 0),
        )
        self.assert_retired("alice", [], kept=[0])

    def test_commit(self):
        """
        A committed rotation makes the new key current and unconfirmed,
        keeps the replaced key as the previous one, records when and from
        where, and starts the failure count again; other profiles are not
        touched.
        """
        self.store.record_rotation_failure("alice")
        bob = self.store.get_profile("bob")
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"),
                key_sealed=numbered_seal(1),
                key_id=numbered_key_id(1),
                generation=1,
                previous_key_sealed=numbered_seal(0),
                previous_key_id=numbered_key_id(0),
                current_confirmed=False,
                rotated_at=2000.0,
                last_seen=2000.0,
                last_address="10.2.3.99",
                rotation_failures=0,
            ),
        )
        self.assertEqual(self.store.get_profile("bob"), bob)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_batch(self):
        """
        A batch applies each rotation whose expected key is still current,
        in order, and refuses the others (stale key, wrong generation, no
        such profile), answering for each in order.
        """
        self.enroll("carol")
        results = self.store.commit_rotations(
            [
                numbered_rotation("alice", 0, 1, 2000.0),
                numbered_rotation("bob", 5, 6, 2000.0),
                numbered_rotation("carol", 0, 7, 2000.0, new_generation=2),
                numbered_rotation("carol", 0, 1, 2000.0),
                numbered_rotation("alice", 0, 2, 2000.0),
                numbered_rotation("dave", 0, 1, 2000.0),
            ]
        )
        self.assertEqual(results, [True, False, False, True, False, False])
        self.assertEqual(
            [
                (profile.username, profile.key_id, profile.generation)
                for profile in self.store.list_profiles()
            ],
            [
                ("alice", numbered_key_id(1), 1),
                ("bob", numbered_key_id(0), 0),
                ("carol", numbered_key_id(1), 1),
            ],
        )
        self.assertIsNone(self.store.get_profile("dave"))

    def test_stale_key_right_generation(self):
        """
        A rotation naming the profile's generation but not its current key
        is refused and changes nothing: the compare-and-swap is on the key
        id, not only on the generation.
        """
        rotation = numbered_rotation(
            "alice", 0, 1, 2000.0, expected_key_id=numbered_key_id(9)
        )
        self.assertEqual(self.store.commit_rotations([rotation]), [False])
        self.assertEqual(
            self.store.get_profile("alice"), self.enrolled("alice")
        )
        self.assert_retired("alice", [], kept=[0, 1, 9])

    def test_retired_key_right_generation(self):
        """
        After a roll back and a new rotation to the same generation, a
        rotation from the key rolled back (generation 1 to 2, as one from
        the current key would be) is refused and changes nothing: it would
        fork the key chain.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.assertTrue(
            self.store.roll_back("alice", numbered_key_id(0), 2100.0, "::1")
        )
        self.rotate("alice", 0, 3, 2200.0)
        before = self.store.get_profile("alice")
        self.assertEqual(
            (before.key_id, before.generation), (numbered_key_id(3), 1)
        )
        stale = numbered_rotation("alice", 1, 2, 2300.0)
        self.assertEqual(stale.new_generation, before.generation + 1)
        self.assertEqual(self.store.commit_rotations([stale]), [False])
        self.assertEqual(self.store.get_profile("alice"), before)
        self.assert_retired("alice", [1], kept=[0, 2, 3])

    def test_batch_in_order(self):
        """
        A later rotation in a batch sees the earlier ones: two steps of one
        profile in one batch both apply, and the first new key is then the
        previous one, the original key retired.
        """
        results = self.store.commit_rotations(
            [
                numbered_rotation("alice", 0, 1, 2000.0),
                numbered_rotation("alice", 1, 2, 2001.0),
            ]
        )
        self.assertEqual(results, [True, True])
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.previous_key_id, profile.generation),
            (numbered_key_id(2), numbered_key_id(1), 2),
        )
        self.assert_retired("alice", [0], kept=[1, 2])

    def test_empty_batch(self):
        """
        An empty batch commits nothing and answers with an empty list.
        """
        self.assertEqual(self.store.commit_rotations([]), [])
        self.assertEqual(
            self.store.get_profile("alice"), self.enrolled("alice")
        )

    def test_commit_over_unconfirmed(self):
        """
        Committing over an unconfirmed key retires the previous key it
        replaces.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("alice", 1, 2, 2100.0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.previous_key_sealed, profile.previous_key_id),
            (numbered_seal(1), numbered_key_id(1)),
        )
        self.assert_retired("alice", [0], kept=[1, 2])

    def test_commit_confirms(self):
        """
        A rotation committed over an unconfirmed key is its confirmation:
        it leaves the profile and the retired keys as confirming that key
        first and then committing would have, in one transaction.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("bob", 0, 1, 2000.0)
        self.rotate("alice", 1, 2, 2100.0)
        self.assertTrue(
            self.store.confirm_current("bob", numbered_key_id(1), 2100.0, "::1")
        )
        self.rotate("bob", 1, 2, 2100.0)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(self.store.get_profile("bob"), username="alice"),
        )
        self.assert_retired("alice", [0], kept=[1, 2])
        self.assert_retired("bob", [0], kept=[1, 2])

    def test_bad_rotations(self):
        """
        A rotation with a field of the wrong type or out of bounds (or
        something that is not a rotation) raises L{ValueError}, alone or
        with a good rotation in its batch, and nothing is committed.
        """
        for bad in BAD_ROTATIONS:
            self.assertRaises(
                ValueError, self.store.commit_rotations, [bad]
            )
            self.assertRaises(
                ValueError, self.store.commit_rotations, [ROTATION, bad]
            )
        self.assertEqual(
            self.store.get_profile("alice"), self.enrolled("alice")
        )

    def test_closed(self):
        """
        After C{close}, every rotation method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "commit_rotations": lambda: store.commit_rotations([ROTATION]),
            "confirm_current": lambda: store.confirm_current(
                "alice", numbered_key_id(0), 2000.0, "::1"
            ),
            "roll_back": lambda: store.roll_back(
                "alice", numbered_key_id(0), 2000.0, "::1"
            ),
            "record_rotation_failure": lambda: store.record_rotation_failure(
                "alice"
            ),
            "is_retired": lambda: store.is_retired(
                "alice", numbered_key_id(0)
            ),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
