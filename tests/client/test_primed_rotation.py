"""
Tests for the primed rotation of L{suto_client.rotation_machine} on a
version-3 connection (docs/PROTOCOL.md §6.7, §9.2): the server's "done"
carries its share for the next rotation, which the agent keeps in memory
and rotates from in one message each way.  On the conversation, then over
a L{StringTransport} and a L{Clock}, against the fake server built from
the key schedule.
"""

from dataclasses import replace

from twisted.internet import error as internet_error
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client import rotation_machine
from suto_client.fingerprint import FingerprintError
from suto_client.rotation_outcome import Commit, Report, RotationOutcome
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send
from tests.support.client_rotation import (
    INTERVAL,
    USER,
    ConversationFixture,
    FactoryFixture,
    FakeServer,
    connected,
    pump,
    rotated_profile,
    sealed_share,
    secret_forms,
)
from tests.support.key_vectors import CHECK_NONCE

_NOT_OPENED = "the server's rotation confirmation did not open"


class PrimedConversationTests(ConversationFixture, SynchronousTestCase):
    """
    The primed rotation as the exact actions of the conversation.
    """

    def primed(self) -> Send:
        """
        Run the connection's first rotation, store it, and start the
        primed one; return what it sends, not yet delivered.
        """
        [commit] = self.converse(self.rotation.start())
        self.assertEqual(commit, Commit(rotated_profile(self.server)))
        self.rotation.committed()
        [send] = self.rotation.rotate()
        return send

    def assert_error(self, actions: list, reason: str, generation=1) -> None:
        """
        C{actions} end the conversation as an error for C{reason}, and the
        machine still holds the key of C{generation}: nothing committed.
        """
        self.assertEqual(
            actions,
            [
                Report(
                    RotationOutcome.ERROR,
                    self.rotation.profile.key_id,
                    generation,
                    reason,
                ),
                Close(),
            ],
        )
        self.assertEqual(self.rotation.profile.generation, generation)

    def test_primed_message(self):
        """
        After a first rotation whose "done" carried the server's share, the
        next rotation is one C{SUTO_C_ROTATE_PRIMED_}: the committed key's
        id, fresh junk and public key, the acknowledgement sealed under
        the key derived from the share, and the user.  The server's
        C{SUTO_ROTATE_DONE_NEXT_} under that key asks for its commit, and
        the stored key is the one the server derived; the fingerprint was
        computed once for each rotation.
        """
        send = self.primed()
        first = self.rotation.profile
        self.assertIsInstance(send.message, wire.RotatePrimed)
        self.assertEqual(
            (send.message.key_id, send.message.user, send.message.junk),
            (first.key_id, USER, bytes([3]) * 32),
        )
        [done] = self.server.receive(send.message)
        self.assertIsInstance(done, wire.RotateDoneNext)
        self.assertEqual(
            self.rotation.receive(done), [Commit(rotated_profile(self.server))]
        )
        self.assertEqual(self.server.generation, 2)
        self.assertEqual(self.rotation.profile, first)
        self.assertEqual(
            self.rotation.committed(),
            [Report(RotationOutcome.ROTATED, keyschedule.key_id(self.server.key), 2)],
        )
        self.assertEqual(self.rotation._state, rotation_machine.PRIMED)
        self.assertEqual(self.fingerprint.calls, 2)

    def test_unopened_share(self):
        """
        A C{SUTO_ROTATE_DONE_NEXT_} that does not open under the new key is
        a violation, for the first rotation as for a primed one, and
        nothing is committed.
        """
        self.rotation.start()
        [rotate] = self.rotation.receive(wire.Version(3))
        self.rotation.receive(self.server.receive(rotate.message)[0])
        actions = self.rotation.receive(wire.RotateDoneNext(bytes(48)))
        self.assert_error(actions, _NOT_OPENED, generation=0)
        self.setUp()
        self.primed()
        actions = self.rotation.receive(wire.RotateDoneNext(bytes(48)))
        self.assert_error(actions, _NOT_OPENED)

    def test_kind_of_done_by_version(self):
        """
        A C{SUTO_ROTATE_DONE_NEXT_} on a version-2 connection, and a plain
        C{SUTO_ROTATE_DONE_} on a version-3 one, are violations, though
        each opens under the new key; nothing is committed.
        """
        for version, speaks in ((2, 3), (3, 2)):
            self.setUp()
            self.server = FakeServer(version=speaks)
            self.rotation.start()
            [rotate] = self.rotation.receive(wire.Version(version))
            [ok] = self.server.receive(rotate.message)
            [ack] = self.rotation.receive(ok)
            [done] = self.server.receive(ack.message)
            self.assert_error(
                self.rotation.receive(done),
                f"unexpected {type(done).__name__} from the server",
                generation=0,
            )

    def test_ok_answers_primed(self):
        """
        A C{SUTO_ROTATE_OK_} in answer to a primed rotation is a message
        out of place.
        """
        self.primed()
        actions = self.rotation.receive(wire.RotateOk(bytes(32), bytes(16)))
        self.assert_error(actions, "unexpected RotateOk from the server")

    def test_rotation_failed(self):
        """
        A primed rotation whose acknowledgement the server cannot open is
        answered ROTATION_FAILED: the conversation ends as that error and
        the key of the first rotation stays the key.
        """
        send = self.primed()
        sealed = bytearray(send.message.sealed)
        sealed[0] ^= 1
        [refusal] = self.server.receive(
            replace(send.message, sealed=bytes(sealed))
        )
        self.assertEqual(refusal, wire.Error(wire.ERROR_ROTATION_FAILED))
        self.assert_error(
            self.rotation.receive(refusal),
            "the server could not open our acknowledgement (ROTATION_FAILED)",
        )
        self.assertEqual(self.rotation.profile, rotated_profile(self.server))

    def test_refusals(self):
        """
        C{SUTO_ERROR_UNKNOWN_KEY} and C{SUTO_AUTH_0} answer a primed
        rotation as they answer a rotation.
        """
        for answer, outcome in (
            (wire.Error(wire.ERROR_UNKNOWN_KEY), RotationOutcome.UNKNOWN_KEY),
            (wire.Auth(False), RotationOutcome.REFUSED),
        ):
            self.setUp()
            self.primed()
            [report, close] = self.rotation.receive(answer)
            self.assertEqual(
                (report.outcome, report.generation, close), (outcome, 1, Close())
            )

    def test_challenge_crossing(self):
        """
        A verification challenge that crosses the primed rotation is
        answered with the proof under the key the profile holds, the one
        being replaced; the rotation then commits.
        """
        send = self.primed()
        held = self.rotation.profile
        actions = self.rotation.receive(wire.VerifyChallenge(CHECK_NONCE))
        proof = keyschedule.verify_proof(held.key, CHECK_NONCE, USER)
        self.assertEqual(actions, [Send(wire.VerifyProof(CHECK_NONCE, proof))])
        [commit] = self.converse([send])
        self.assertEqual(commit.profile.key, self.server.key)

    def test_fingerprint_unavailable(self):
        """
        A fingerprint that cannot be computed when the primed rotation is
        due ends the conversation before anything is sent.
        """
        self.converse(self.rotation.start())
        self.rotation.committed()

        def no_fingerprint():
            raise FingerprintError("no fingerprint source is available")

        self.rotation._fingerprint = no_fingerprint
        self.assert_error(
            self.rotation.rotate(),
            "cannot compute the hardware fingerprint: no fingerprint source "
            "is available",
        )

    def test_unusable_share(self):
        """
        A share that gives no shared secret, sealed as the server seals,
        is committed with the key it came with, and ends the conversation
        when the next rotation derives from it.
        """
        self.rotation.start()
        [rotate] = self.rotation.receive(wire.Version(3))
        [ack] = self.rotation.receive(self.server.receive(rotate.message)[0])
        self.server.receive(ack.message)
        [commit] = self.rotation.receive(sealed_share(self.server.key, bytes(32)))
        self.assertEqual(commit.profile.key, self.server.key)
        self.rotation.committed()
        [report, close] = self.rotation.rotate()
        self.assertEqual((report.outcome, close), (RotationOutcome.ERROR, Close()))
        self.assertIn("cannot derive the next key", report.reason)

    def test_share_not_in_actions(self):
        """
        No action's representation shows the server's share, so logging
        one cannot leak it.
        """
        actions = self.rotation.start()
        actions += self.converse(actions)
        actions += self.rotation.committed()
        actions += self.rotation.rotate()
        shown = repr(actions)
        for form in secret_forms(*self.server.shares):
            self.assertNotIn(form, shown)


