"""
The shared suite of the moves of L{IProfileStore}: where profiles moved,
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


class MoveStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore}'s moves.
    """

    def record(self, move):
        """
        Record C{move} through the store's own signature.
        """
        self.store.record_move(
            move.username,
            move.time,
            move.old_address,
            move.new_address,
            move.old_location_name,
            move.new_location_name,
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
            replace(MOVE, time=MAX_TIME, old_location_name=None),
        ]
        bob = replace(MOVE, username="bob")
        for move in [moves[0], bob, moves[1], moves[2]]:
            self.record(move)
        self.assertEqual(self.store.moves("alice"), moves)
        self.assertEqual(self.store.moves("bob"), [bob])

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
        self.record(replace(MOVE, username="bob"))
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
