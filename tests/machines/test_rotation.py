"""
The server's rotation conversation as a state machine: the exact actions
it asks for after each message or result, in every state.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import wire
from suto_server.core.machine import Close, Send
from suto_server.machines.rotation import (
    INPUTS,
    STATES,
    TRANSITIONS,
    Abandon,
    Begin,
    Commit,
    Reconnect,
    RotationConversation,
)
from tests.support.rotation_conversation import (
    ACK,
    ACK_SEALED,
    CLIENT_PUBLIC,
    JUNK,
    KEY_ID,
    OK,
    ROTATE,
    SERVER_PUBLIC,
    abandoned,
    refusal,
)

DONE = bytes(range(200, 220))
OTHER_USER = wire.Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "bob")
STRAY = wire.GetSaltA()
# Well-formed messages with no place on a rotation connection.
STRAYS = [STRAY, wire.Version(2), wire.Enroll("alice"), OTHER_USER]

UNACKNOWLEDGED = "no acknowledgement before the connection ended"


class RotationSessionTests(SynchronousTestCase):
    """
    L{RotationConversation} from the first rotation to the end of the
    connection.
    """

    def setUp(self):
        self.session = RotationConversation("alice")

    def beginning(self):
        "Bring the machine to the point where the next key is derived."
        self.assertEqual(self.session.receive(ROTATE), [Begin(ROTATE)])

    def awaiting_ack(self):
        "Bring the machine to the point where it waits for the ack."
        self.beginning()
        self.assertEqual(
            self.session.started(SERVER_PUBLIC, OK),
            [Send(wire.RotateOk(SERVER_PUBLIC, OK))],
        )

    def committing(self):
        "Bring the machine to the point where the new key is committed."
        self.awaiting_ack()
        self.assertEqual(self.session.receive(ACK), [Commit(ACK_SEALED)])

    def rotated(self):
        "Complete one rotation, back between rotations."
        self.committing()
        self.assertEqual(
            self.session.committed(DONE), [Send(wire.RotateDone(DONE))]
        )

    def fresh(self):
        "Between rotations, before the first one."

    def reach_each(self, states):
        """
        Yield the name of each of C{states} after bringing a new machine to
        it.
        """
        for reach in states:
            self.session = RotationConversation("alice")
            reach()
            yield reach.__name__

    def test_rotation(self):
        """
        A rotation asks the rules to begin, sends C{SUTO_ROTATE_OK_}, asks
        to commit the acknowledgement, then sends C{SUTO_ROTATE_DONE_} and
        keeps the connection open.
        """
        actions = [
            self.session.receive(ROTATE),
            self.session.started(SERVER_PUBLIC, OK),
            self.session.receive(ACK),
            self.session.committed(DONE),
        ]
        self.assertEqual(
            actions,
            [
                [Begin(ROTATE)],
                [Send(wire.RotateOk(SERVER_PUBLIC, OK))],
                [Commit(ACK_SEALED)],
                [Send(wire.RotateDone(DONE))],
            ],
        )

    def test_two_rotations(self):
        """
        After one rotation the same connection carries the next one, with
        the same actions.
        """
        self.rotated()
        second = wire.Rotate("f" * 32, JUNK, CLIENT_PUBLIC, "alice")
        actions = [
            self.session.receive(second),
            self.session.started(SERVER_PUBLIC, OK),
            self.session.receive(ACK),
            self.session.committed(DONE),
        ]
        self.assertEqual(
            actions,
            [
                [Begin(second)],
                [Send(wire.RotateOk(SERVER_PUBLIC, OK))],
                [Commit(ACK_SEALED)],
                [Send(wire.RotateDone(DONE))],
            ],
        )

    def test_refused(self):
        """
        A key the profile may not rotate from: C{SUTO_ERROR_UNKNOWN_KEY}
        and close, nothing abandoned (no rotation began).
        """
        self.beginning()
        self.assertEqual(self.session.refused(), refusal(wire.ERROR_UNKNOWN_KEY))

    def test_refused_second_rotation(self):
        """
        A later rotation on the connection is refused the same way.
        """
        self.rotated()
        self.beginning()
        self.assertEqual(self.session.refused(), refusal(wire.ERROR_UNKNOWN_KEY))

    def test_rejected(self):
        """
        An acknowledgement that does not open, or a commit that lost a
        race: C{SUTO_ERROR_ROTATION_FAILED} and close; the rules already
        counted it, so nothing is abandoned.
        """
        self.committing()
        self.assertEqual(
            self.session.rejected(), refusal(wire.ERROR_ROTATION_FAILED)
        )

    def test_pipelined_beginning(self):
        """
        Any message while the next key is derived breaks lockstep:
        C{SUTO_ERROR_PIPELINED} and close; the late result then does
        nothing.
        """
        for message in [ROTATE, ACK, *STRAYS]:
            self.session = RotationConversation("alice")
            self.beginning()
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_PIPELINED),
                message,
            )
            self.assertEqual(self.session.started(SERVER_PUBLIC, OK), [])

    def test_pipelined_committing(self):
        """
        Any message while the new key is committed breaks lockstep too; the
        late result then does nothing.
        """
        for message in [ROTATE, ACK, *STRAYS]:
            self.session = RotationConversation("alice")
            self.committing()
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_PIPELINED),
                message,
            )
            self.assertEqual(self.session.committed(DONE), [])

    def test_unexpected_idle(self):
        """
        Between rotations (before the first and after one) an
        acknowledgement, a rotation for another profile, or a message with
        no place in rotation is out of order; nothing is abandoned.
        """
        for reach in (self.fresh, self.rotated):
            for message in [ACK, *STRAYS]:
                self.session = RotationConversation("alice")
                reach()
                self.assertEqual(
                    self.session.receive(message),
                    refusal(wire.ERROR_OUT_OF_ORDER),
                    (reach.__name__, message),
                )

    def test_unexpected_awaiting_ack(self):
        """
        While C{SUTO_ROTATE_OK_} waits for its acknowledgement, a new
        rotation (for this profile or another) or any other message is out
        of order and abandons the rotation under way.
        """
        for message in [ROTATE, *STRAYS]:
            self.session = RotationConversation("alice")
            self.awaiting_ack()
            self.assertEqual(
                self.session.receive(message),
                abandoned(wire.ERROR_OUT_OF_ORDER),
                message,
            )

    def test_other_user_after_rotation(self):
        """
        A connection serves the profile of its first rotation only: after
        a rotation for C{alice}, one for C{bob} is out of order and begins
        nothing.
        """
        self.rotated()
        self.assertEqual(
            self.session.receive(OTHER_USER), refusal(wire.ERROR_OUT_OF_ORDER)
        )

    def test_protocol_error(self):
        """
        Bad bytes or a timeout before the end: the error's code and close;
        only a rotation waiting for its acknowledgement is abandoned.
        """
        expected = {
            "fresh": refusal(wire.ERROR_TIMEOUT),
            "beginning": refusal(wire.ERROR_TIMEOUT),
            "awaiting_ack": abandoned(wire.ERROR_TIMEOUT),
            "committing": refusal(wire.ERROR_TIMEOUT),
            "rotated": refusal(wire.ERROR_TIMEOUT),
        }
        states = [
            self.fresh,
            self.beginning,
            self.awaiting_ack,
            self.committing,
            self.rotated,
        ]
        actual = {
            state: self.session.protocol_error(
                wire.ProtocolError(wire.ERROR_TIMEOUT, "silent")
            )
            for state in self.reach_each(states)
        }
        self.assertEqual(actual, expected)

    def test_unavailable(self):
        """
        Rules that cannot answer now: C{SUTO_ERROR_BUSY} and close.
        """
        for state in self.reach_each([self.beginning, self.committing]):
            self.assertEqual(
                self.session.unavailable("internal error"),
                refusal(wire.ERROR_BUSY),
                state,
            )

    def test_connection_lost(self):
        """
        The connection ending abandons a rotation only while it waits for
        the acknowledgement (the client could not open C{SUTO_ROTATE_OK_},
        or went away); in any other state it asks for nothing.
        """
        expected = {
            "fresh": [],
            "beginning": [],
            "awaiting_ack": [Abandon(UNACKNOWLEDGED)],
            "committing": [],
            "rotated": [],
        }
        states = [
            self.fresh,
            self.beginning,
            self.awaiting_ack,
            self.committing,
            self.rotated,
        ]
        actual = {
            state: self.session.connection_lost()
            for state in self.reach_each(states)
        }
        self.assertEqual(actual, expected)

    def test_nothing_after_done(self):
        """
        After each way the conversation ends, every further message or
        result asks for nothing: no second Abandon, no second error.
        """
        endings = [
            lambda: (self.beginning(), self.session.refused()),
            lambda: (self.committing(), self.session.rejected()),
            lambda: self.session.receive(ACK),
            lambda: (self.awaiting_ack(), self.session.receive(STRAY)),
            lambda: (self.awaiting_ack(), self.session.connection_lost()),
            lambda: (self.rotated(), self.session.connection_lost()),
            lambda: (
                self.awaiting_ack(),
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_TIMEOUT, "silent")
                ),
            ),
        ]
        for end in endings:
            self.session = RotationConversation("alice")
            end()
            late = [
                self.session.receive(ROTATE),
                self.session.receive(ACK),
                self.session.receive(STRAY),
                self.session.started(SERVER_PUBLIC, OK),
                self.session.refused(),
                self.session.committed(DONE),
                self.session.rejected(),
                self.session.unavailable("busy"),
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_BAD_FIELD, "bad")
                ),
                self.session.connection_lost(),
            ]
            self.assertEqual(late, [[]] * len(late))

    def test_commit_repr(self):
        """
        L{Commit} shows how many bytes it carries, never the bytes.
        """
        text = repr([Commit(ACK_SEALED)])
        self.assertEqual(text, "[Commit(<19 bytes>)]")
        self.assertNotIn(ACK_SEALED.hex(), text)
        self.assertNotIn(repr(ACK_SEALED)[2:-1], text)


RECONNECT = wire.Reconnect(KEY_ID, bytes(16), bytes(range(48)), "alice")
OTHER_RECONNECT = wire.Reconnect(KEY_ID, bytes(16), bytes(range(48)), "bob")
RECONNECT_OK = bytes(range(50, 68))


class ReconnectSessionTests(SynchronousTestCase):
    """
    L{RotationConversation}'s reconnection: C{SUTO_C_RECONNECT_} as a
    connection's first message, then one rotation.
    """

    def setUp(self):
        self.session = RotationConversation("alice")

    def reconnecting(self):
        "Bring the machine to the point where the rules check the reconnection."
        self.assertEqual(self.session.receive(RECONNECT), [Reconnect(RECONNECT)])

    def reconnected(self):
        "Bring the machine past C{SUTO_RECONNECT_OK_}."
        self.reconnecting()
        self.assertEqual(
            self.session.reconnected(RECONNECT_OK),
            [Send(wire.ReconnectOk(RECONNECT_OK))],
        )

    # A rotation after the reconnection, asserting each step's actions.
    beginning = RotationSessionTests.beginning
    awaiting_ack = RotationSessionTests.awaiting_ack
    committing = RotationSessionTests.committing
    rotated = RotationSessionTests.rotated

    def test_reconnect_then_rotate(self):
        """
        A reconnection asks the rules, sends C{SUTO_RECONNECT_OK_}, and a
        full rotation follows on the connection, with the actions of any
        rotation; the connection stays open for the next one.
        """
        self.reconnected()
        self.rotated()
        self.beginning()

    def test_denied(self):
        """
        A reconnection the rules deny (blacklisted, or failed) and a
        rotation they deny both end with C{SUTO_AUTH_0} and close, nothing
        more.
        """
        self.reconnecting()
        denial = [Send(wire.Auth(False)), Close()]
        self.assertEqual(self.session.denied(), denial)
        self.session = RotationConversation("alice")
        self.assertEqual(self.session.receive(ROTATE), [Begin(ROTATE)])
        self.assertEqual(self.session.denied(), denial)
        self.session = RotationConversation("alice")
        self.reconnected()
        self.assertEqual(self.session.receive(ROTATE), [Begin(ROTATE)])
        self.assertEqual(self.session.denied(), denial)

    def test_refused(self):
        """
        A reconnection naming an unknown key or profile: C{SUTO_ERROR_
        UNKNOWN_KEY} and close.
        """
        self.reconnecting()
        self.assertEqual(self.session.refused(), refusal(wire.ERROR_UNKNOWN_KEY))

    def test_reconnect_not_first(self):
        """
        A reconnection after a rotation or after a reconnection is out of
        order and asks the rules nothing; so is a first one for another
        profile than the connection's.
        """
        self.assertEqual(
            self.session.receive(OTHER_RECONNECT), refusal(wire.ERROR_OUT_OF_ORDER)
        )
        for reach in (self.rotated, self.reconnected):
            self.session = RotationConversation("alice")
            reach()
            self.assertEqual(
                self.session.receive(RECONNECT),
                refusal(wire.ERROR_OUT_OF_ORDER),
                reach.__name__,
            )

    def test_pipelined_reconnecting(self):
        """
        Any message while the rules check the reconnection breaks
        lockstep: C{SUTO_ERROR_PIPELINED} and close; their late answer
        then does nothing.
        """
        for message in [ROTATE, RECONNECT, ACK, *STRAYS]:
            self.session = RotationConversation("alice")
            self.reconnecting()
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_PIPELINED),
                message,
            )
            self.assertEqual(self.session.reconnected(RECONNECT_OK), [])

    def test_unexpected_reconnected(self):
        """
        After C{SUTO_RECONNECT_OK_} only a rotation for this profile may
        follow: anything else is out of order.
        """
        for message in [ACK, *STRAYS]:
            self.session = RotationConversation("alice")
            self.reconnected()
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_OUT_OF_ORDER),
                message,
            )

    def test_protocol_error_and_lost(self):
        """
        Bad bytes, silence or busy rules while reconnecting or reconnected
        end with the error's code; a lost connection asks for nothing; no
        rotation is abandoned, as none began.
        """
        for reach in (self.reconnecting, self.reconnected):
            self.session = RotationConversation("alice")
            reach()
            self.assertEqual(
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_TIMEOUT, "silent")
                ),
                refusal(wire.ERROR_TIMEOUT),
            )
            self.session = RotationConversation("alice")
            reach()
            self.assertEqual(
                self.session.unavailable("internal error"),
                refusal(wire.ERROR_BUSY),
            )
            self.session = RotationConversation("alice")
            reach()
            self.assertEqual(self.session.connection_lost(), [])

    def test_nothing_after_denial(self):
        """
        After a denial every further message or result asks for nothing.
        """
        self.reconnecting()
        self.session.denied()
        late = [
            self.session.receive(ROTATE),
            self.session.receive(RECONNECT),
            self.session.reconnected(RECONNECT_OK),
            self.session.denied(),
            self.session.refused(),
            self.session.connection_lost(),
        ]
        self.assertEqual(late, [[]] * len(late))

    def test_reconnect_repr(self):
        """
        L{Reconnect}'s message shows no sealed bytes.
        """
        text = repr(Reconnect(RECONNECT))
        self.assertNotIn(RECONNECT.sealed.hex(), text)
        self.assertNotIn(repr(RECONNECT.sealed)[2:-1], text)


class TransitionTableTests(SynchronousTestCase):
    """
    L{TRANSITIONS} says what every input does in every state, so no call
    on a L{RotationConversation} can find its state without an answer.
    """

    def test_total(self):
        """
        The table has exactly one row for each state and each input, and
        leads only to states of the machine.
        """
        rows = list(TRANSITIONS.rows())
        self.assertEqual(
            [(row.state, row.symbol) for row in rows],
            [(state, symbol) for state in STATES for symbol in INPUTS],
        )
        self.assertEqual({row.next_state for row in rows}, set(STATES))
        self.assertIs(RotationConversation.TABLE, TRANSITIONS)

    def test_unasked_answer(self):
        """
        An answer of the rules that no ask waits for ends the connection
        as a failure of the rules does, abandoning a rotation waiting for
        its acknowledgement.
        """
        session = RotationConversation("alice")
        self.assertEqual(session.committed(DONE), refusal(wire.ERROR_BUSY))
        session = RotationConversation("alice")
        session.receive(ROTATE)
        session.started(SERVER_PUBLIC, OK)
        self.assertEqual(session.denied(), abandoned(wire.ERROR_BUSY))
        self.assertEqual(session.receive(ROTATE), [])
