"""
The server's rotation conversation on a version-3 connection: a commit
answered with the next share primes the connection, whose next rotation
is one message each way; the exact actions in each of its states, and
what is out of order where.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import wire
from suto_server.core.machine import Close, Send
from suto_server.machines.rotation import (
    COMMITTING_PRIMED,
    IDLE,
    PRIMED,
    Begin,
    Commit,
    CommitPrimed,
    Prove,
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

NEXT = bytes(range(150, 198))
NONCE = bytes(range(16))

PRIMED_ROTATE = wire.RotatePrimed(KEY_ID, JUNK, CLIENT_PUBLIC, ACK_SEALED, "alice")
OTHER_PRIMED = wire.RotatePrimed(KEY_ID, JUNK, CLIENT_PUBLIC, ACK_SEALED, "bob")
RECONNECT = wire.Reconnect(KEY_ID, bytes(16), bytes(range(48)), "alice")
PROOF = wire.VerifyProof(NONCE, bytes(range(16, 32)))


class PrimedConversationTests(SynchronousTestCase):
    """
    L{RotationConversation} once a commit was answered with the next
    share (C{committed_next}).
    """

    def setUp(self):
        self.session = RotationConversation("alice")

    def committing(self):
        "A first, two-message rotation, up to its commit."
        self.assertEqual(self.session.receive(ROTATE), [Begin(ROTATE)])
        self.assertEqual(
            self.session.started(SERVER_PUBLIC, OK),
            [Send(wire.RotateOk(SERVER_PUBLIC, OK))],
        )
        self.assertEqual(self.session.receive(ACK), [Commit(ACK_SEALED)])

    def primed(self):
        "Commit the first rotation with the next share: primed."
        self.committing()
        self.assertEqual(
            self.session.committed_next(NEXT), [Send(wire.RotateDoneNext(NEXT))]
        )
        self.assertEqual(self.session.state, PRIMED)

    def committing_primed(self):
        "Start a primed rotation: the rules check, derive and commit."
        self.primed()
        self.assertEqual(
            self.session.receive(PRIMED_ROTATE), [CommitPrimed(PRIMED_ROTATE)]
        )
        self.assertEqual(self.session.state, COMMITTING_PRIMED)

    def reach(self, state):
        self.session = RotationConversation("alice")
        state()

    def test_primed_rotations(self):
        """
        Each primed rotation asks the rules once and answers with the
        next share, back in C{primed}: one message each way, however
        many follow.
        """
        self.primed()
        for _ in range(3):
            self.assertEqual(
                self.session.receive(PRIMED_ROTATE), [CommitPrimed(PRIMED_ROTATE)]
            )
            self.assertEqual(
                self.session.committed_next(NEXT), [Send(wire.RotateDoneNext(NEXT))]
            )
        self.assertEqual(self.session.state, PRIMED)

    def test_two_message_commit_stays_idle(self):
        """
        A commit answered with "done" (a version-2 connection) leaves the
        connection C{idle}, where a primed rotation is out of order and
        asks the rules nothing.
        """
        self.committing()
        self.session.committed(bytes(20))
        self.assertEqual(self.session.state, IDLE)
        self.assertEqual(
            self.session.receive(PRIMED_ROTATE), refusal(wire.ERROR_OUT_OF_ORDER)
        )

    def test_primed_rotation_out_of_order(self):
        """
        C{SUTO_C_ROTATE_PRIMED_} before the connection's first commit,
        after a reconnection before its rotation, or while a two-message
        rotation waits for its ack (which it abandons), is out of order.
        """
        self.assertEqual(
            self.session.receive(PRIMED_ROTATE), refusal(wire.ERROR_OUT_OF_ORDER)
        )
        self.session = RotationConversation("alice")
        self.assertEqual(self.session.receive(RECONNECT), [Reconnect(RECONNECT)])
        self.session.reconnected(OK)
        self.assertEqual(
            self.session.receive(PRIMED_ROTATE), refusal(wire.ERROR_OUT_OF_ORDER)
        )
        self.session = RotationConversation("alice")
        self.session.receive(ROTATE)
        self.session.started(SERVER_PUBLIC, OK)
        self.assertEqual(
            self.session.receive(PRIMED_ROTATE),
            abandoned(wire.ERROR_OUT_OF_ORDER),
        )

    def test_unexpected_primed(self):
        """
        In C{primed} a plain rotation, an ack, a reconnection, a primed
        rotation for another profile, or any other message is out of
        order, and abandons nothing.
        """
        for message in (ROTATE, ACK, RECONNECT, OTHER_PRIMED, wire.GetSaltA()):
            self.reach(self.primed)
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_OUT_OF_ORDER),
                message,
            )

    def test_pipelined(self):
        """
        Any message but a proof while the rules work on a primed rotation
        breaks lockstep; their late answer then does nothing.
        """
        for message in (PRIMED_ROTATE, ROTATE, ACK, RECONNECT, wire.GetSaltA()):
            self.reach(self.committing_primed)
            self.assertEqual(
                self.session.receive(message),
                refusal(wire.ERROR_PIPELINED),
                message,
            )
            self.assertEqual(self.session.committed_next(NEXT), [])

    def test_refusals(self):
        """
        The rules' refusals of a primed rotation end it as they end a
        rotation: a key that may not rotate, C{ERROR_UNKNOWN_KEY}; a
        blacklisted or offline profile, C{AUTH_0}; an ack that does not
        open, C{ERROR_ROTATION_FAILED}; none abandons anything (the rules
        counted what counts).
        """
        answers = [
            (RotationConversation.refused, refusal(wire.ERROR_UNKNOWN_KEY)),
            (RotationConversation.denied, [Send(wire.Auth(False)), Close()]),
            (RotationConversation.rejected, refusal(wire.ERROR_ROTATION_FAILED)),
        ]
        for answer, expected in answers:
            self.reach(self.committing_primed)
            self.assertEqual(answer(self.session), expected, answer.__name__)

    def test_unasked_answers(self):
        """
        An answer no ask waits for (a plain commit's "done", "ok") while
        the rules work on a primed rotation, or any answer in C{primed},
        is the server's own fault: C{ERROR_BUSY}.
        """
        for answer in (
            lambda: self.session.committed(bytes(20)),
            lambda: self.session.started(SERVER_PUBLIC, OK),
        ):
            self.reach(self.committing_primed)
            self.assertEqual(answer(), refusal(wire.ERROR_BUSY))
        self.reach(self.primed)
        self.assertEqual(self.session.committed_next(NEXT), refusal(wire.ERROR_BUSY))

    def test_lost_and_violation(self):
        """
        A connection lost, or broken, in C{primed} or while the rules work
        on a primed rotation abandons nothing: the ack, if any, was given.
        """
        for state in (self.primed, self.committing_primed):
            self.reach(state)
            self.assertEqual(self.session.connection_lost(), [])
            self.reach(state)
            self.assertEqual(
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_TIMEOUT, "silent")
                ),
                refusal(wire.ERROR_TIMEOUT),
            )
            self.reach(state)
            self.assertEqual(
                self.session.unavailable("internal error"), refusal(wire.ERROR_BUSY)
            )

    def test_challenge_and_proof(self):
        """
        A challenge goes out in C{primed} as in C{idle}, and waits while
        the rules work on a primed rotation; a proof is heard in both.
        """
        self.primed()
        self.assertTrue(self.session.between_rotations)
        self.assertEqual(
            self.session.challenge(NONCE), [Send(wire.VerifyChallenge(NONCE))]
        )
        self.assertEqual(self.session.receive(PROOF), [Prove(PROOF)])
        self.session.receive(PRIMED_ROTATE)
        self.assertFalse(self.session.between_rotations)
        self.assertEqual(self.session.challenge(NONCE), [])
        self.assertEqual(self.session.receive(PROOF), [Prove(PROOF)])
        self.assertEqual(self.session.state, COMMITTING_PRIMED)
        self.session.committed_next(NEXT)
        self.assertTrue(self.session.between_rotations)

    def test_nothing_after_done(self):
        """
        After a primed rotation ends the conversation, nothing asks for
        anything.
        """
        self.committing_primed()
        self.session.rejected()
        late = [
            self.session.receive(PRIMED_ROTATE),
            self.session.committed_next(NEXT),
            self.session.refused(),
            self.session.connection_lost(),
        ]
        self.assertEqual(late, [[]] * len(late))

    def test_commit_primed_repr(self):
        """
        L{CommitPrimed} shows none of the acknowledgement's bytes.
        """
        text = repr(CommitPrimed(PRIMED_ROTATE))
        self.assertNotIn(ACK_SEALED.hex(), text)
        self.assertNotIn(repr(ACK_SEALED)[2:-1], text)
