"""
The primed rotation (protocol version 3, docs/PROTOCOL.md §9.2) through
the server's Protocol over a StringTransport, with a task.Clock, the real
rotation rules, an in-memory store, a real master key and every X25519
key of the server fixed: the exact bytes of a primed rotation, the keys
it commits, what it refuses and counts, and that a version-2 connection
rotates as before.
"""

import itertools
from dataclasses import replace

from twisted.internet import error
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, wire
from tests.support.enrollment import FINGERPRINT
from tests.support.rotation import FIRST_KEY, JUNK, NOW, Device, raw_public
from tests.support.rotation_listener import (
    CLIENT_PRIVATE,
    IDLE_TIMEOUT,
    VERSION_3,
    ReconnectListenerMixin,
    RotationListenerMixin,
    b64,
    sealed,
    server_private_keys,
)

NONCE = bytes(range(0x80, 0x90))


class PrimedListenerMixin(RotationListenerMixin):
    """
    L{RotationListenerMixin}'s listener, its device speaking version 3.
    """

    def primed(self):
        """
        Connect on version 3 and complete the connection's first rotation,
        the two-message form, answered C{SUTO_ROTATE_DONE_NEXT_}; the
        device commits on it and keeps the share.

        @return: the protocol and its transport.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION_3 + self.rotate_line())
        self.assertTrue(reply.startswith(VERSION_3))
        self.exchange(protocol, transport, self.ok_line(reply[len(VERSION_3) :]))
        self.clock.advance(0)
        self.take_next(transport)
        return protocol, transport

    def rotate_primed(self, protocol, transport):
        """
        Complete one primed rotation on the open connection C{protocol}.
        """
        self.assertEqual(self.exchange(protocol, transport, self.primed_line()), b"")
        self.clock.advance(0)
        self.take_next(transport)

    def assert_refused(self, protocol, transport, line, answer):
        """
        C{line} is answered C{answer}, the connection closes, and the
        profile's key does not change.
        """
        before = self.store.get_profile("alice")
        self.assertEqual(self.exchange(protocol, transport, line), answer)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.clock.advance(0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation),
            (before.key_id, before.generation),
        )


class PrimedRotationTests(PrimedListenerMixin, SynchronousTestCase):
    """
    Rotations on a version-3 connection.
    """

    def test_first_rotation_primes(self):
        """
        The first rotation is the two-message form; its commit is answered
        C{SUTO_ROTATE_DONE_NEXT_} sealing, under K1 (counter 1), the public
        key of the server's next share; the primed rotation that follows
        is one line each way, and commits the K2 the client derives with
        that share, answered with the share after it.
        """
        first, second, third = itertools.islice(server_private_keys(), 3)
        s2c = keyschedule.Direction.SERVER_TO_CLIENT
        c2s = keyschedule.Direction.CLIENT_TO_SERVER

        def derived(key, server, generation):
            shared = keyschedule.dh_shared_secret(CLIENT_PRIVATE, raw_public(server))
            return keyschedule.next_key(
                key, JUNK, FINGERPRINT, shared, "alice", generation
            )

        k1 = derived(FIRST_KEY, first, 1)
        protocol, transport = self.connect()

        def assert_hands_out(key, share):
            # The server's answer: the share's public key sealed under key.
            self.assertEqual(
                transport.value(),
                b"SUTO_ROTATE_DONE_NEXT_%s\r\n"
                % b64(
                    sealed(
                        key,
                        raw_public(share),
                        keyschedule.ROTATE_DONE_NEXT_PURPOSE,
                        s2c,
                        1,
                    )
                ),
            )

        reply = self.exchange(protocol, transport, VERSION_3 + self.rotate_line())
        self.exchange(protocol, transport, self.ok_line(reply[len(VERSION_3) :]))
        self.clock.advance(0)
        assert_hands_out(k1, second)
        self.assertEqual(self.key_id(), keyschedule.key_id(k1))
        k2 = derived(k1, second, 2)
        ack = sealed(k2, b"ack", keyschedule.ROTATE_ACK_PURPOSE, c2s, 0)
        line = b"SUTO_C_ROTATE_PRIMED_%s_%s_%s_%s_alice\r\n" % (
            keyschedule.key_id(k1).encode("ascii"),
            b64(JUNK),
            b64(raw_public(CLIENT_PRIVATE)),
            b64(ack),
        )
        self.assertEqual(self.exchange(protocol, transport, line), b"")
        self.assertEqual(self.key_id(), keyschedule.key_id(k1))
        self.clock.advance(0)
        assert_hands_out(k2, third)
        self.assertEqual(self.key_id(), keyschedule.key_id(k2))
        self.assertFalse(transport.disconnecting)

    def test_three_primed_rotations(self):
        """
        Three primed rotations in a row commit three keys, each the one
        the device derived; the store holds the last, with the one before
        as its previous key, and the connection stays open.
        """
        protocol, transport = self.primed()
        keys = []
        for _ in range(3):
            self.rotate_primed(protocol, transport)
            keys.append(self.device.key)
        self.assertEqual(len(set(keys)), 3)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation, profile.previous_key_id),
            (keyschedule.key_id(keys[2]), 4, keyschedule.key_id(keys[1])),
        )
        self.assertEqual(
            self.master_key.open_key("alice", profile.key_id, profile.key_sealed),
            keys[2],
        )
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.failures(), [])

    def test_share_never_logged(self):
        """
        No log event holds the private key of a share the server handed
        out, nor a key it committed.
        """
        with capturedLogs() as events:
            protocol, transport = self.primed()
            self.rotate_primed(protocol, transport)
            protocol.connectionLost(Failure(error.ConnectionDone()))
        text = "\n".join(formatEvent(event) + repr(event) for event in events)
        for private in itertools.islice(server_private_keys(), 3):
            secret = private.private_bytes_raw()
            self.assertNotIn(secret.hex(), text)
            self.assertNotIn(b64(secret).decode(), text)
        self.assertNotIn(self.device.key.hex(), text)

    def test_idle_timeout(self):
        """
        After a primed rotation the connection may stay quiet for the idle
        timeout, and is closed with C{SUTO_ERROR_TIMEOUT} at it, counting
        no failure.
        """
        protocol, transport = self.primed()
        self.rotate_primed(protocol, transport)
        self.assert_times_out(protocol, transport, IDLE_TIMEOUT)
        self.assertEqual(self.failures(), [])

    def test_bad_ack(self):
        """
        A primed rotation whose ack does not open under the key the share
        derives: C{SUTO_ERROR_ROTATION_FAILED}, close, no key written, and
        one failure counted, as for a rotation's ack.
        """
        protocol, transport = self.primed()
        request = self.device.primed_request(CLIENT_PRIVATE)
        line = wire.encode(
            replace(request, sealed=bytes(19)), wire.Framing.FRAMED
        )
        self.assert_refused(
            protocol, transport, line, b"SUTO_ERROR_ROTATION_FAILED\r\n"
        )
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 1)
        self.assertEqual(
            [reason for _, _, _, reason in self.failures()],
            ["the acknowledgement did not open"],
        )

    def test_unknown_key(self):
        """
        A primed rotation from a key the profile never held is answered
        as a rotation from one: C{SUTO_ERROR_UNKNOWN_KEY}, close.
        """
        protocol, transport = self.primed()
        stranger = Device("alice", bytes(32))
        stranger.share = self.device.share
        self.assert_refused(
            protocol,
            transport,
            self.primed_line(stranger),
            b"SUTO_ERROR_UNKNOWN_KEY\r\n",
        )
        self.assertEqual(self.audit("clone_suspected"), [])

    def test_retired_key(self):
        """
        A primed rotation from a key the profile held and retired is
        answered C{SUTO_ERROR_UNKNOWN_KEY}, as a rotation from one, and
        recorded as C{clone_suspected}.
        """
        protocol, transport = self.primed()
        copy = Device("alice", FIRST_KEY)
        self.rotate_primed(protocol, transport)
        self.rotate_primed(protocol, transport)
        copy.share = self.device.share
        self.assert_refused(
            protocol, transport, self.primed_line(copy), b"SUTO_ERROR_UNKNOWN_KEY\r\n"
        )
        self.assertEqual(len(self.audit("clone_suspected")), 1)

    def test_primed_from_previous_key(self):
        """
        The share is handed out under the key its commit made, and serves
        a rotation from that key only: a primed rotation naming the key
        before it (which the profile still holds as its previous one) is
        answered C{SUTO_ERROR_UNKNOWN_KEY}, and rolls nothing back: the
        connection proved the newer key, so the claim that its client
        never committed it would be false.
        """
        protocol, transport = self.primed()
        older = Device("alice", FIRST_KEY)
        older.share = self.device.share
        self.assert_refused(
            protocol, transport, self.primed_line(older), b"SUTO_ERROR_UNKNOWN_KEY\r\n"
        )
        self.assertEqual(self.audit("rotation_rolled_back"), [])
        self.assertEqual(self.failures(), [])

    def test_plain_rotation_when_primed(self):
        """
        Once the connection is primed, a plain C{SUTO_C_ROTATE_} is out of
        order, and counts nothing.
        """
        protocol, transport = self.primed()
        self.assert_refused(
            protocol, transport, self.rotate_line(), b"SUTO_ERROR_OUT_OF_ORDER\r\n"
        )
        self.assertEqual(self.failures(), [])

    def test_share_dropped_on_close(self):
        """
        The server drops its share as soon as it ends the conversation (a
        message out of order, a timeout), not only once the transport
        reports the loss, which a peer that stops reading can put off
        for as long as TCP lets it.
        """
        protocol, transport = self.primed()
        self.assertIsNotNone(protocol._phase._share)
        self.exchange(protocol, transport, self.rotate_line())
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(protocol._phase._share)
        protocol, transport = self.primed()
        self.clock.advance(IDLE_TIMEOUT)
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(protocol._phase._share)

    def test_primed_before_first_commit(self):
        """
        C{SUTO_C_ROTATE_PRIMED_} while the connection's first rotation
        waits for its ack is out of order, and abandons that rotation.
        """
        self.primed()
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION_3 + self.rotate_line())
        self.assert_refused(
            protocol, transport, self.primed_line(), b"SUTO_ERROR_OUT_OF_ORDER\r\n"
        )
        self.assertEqual(
            [reason for _, _, _, reason in self.failures()],
            ["protocol error: OUT_OF_ORDER"],
        )

    def test_lost_while_committing(self):
        """
        A connection lost while the rules work on a primed rotation
        abandons nothing: the commit goes on, no failure is counted, and
        the device, which never got the answer, is rolled back when it
        comes back with the key it holds.
        """
        protocol, transport = self.primed()
        self.exchange(protocol, transport, self.primed_line())
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.store.get_profile("alice").generation, 2)
        self.assertEqual(self.failures(), [])
        self.primed()
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertEqual(len(self.audit("rotation_rolled_back")), 1)


class VersionTwoTests(PrimedListenerMixin, SynchronousTestCase):
    """
    A version-2 connection on the same server rotates as before.
    """

    def test_two_rotations_done(self):
        """
        A version-2 connection's rotations are each answered
        C{SUTO_ROTATE_DONE_}; a C{SUTO_C_ROTATE_PRIMED_} on it, whatever
        share it names, is out of order.
        """
        protocol, transport = self.rotated()
        self.rotate_again(protocol, transport)
        self.assertEqual(self.store.get_profile("alice").generation, 2)
        self.device.share = raw_public(CLIENT_PRIVATE)
        self.assert_refused(
            protocol, transport, self.primed_line(), b"SUTO_ERROR_OUT_OF_ORDER\r\n"
        )


class PrimedReconnectionTests(
    PrimedListenerMixin, ReconnectListenerMixin, SynchronousTestCase
):
    """
    The reconnection and offline rules around primed rotations.
    """

    def test_after_reconnection(self):
        """
        After a reconnection a primed rotation is out of order until the
        reconnection's rotation, the two-message form, has committed;
        that commit primes the connection as any first one does.
        """
        self.device.share = raw_public(CLIENT_PRIVATE)
        self.store.mark_offline(["alice"], NOW)
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION_3 + self.reconnect_line())
        self.assert_refused(
            protocol, transport, self.primed_line(), b"SUTO_ERROR_OUT_OF_ORDER\r\n"
        )
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION_3 + self.reconnect_line())
        reply = self.exchange(protocol, transport, self.rotate_line())
        self.exchange(protocol, transport, self.ok_line(reply))
        self.clock.advance(0)
        self.take_next(transport)
        self.assertIsNone(self.store.offline_since("alice"))
        self.rotate_primed(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertEqual(self.store.get_profile("alice").generation, 2)

    def test_offline_profile(self):
        """
        A primed rotation for a profile marked offline meanwhile is
        denied as a rotation is: C{SUTO_AUTH_0}, close.
        """
        protocol, transport = self.primed()
        self.store.mark_offline(["alice"], self.clock.seconds())
        self.assert_refused(protocol, transport, self.primed_line(), b"SUTO_AUTH_0\r\n")
        self.assertEqual(len(self.audit("reconnect_failed")), 1)


class PrimedChallengeTests(PrimedListenerMixin, SynchronousTestCase):
    """
    A verification's challenge on a primed connection.
    """

    def proof_line(self, key):
        proof = keyschedule.verify_proof(key, NONCE, "alice")
        return b"SUTO_C_VERIFY_%s_%s\r\n" % (b64(NONCE), b64(proof))

    def test_proof_crossing(self):
        """
        On a primed connection the challenge goes out at once; the agent's
        proof, under the key it holds, crossing its primed rotation on the
        wire, is heard while the rules work on the rotation, which
        commits.
        """
        protocol, transport = self.primed()
        held = self.device.key
        transport.clear()
        answers = []
        protocol.challenge(NONCE).addCallback(answers.append)
        self.assertEqual(transport.value(), b"SUTO_VERIFY_%s\r\n" % b64(NONCE))
        self.exchange(protocol, transport, self.primed_line() + self.proof_line(held))
        self.assertEqual(answers, [True])
        self.clock.advance(0)
        self.take_next(transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertFalse(transport.disconnecting)

    def test_challenge_after_primed_rotation(self):
        """
        A challenge asked while the rules work on a primed rotation goes
        out once it committed, after C{SUTO_ROTATE_DONE_NEXT_}.
        """
        protocol, transport = self.primed()
        self.exchange(protocol, transport, self.primed_line())
        answers = []
        protocol.challenge(NONCE).addCallback(answers.append)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(0)
        [done, challenge] = self.decode(transport.value())
        self.assertIsInstance(done, wire.RotateDoneNext)
        self.assertEqual(challenge.nonce, NONCE)
        self.device.commit_next(done.sealed)
        self.exchange(protocol, transport, self.proof_line(self.device.key))
        self.assertEqual(answers, [True])

