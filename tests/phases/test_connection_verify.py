"""
A verification's challenge on a profile's live rotation connection
(docs/PROTOCOL.md §11), through the server's Protocol over a
StringTransport: when it goes out, what answers it, and that it never
disturbs the rotations it may cross.
"""

from twisted.internet import defer, error
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule
from suto_server.phases.challenges import MAX_CHALLENGES
from suto_server.rules.registry import TooManyChallenges
from suto_server.store.errors import StoreError
from tests.support.rotation import FIRST_KEY
from tests.support.rotation_listener import RotationListenerMixin, b64

NONCE = bytes(range(0x80, 0x90))


class ChallengeTests(RotationListenerMixin, SynchronousTestCase):
    def challenge(self, protocol, nonce=NONCE):
        answers = []
        protocol.challenge(nonce).addCallback(answers.append)
        return answers

    def proof_line(self, key, nonce=NONCE):
        proof = keyschedule.verify_proof(key, nonce, "alice")
        return b"SUTO_C_VERIFY_%s_%s\r\n" % (b64(nonce), b64(proof))

    def test_proven(self):
        """
        Between rotations the challenge goes out at once, and the proof
        under the current key answers it C{True}; the connection stays
        open and no rotation state changes.
        """
        protocol, transport = self.rotated()
        transport.clear()
        answers = self.challenge(protocol)
        self.assertEqual(transport.value(), b"SUTO_VERIFY_%s\r\n" % b64(NONCE))
        self.assertEqual(self.exchange(protocol, transport, self.proof_line(self.device.key)), b"")
        self.assertEqual(answers, [True])
        self.assertFalse(transport.disconnecting)
        self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))

    def test_previous_key(self):
        """
        While the new key is unconfirmed the previous one answers too (an
        agent still storing the new key answers with the old).
        """
        protocol, transport = self.rotated()
        answers = self.challenge(protocol)
        self.exchange(protocol, transport, self.proof_line(FIRST_KEY))
        self.assertEqual(answers, [True])

    def test_wrong_proof(self):
        """
        A proof under another key, or for another nonce, is C{False} or
        proves nothing; the connection is not disturbed.
        """
        protocol, transport = self.rotated()
        answers = self.challenge(protocol)
        self.exchange(protocol, transport, self.proof_line(bytes(32), bytes(16)))
        self.assertEqual(answers, [])
        self.exchange(protocol, transport, self.proof_line(bytes(32)))
        self.assertEqual(answers, [False])
        self.exchange(protocol, transport, self.proof_line(self.device.key))
        self.assertEqual(answers, [False])
        self.assertFalse(transport.disconnecting)

    def test_crossing_a_rotation(self):
        """
        A challenge asked during a rotation goes out once it is
        committed; a proof crossing the agent's next rotation is heard in
        the middle of it, and the rotation completes.
        """
        protocol, transport = self.rotated()
        transport.clear()
        reply = self.exchange(protocol, transport, self.rotate_line())
        answers = self.challenge(protocol)
        self.assertNotIn(b"SUTO_VERIFY_", transport.value())
        self.exchange(protocol, transport, self.ok_line(reply))
        self.clock.advance(0)
        [done, challenge] = self.decode(transport.value())
        self.assertEqual(challenge.nonce, NONCE)
        self.device.commit(done.sealed)
        transport.clear()
        second = self.challenge(protocol, bytes(16))
        self.assertEqual(transport.value(), b"SUTO_VERIFY_%s\r\n" % b64(bytes(16)))
        # The agent had started its next rotation: both cross on the wire.
        reply = self.exchange(
            protocol, transport, self.rotate_line() + self.proof_line(FIRST_KEY)
        )
        self.assertEqual(answers, [False])
        self.exchange(protocol, transport, self.proof_line(self.device.key, bytes(16)))
        self.assertEqual(second, [True])
        self.exchange(protocol, transport, self.ok_line(reply))
        self.clock.advance(0)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.store.get_profile("alice").generation, 3)

    def test_lost_and_cancelled(self):
        """
        A connection that ends answers its challenges L{None}; one given
        up on (cancelled) is forgotten, and one past too many at once
        fails at once with L{TooManyChallenges}.
        """
        protocol, transport = self.rotated()
        cancelled = protocol.challenge(bytes(16))
        cancelled.addErrback(lambda failure: failure.trap(defer.CancelledError))
        cancelled.cancel()
        self.exchange(protocol, transport, self.proof_line(self.device.key, bytes(16)))
        answers = [
            self.challenge(protocol, bytes([n]) * 16) for n in range(1, MAX_CHALLENGES + 1)
        ]
        self.failureResultOf(protocol.challenge(b"\xff" * 16), TooManyChallenges)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(answers[0], [None])

    def test_store_failure(self):
        """
        A challenge whose expected proofs cannot be read (the store
        failed) fails with the store's error, which is no answer of the
        device's, and is logged as one warning, without a traceback;
        nothing is sent, and the connection stays open.
        """
        protocol, transport = self.rotated()
        transport.clear()
        self.calls.get_profile = lambda user: defer.fail(StoreError("disk gone"))
        with capturedLogs() as events:
            challenge = protocol.challenge(NONCE)
        self.failureResultOf(challenge, StoreError)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(
            [(event["log_level"], formatEvent(event)) for event in events],
            [
                (
                    LogLevel.warn,
                    (
                        "preparing a verification for alice failed: the store "
                        "did not answer (disk gone)"
                    ),
                )
            ],
        )
        self.assertFalse(transport.disconnecting)
