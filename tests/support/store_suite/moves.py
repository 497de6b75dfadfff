"""
The shared suite of the moves of L{IProfileStore}: where profiles moved,
each decided once by a compare-and-swap on the profile's last address,
kept after the profile is gone.
"""

from dataclasses import replace

from suto_server.store.errors import StoreError
from suto_server.store.records import (
    MAX_NAME,
    MAX_TIME,
)
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BAD_NAMES,
    MOVE,
    PROFILE,
    WINDOW,
    not_refused,
    numbered_rotation,
)

# Each differs from MOVE in one field the store must refuse.
BAD_MOVES = [
    replace(MOVE, username="al ice"),
    replace(MOVE, username=None),
    replace(MOVE, time=-1),
    replace(MOVE, time=float("nan")),
    replace(MOVE, time="3000"),
    replace(MOVE, old_address="lab-east"),
    replace(MOVE, old_address=None),
    replace(MOVE, new_address="10.9.0.0/24"),
    replace(MOVE, new_address="10.9.0.4\nforged"),
    replace(MOVE, old_location_name=""),
    replace(MOVE, old_location_name="x" * (MAX_NAME + 1)),
    replace(MOVE, new_location_name="lab\x00"),
    replace(MOVE, new_location_name=7),
]

# Addresses a compare-and-swap cannot expect.
BAD_SEEN = ["lab-east", 7, "10.2.3.17\nforged"]


class MoveStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s moves.
    """

    def record(self, move, seen=None):
        """
        Record C{move} through the store's own signature.

        @return: whether the store recorded it.
        """
        return self.store.record_move(
            move.username,
            move.time,
            move.old_address,
            move.new_address,
            move.old_location_name,
            move.new_location_name,
            seen=seen,
        )

    def test_no_moves(self):
        """
        A profile that never moved has no moves.
        """
        self.assertEqual(self.store.moves("alice"), [])

    def test_moves(self):
        """
        A profile's moves come back field for field, in the order they
        were recorded (not the order of their times), and only its own.
        """
        moves = [
            MOVE,
            replace(
                MOVE,
                time=2000.0,
                old_address="10.9.0.4",
                new_address="2001:db8::7",
                old_location_name="lab-east",
                new_location_name=None,
            ),
            replace(
                MOVE,
                time=MAX_TIME,
                old_address="2001:db8::7",
                old_location_name=None,
            ),
        ]
        bob = replace(MOVE, username="bob")
        self.enroll("alice")
        self.enroll("bob")
        recorded = [self.record(move) for move in [moves[0], bob, *moves[1:]]]
        self.assertEqual(recorded, [True] * 4)
        self.assertEqual(self.store.moves("alice"), moves)
        self.assertEqual(self.store.moves("bob"), [bob])

    def test_moves_paged(self):
        """
        With C{newest}, at most that many of a profile's moves come back,
        the newest first after the C{skip} newest (the order a page of the
        audit log is read in), and only its own.
        """
        self.enroll("alice")
        self.enroll("bob")
        places = [MOVE.old_address, MOVE.new_address]
        moves = [
            replace(
                MOVE,
                time=MOVE.time + n,
                old_address=places[n % 2],
                new_address=places[(n + 1) % 2],
            )
            for n in range(5)
        ]
        bob = replace(MOVE, username="bob")
        self.assertEqual(
            [self.record(move) for move in [*moves[:2], bob, *moves[2:]]],
            [True] * 6,
        )
        newest_first = moves[::-1]
        self.assertEqual(self.store.moves("alice", newest=2), newest_first[:2])
        self.assertEqual(
            self.store.moves("alice", newest=2, skip=2), newest_first[2:4]
        )
        self.assertEqual(
            self.store.moves("alice", newest=2, skip=4), newest_first[4:]
        )
        self.assertEqual(self.store.moves("alice", newest=2, skip=6), [])
        self.assertEqual(self.store.moves("bob", newest=9), [bob])
        self.assertEqual(self.store.moves("alice"), moves)

    def test_moves_page_bounds(self):
        """
        A C{newest} that is not a positive count, a C{skip} that is not a
        count, or a C{skip} without C{newest} is refused with
        L{ValueError}.
        """
        bad = [(0, 0), (-1, 0), (1.5, 0), ("2", 0), (1, -1), (None, 1)]
        for newest, skip in bad:
            with self.subTest(newest=newest, skip=skip):
                self.assertRaises(
                    ValueError, self.store.moves, "alice", newest=newest, skip=skip
                )

    def test_one_move_per_address_seen(self):
        """
        Of two moves from the address a profile was last seen at, only the
        first is recorded: the second caller saw an address the profile
        has left, and is told so, whether it moves elsewhere or to the
        same address.  A move from the new address goes on from there.
        """
        self.enroll("alice")
        third = replace(MOVE, time=3100.0, new_address="10.9.0.5")
        again = replace(MOVE, time=3200.0)
        self.assertEqual(
            [self.record(MOVE), self.record(third), self.record(again)],
            [True, False, False],
        )
        self.assertEqual(self.store.moves("alice"), [MOVE])
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.last_address, profile.last_seen), (MOVE.new_address, MOVE.time)
        )
        onwards = replace(third, old_address=MOVE.new_address)
        self.assertTrue(self.record(onwards))
        self.assertEqual(self.store.moves("alice"), [MOVE, onwards])

    def test_move_expecting_the_new_address(self):
        """
        A move recorded after something else already set the new address
        (a rotation's commit) expects that address, through C{seen}, and
        is refused once the profile is elsewhere again.
        """
        self.enroll("alice")
        self.store.commit_rotations(
            [numbered_rotation("alice", 0, 1, 2900.0, address=MOVE.new_address)]
        )
        self.assertFalse(self.record(MOVE))
        self.assertTrue(self.record(MOVE, seen=MOVE.new_address))
        self.assertFalse(self.record(MOVE, seen="10.2.3.99"))
        self.assertEqual(self.store.moves("alice"), [MOVE])

    def test_no_move_without_profile(self):
        """
        A profile that does not exist (never enrolled, or removed) has no
        last address to swap: its move is not recorded.
        """
        self.assertFalse(self.record(MOVE))
        self.assertEqual(self.store.moves("alice"), [])

    def test_moves_outlive_the_profile(self):
        """
        A profile's moves stay after the profile is removed: they are its
        history.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.record(MOVE)
        self.store.remove_profile("alice")
        self.assertEqual(self.store.moves("alice"), [MOVE])

    def test_move_sets_current_location(self):
        """
        Recording a move makes its new address and time the profile's
        current location and last sighting at once, leaving the rest of
        the profile as it was; a move of a profile that is gone changes
        no other profile.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.record(MOVE)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(PROFILE, last_address=MOVE.new_address, last_seen=MOVE.time),
        )
        self.assertFalse(self.record(replace(MOVE, username="bob")))
        self.assertIsNone(self.store.get_profile("bob"))
        self.assertEqual(self.store.get_profile("alice").last_address, "10.9.0.4")

    def test_bad_move_keeps_location(self):
        """
        A refused move leaves the profile's current location as it was.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        not_refused(ValueError, self.record, BAD_MOVES)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_bad_moves(self):
        """
        Recording a move with an argument of the wrong type or out of
        bounds raises L{ValueError} and records nothing.
        """
        self.assertEqual(not_refused(ValueError, self.record, BAD_MOVES), [])
        self.assertEqual(self.store.moves("alice"), [])

    def test_bad_seen(self):
        """
        An expected address that is not one raises L{ValueError} and
        moves nothing.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)

        def record(seen):
            return self.record(MOVE, seen)

        self.assertEqual(not_refused(ValueError, record, BAD_SEEN), [])
        self.assertEqual(self.store.get_profile("alice"), PROFILE)
        self.assertEqual(self.store.moves("alice"), [])

    def test_bad_names(self):
        """
        C{moves} raises L{ValueError} for a name the wire could not carry.
        """
        self.assertEqual(
            not_refused(ValueError, self.store.moves, BAD_NAMES), []
        )

    def test_closed(self):
        """
        After C{close}, every registry method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "record_move": lambda: store.record_move(
                "alice", 3000.0, "10.2.3.17", "10.9.0.4", None, None
            ),
            "moves": lambda: store.moves("alice"),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
