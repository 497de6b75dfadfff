"""
The shared suite of the offline spells of L{IProfileStore}: silent
profiles, marking them offline, and the rotation that ends a spell.
"""

from suto_server.store.errors import StoreError
from suto_server.store.records import SpentOfflineStep
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    not_refused,
    numbered_key_id,
    numbered_rotation,
)

#: Attempt nonces of reconnections (any 16 bytes each).
FIRST_ATTEMPT = bytes(range(16))
RETRY = bytes(range(16, 32))


def assert_spent_step_upgraded(test, store):
    """
    C{store}, upgraded from a schema without attempt nonces while alice's
    profile (at key number 0) had spent offline step 70, kept that step
    with no key and no nonces, and records a reconnection's key and nonce
    on it.
    """
    test.assertEqual(store.spent_offline_step("alice"), SpentOfflineStep(70))
    commit = numbered_rotation(
        "alice", 0, 1, 3000.0, offline_step=70, attempt_nonce=FIRST_ATTEMPT
    )
    test.assertEqual(store.commit_rotations([commit]), [True])
    test.assertEqual(
        store.spent_offline_step("alice"),
        SpentOfflineStep(70, numbered_key_id(1), frozenset({FIRST_ATTEMPT})),
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
        self.assertEqual(self.store.count_offline(), 0)
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
        self.assertEqual(self.store.count_offline(), 2)
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
        self.assertEqual(self.store.spent_offline_step("alice").step, 70)
        self.store.mark_offline(["alice"], 2200.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 1, 2, 2300.0, offline_step=60)]
        )
        self.assertEqual(self.store.spent_offline_step("alice").step, 70)
        self.assertIsNone(self.store.spent_offline_step("bob"))

    def test_attempts_of_the_spent_step(self):
        """
        A reconnection's commit records the key it made and its attempt
        nonce on the spent step; a retry in the same step adds its nonce
        and its key; a newer step forgets the older step's nonces.
        """
        self.store.commit_rotations(
            [
                numbered_rotation(
                    "alice", 0, 1, 2100.0, offline_step=70,
                    attempt_nonce=FIRST_ATTEMPT,
                )
            ]
        )
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(70, numbered_key_id(1), frozenset({FIRST_ATTEMPT})),
        )
        self.store.commit_rotations(
            [
                numbered_rotation(
                    "alice", 1, 2, 2110.0, offline_step=70, attempt_nonce=RETRY
                )
            ]
        )
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(
                70, numbered_key_id(2), frozenset({FIRST_ATTEMPT, RETRY})
            ),
        )
        self.store.commit_rotations(
            [numbered_rotation("alice", 2, 3, 2200.0, offline_step=71)]
        )
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(71, numbered_key_id(3)),
        )
        self.store.commit_rotations(
            [
                numbered_rotation(
                    "alice", 3, 4, 2210.0, offline_step=69, attempt_nonce=RETRY
                )
            ]
        )
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(71, numbered_key_id(3)),
        )

    def test_older_steps_nonces_forgotten(self):
        """
        The store keeps the nonces of the spent step only: once a newer
        step is spent, an older step's nonces are forgotten (that step is
        never tried again), so a profile's recorded nonces stay bounded
        however often it reconnects.
        """
        for old, new, step, nonce in (
            (0, 1, 70, FIRST_ATTEMPT),
            (1, 2, 71, RETRY),
            (2, 3, 72, FIRST_ATTEMPT),
        ):
            commit = numbered_rotation(
                "alice", old, new, 2100.0 + step, offline_step=step,
                attempt_nonce=nonce,
            )
            self.assertEqual(self.store.commit_rotations([commit]), [True])
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(72, numbered_key_id(3), frozenset({FIRST_ATTEMPT})),
        )

    def test_recorded_attempt_never_commits_again(self):
        """
        A commit carrying an attempt nonce the profile already recorded is
        not applied, even with the right key (a replayed reconnection):
        the key, the offline spell and the spent step stay as they were.
        Nothing is applied either when the nonce is recorded in one batch
        and repeated later in the same batch.
        """
        first = numbered_rotation(
            "alice", 0, 1, 2100.0, offline_step=70, attempt_nonce=FIRST_ATTEMPT
        )
        again = numbered_rotation(
            "alice", 1, 2, 2110.0, offline_step=70, attempt_nonce=FIRST_ATTEMPT
        )
        self.assertEqual(self.store.commit_rotations([first, again]), [True, False])
        self.store.mark_offline(["alice"], 2120.0)
        self.assertEqual(self.store.commit_rotations([again]), [False])
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(1))
        self.assertEqual(self.store.offline_since("alice"), 2120.0)
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(70, numbered_key_id(1), frozenset({FIRST_ATTEMPT})),
        )
        self.assertEqual(
            self.store.commit_rotations(
                [numbered_rotation("bob", 0, 1, 2100.0, offline_step=70,
                                   attempt_nonce=FIRST_ATTEMPT)]
            ),
            [True],
        )

    def test_plain_rotations_keep_spent_step(self):
        """
        The rotations that follow a reconnection's, carrying no step and
        no nonce, commit and leave the spent step as the reconnection left
        it: its key and its nonces.  (A later rotation that offered the
        reconnection's nonce again would be refused as its replay.)
        """
        self.store.mark_offline(["alice"], 2000.0)
        reconnection = numbered_rotation(
            "alice", 0, 1, 2100.0, offline_step=70, attempt_nonce=FIRST_ATTEMPT
        )
        plain = [
            numbered_rotation("alice", 1, 2, 2101.0),
            numbered_rotation("alice", 2, 3, 2102.0),
        ]
        self.assertEqual(self.store.commit_rotations([reconnection]), [True])
        self.assertEqual(self.store.commit_rotations(plain), [True, True])
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(3))
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(70, numbered_key_id(1), frozenset({FIRST_ATTEMPT})),
        )

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
        self.assertIsNone(self.store.spent_offline_step("alice"))

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
        self.assertIsNone(self.store.spent_offline_step("alice"))

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
        for nonce in (bytes(15), "0" * 16):
            self.assertRaises(
                ValueError,
                self.store.commit_rotations,
                [
                    numbered_rotation(
                        "alice", 0, 1, 2100.0, offline_step=1, attempt_nonce=nonce
                    )
                ],
            )
        self.assertRaises(
            ValueError,
            self.store.commit_rotations,
            [numbered_rotation("alice", 0, 1, 2100.0, attempt_nonce=FIRST_ATTEMPT)],
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
            "count_offline": store.count_offline,
            "offline_since": lambda: store.offline_since("alice"),
            "spent_offline_step": lambda: store.spent_offline_step("alice"),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