class PrimedConnectionTests(FactoryFixture, SynchronousTestCase):
    """
    The primed rotation over connections of a L{RotationFactory}.
    """

    def sent(self, since=0) -> list:
        """
        The types of the messages the server received, from the C{since}th.
        """
        return [type(message) for message in self.server.received[since:]]

    def rotate(self, times: int, protocol, transport) -> list:
        """
        Run C{times} rotations on one connection, each after the interval;
        return each stored key with the server's key after it.
        """
        keys = []
        for turn in range(times):
            if turn:
                self.clock.advance(INTERVAL)
            pump(protocol, transport, self.server)
            keys.append((self.stored[-1][1].key, self.server.key))
        return keys

    def test_four_rotations(self):
        """
        A version-3 connection rotating four times sends one
        C{SUTO_C_ROTATE_} (and its acknowledgement), then three
        C{SUTO_C_ROTATE_PRIMED_}; every key it stores is the key the server
        derived, and the fingerprint is recomputed for each.
        """
        keys = self.rotate(4, *connected(self.factory))
        self.assertEqual(
            self.sent(),
            [wire.Version, wire.Rotate, wire.RotateAck] + [wire.RotatePrimed] * 3,
        )
        self.assertEqual([ours for ours, _ in keys], [theirs for _, theirs in keys])
        self.assertEqual(len({ours for ours, _ in keys}), 4)
        self.assertEqual(self.server.generation, 4)
        self.assertEqual(self.factory.profile, self.stored[-1][1])
        self.assertEqual(
            [report.outcome for report in self.reports],
            [RotationOutcome.ROTATED] * 4,
        )
        self.assertEqual(self.fingerprint.calls, 4)

    def test_version_2_server(self):
        """
        A server that answers C{SUTO_VERSION_2} gets the two-message form
        at every rotation, and the keys still agree.
        """
        self.server = FakeServer(version=2)
        keys = self.rotate(4, *connected(self.factory))
        self.assertEqual(
            self.sent(), [wire.Version] + [wire.Rotate, wire.RotateAck] * 4
        )
        self.assertEqual([ours for ours, _ in keys], [theirs for _, theirs in keys])

    def test_share_dropped_with_connection(self):
        """
        The share lives as long as its connection: the first rotation of
        the next connection takes the two-message form again, from the
        key the last one stored.
        """
        self.connection()
        since = len(self.server.received)
        self.connection()
        self.assertEqual(self.sent(since), [wire.Version, wire.Rotate, wire.RotateAck])
        self.assertEqual(
            self.server.received[since + 1].key_id, self.stored[0][1].key_id
        )
        self.assertEqual(self.factory.profile.key, self.server.key)

    def test_lost_mid_primed(self):
        """
        A connection lost after the primed rotation went out, before the
        server's answer, ends that rotation as an error: nothing is
        stored and the key of the last rotation stays the key.
        """
        protocol, transport = connected(self.factory)
        pump(protocol, transport, self.server)
        self.clock.advance(INTERVAL)
        pump(protocol, transport, self.server, until=wire.RotatePrimed)
        protocol.connectionLost(Failure(internet_error.ConnectionLost()))
        self.assertEqual(len(self.stored), 1)
        self.assertEqual(self.factory.profile, self.stored[0][1])
        self.assertEqual(
            [report.outcome for report in self.reports],
            [RotationOutcome.ROTATED, RotationOutcome.ERROR],
        )
        self.assertEqual(self.reports[-1].key_id, self.stored[0][1].key_id)

