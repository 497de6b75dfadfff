"""
Key rotation through the server's Protocol over a StringTransport, with a
task.Clock for time, the real rotation rules, an in-memory store, a real
master key and a group committer on the same clock: the exact bytes of a
rotation, the timeouts around it, and what a broken conversation counts.
"""

import itertools
from dataclasses import replace

from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.core.timing import DEFAULT_OFFLINE_STEP
from suto_server.locations import Locations
from suto_server.metrics import ServerMetrics
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.registry import LiveSessions, clients_report
from suto_server.rules.rotation import Rotation
from suto_server.rules.tracking import Tracking
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.records import BlacklistEntry, SpentOfflineStep
from tests.support.alerts import RecordingSink
from tests.support.coroutines import result_of
from tests.support.enrollment import FINGERPRINT
from tests.support.factories import EXCHANGE_TIMEOUT
from tests.support.reconnection import (
    ATTEMPT_NONCE,
    offline_key_of,
    opens_ok,
    sealing_key_of,
)
from tests.support.rotation import (
    FIRST_KEY,
    JUNK,
    NOW,
    OTHER_FINGERPRINT,
    SOURCE,
    Device,
    enroll,
    raw_public,
)
from tests.support.rotation_listener import (
    CLIENT_PRIVATE,
    IDLE_TIMEOUT,
    VERSION,
    ReconnectListenerMixin,
    RotationListenerMixin,
    b64,
    sealed,
    server_private_keys,
)


def _sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


class RotationProtocolTests(RotationListenerMixin, SynchronousTestCase):
    """
    The rotation conversation, from C{SUTO_C_ROTATE_} to its end.
    """

    def test_rotates(self):
        """
        Version, C{SUTO_C_ROTATE_}, then C{SUTO_ROTATE_OK_<server public>_
        <"ok" sealed under K'>}; the acknowledgement; then, once the group
        commit ran and not before, C{SUTO_ROTATE_DONE_<"done" sealed under
        K'>}, with K' the key the key schedule derives; the connection
        stays open.
        """
        server = next(server_private_keys())
        shared = keyschedule.dh_shared_secret(CLIENT_PRIVATE, raw_public(server))
        new_key = keyschedule.next_key(FIRST_KEY, JUNK, FINGERPRINT, shared, "alice", 1)
        s2c = keyschedule.Direction.SERVER_TO_CLIENT
        c2s = keyschedule.Direction.CLIENT_TO_SERVER
        ok = sealed(new_key, b"ok", keyschedule.ROTATE_OK_PURPOSE, s2c, 0)
        ack = sealed(new_key, b"ack", keyschedule.ROTATE_ACK_PURPOSE, c2s, 0)
        done = sealed(new_key, b"done", keyschedule.ROTATE_DONE_PURPOSE, s2c, 1)
        protocol, transport = self.connect()
        rotate = b"SUTO_C_ROTATE_%s_%s_%s_alice\r\n" % (
            keyschedule.key_id(FIRST_KEY).encode("ascii"),
            b64(JUNK),
            b64(raw_public(CLIENT_PRIVATE)),
        )
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + rotate),
            VERSION + b"SUTO_ROTATE_OK_%s_%s\r\n" % (b64(raw_public(server)), b64(ok)),
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"SUTO_C_ROTATE_ACK_%s\r\n" % b64(ack)),
            b"",
        )
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"SUTO_ROTATE_DONE_%s\r\n" % b64(done))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(self.key_id(), keyschedule.key_id(new_key))
        self.assertEqual(
            self.master_key.open_key(
                "alice",
                keyschedule.key_id(new_key),
                self.store.get_profile("alice").key_sealed,
            ),
            new_key,
        )

    def test_byte_at_a_time(self):
        """
        The conversation works when every byte arrives on its own.
        """
        protocol, transport = self.connect()
        for byte in VERSION + self.rotate_line():
            protocol.dataReceived(bytes([byte]))
        ack = self.ok_line(transport.value()[len(VERSION) :])
        transport.clear()
        for byte in ack:
            protocol.dataReceived(bytes([byte]))
        self.clock.advance(0)
        [done] = self.decode(transport.value())
        self.device.commit(done.sealed)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))

    def test_two_rotations(self):
        """
        The same connection carries the next rotation, from the new key,
        with the server's next X25519 key; both sides reach generation 2.
        """
        protocol, transport = self.rotated()
        first = self.device.key
        reply = self.exchange(protocol, transport, self.rotate_line())
        [ok] = self.decode(reply)
        _, second_server = itertools.islice(server_private_keys(), 2)
        self.assertEqual(ok.public, raw_public(second_server))
        self.exchange(protocol, transport, self.ok_line(reply))
        self.clock.advance(0)
        [done] = self.decode(transport.value())
        self.device.commit(done.sealed)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation, profile.previous_key_id),
            (keyschedule.key_id(self.device.key), 2, keyschedule.key_id(first)),
        )
        self.assertFalse(transport.disconnecting)

    def test_idle_timeout(self):
        """
        Between rotations the connection may stay quiet for the idle
        timeout, not the exchange timeout: it is still open one second
        before, and closed with C{SUTO_ERROR_TIMEOUT} at it; that counts
        no failure.
        """
        protocol, transport = self.rotated()
        self.assert_times_out(protocol, transport, IDLE_TIMEOUT)
        self.assertEqual(self.failures(), [])

    def test_rotation_before_idle_timeout(self):
        """
        A rotation that starts one second before the idle timeout goes
        through, and the idle timeout starts again after it.
        """
        protocol, transport = self.rotated()
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        transport.clear()
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_exchange_timeout(self):
        """
        Inside a rotation the device has the exchange timeout to
        acknowledge: one second before it the connection is open, at it
        the server sends C{SUTO_ERROR_TIMEOUT}, closes, keeps the key and
        counts a failure (C{rotation_abandoned}: from the profile's own
        address).
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.assert_times_out(protocol, transport, EXCHANGE_TIMEOUT)
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 1)
        self.assertEqual(
            self.audit("rotation_abandoned"),
            [("alice", SOURCE, "protocol error: TIMEOUT")],
        )

    def test_no_rotation(self):
        """
        C{SUTO_C_ROTATE_} on a listener that does not rotate keys is
        C{SUTO_ERROR_UNKNOWN_MESSAGE}, and the connection closes.
        """
        protocol, transport = self.connect(self.make_factory(None))
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + self.rotate_line()),
            VERSION + b"SUTO_ERROR_UNKNOWN_MESSAGE\r\n",
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))

    def test_lost_after_ok(self):
        """
        A connection that ends after C{SUTO_ROTATE_OK_} (the device could
        not open it, or went away) counts a failure and keeps the key; from
        the profile's own address it is C{rotation_abandoned}.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 1)
        self.assertEqual(
            self.audit("rotation_abandoned"),
            [("alice", SOURCE, "no acknowledgement before the connection ended")],
        )

    def test_lost_while_committing(self):
        """
        A connection that ends after the acknowledgement: the server still
        commits, writes nothing, counts no failure, and the device (which
        never got "done") is rolled back on its next connection.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.exchange(protocol, transport, self.ok_line(reply[len(VERSION) :]))
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.clock.advance(0)
        self.assertEqual(transport.value(), b"")
        self.assertNotEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.failures(), [])
        self.rotated()
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertEqual(len(self.audit("rotation_rolled_back")), 1)

    def test_unknown_key(self):
        """
        A key the profile never held: C{SUTO_ERROR_UNKNOWN_KEY} and close.
        """
        self.device = Device("alice", bytes(32))
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + self.rotate_line()),
            VERSION + b"SUTO_ERROR_UNKNOWN_KEY\r\n",
        )
        self.assertTrue(transport.disconnecting)

    def test_bad_ack(self):
        """
        An acknowledgement that does not open: C{SUTO_ERROR_ROTATION_FAILED},
        close, the key kept and a failure counted once, even when the
        connection then ends.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.assertEqual(
            self.exchange(
                protocol, transport, b"SUTO_C_ROTATE_ACK_%s\r\n" % b64(bytes(19))
            ),
            b"SUTO_ERROR_ROTATION_FAILED\r\n",
        )
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.clock.advance(0)
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 1)

    def test_other_user(self):
        """
        After a rotation for C{alice}, a rotation for another profile on
        the same connection is C{SUTO_ERROR_OUT_OF_ORDER}.
        """
        protocol, transport = self.rotated()
        bob = enroll(self.store, self.master_key, "bob")
        request = bob.request(CLIENT_PRIVATE)
        line = b"SUTO_C_ROTATE_%s_%s_%s_bob\r\n" % (
            request.key_id.encode("ascii"),
            b64(request.junk),
            b64(request.public),
        )
        self.assertEqual(
            self.exchange(protocol, transport, line),
            b"SUTO_ERROR_OUT_OF_ORDER\r\n",
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.store.get_profile("bob").generation, 0)


class ReconnectProtocolTests(ReconnectListenerMixin, SynchronousTestCase):
    """
    C{SUTO_C_TIME}, C{SUTO_C_RECONNECT_} and the blacklist through the
    protocol.
    """

    def test_time(self):
        """
        C{SUTO_C_TIME} is answered with the server's clock in whole seconds
        and its offline step length, and the connection stays open; asking
        again (which would let a peer hold the connection forever) is out
        of order.
        """
        self.clock.advance(0.75)
        protocol, transport = self.connect()
        expected = b"SUTO_TIME_%d_%d\r\n" % (int(NOW), DEFAULT_OFFLINE_STEP)
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + b"SUTO_C_TIME\r\n"),
            VERSION + expected,
        )
        self.assertFalse(transport.disconnecting)
        self.assert_closed_with(
            protocol, transport, b"SUTO_C_TIME\r\n", b"SUTO_ERROR_OUT_OF_ORDER\r\n"
        )

    def test_reconnect_and_rotate(self):
        """
        An offline profile's client asks the time, reconnects with junk
        sealed under its offline key for the step it was told, gets
        C{SUTO_RECONNECT_OK_} that opens under that key, then rotates; the
        commit ends the offline spell and spends the step; no secret is
        logged.
        """
        self.store.mark_offline(["alice"], NOW)
        protocol, transport = self.connect()
        with capturedLogs() as events:
            reply = self.exchange(
                protocol, transport, VERSION + b"SUTO_C_TIME\r\n"
            )
            [_, told] = self.decode(reply)
            step = keyschedule.time_step(told.seconds, told.step)
            [welcome] = self.decode(
                self.exchange(protocol, transport, self.reconnect_line(step=step))
            )
            self.assertIsInstance(welcome, wire.ReconnectOk)
            self.assertTrue(opens_ok(self.device, step, welcome.sealed))
            self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(step, self.key_id(), frozenset({ATTEMPT_NONCE})),
        )
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.audit("reconnected")), 1)
        text = "\n".join(formatEvent(event) + repr(event) for event in events)
        holder = Device("alice", FIRST_KEY)
        for secret in (
            FIRST_KEY,
            offline_key_of(holder, step),
            sealing_key_of(holder, step, ATTEMPT_NONCE),
        ):
            self.assertNotIn(secret.hex(), text)
            self.assertNotIn(b64(secret).decode(), text)

    def reconnect_and_rotate_on(self):
        """
        Reconnect the device on a new connection, rotate, then rotate twice
        more on that connection, each answered C{SUTO_ROTATE_DONE_}.

        @return: the id of the key the reconnection's rotation made.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.reconnect_line())
        self.rotate_again(protocol, transport)
        reconnected = self.key_id()
        for generation in (2, 3):
            self.clock.advance(1)
            self.rotate_again(protocol, transport)
            self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
            self.assertEqual(self.store.get_profile("alice").generation, generation)
        self.assertFalse(transport.disconnecting)
        return reconnected

    def test_rotations_after_reconnection(self):
        """
        The connection that reconnected goes on rotating as any other:
        only the first rotation spends the step and the attempt's nonce,
        so the next ones, from the key it made, commit (were the nonce
        offered to the store again, it would refuse it as a replay), and
        the spent step keeps the key the reconnection made, now confirmed,
        so it does not reopen.
        """
        self.store.mark_offline(["alice"], NOW)
        reconnected = self.reconnect_and_rotate_on()
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(self.step(), reconnected, frozenset({ATTEMPT_NONCE})),
        )
        self.assertEqual(self.failures(), [])

    def test_rotations_after_reconnection_from_previous_key(self):
        """
        A failover that outlasted the offline deadline (PROTOCOL.md §9.6):
        the server committed a rotation whose C{SUTO_ROTATE_DONE_} the
        device never received, and the device comes back offline with the
        previous key.  Its reconnection's rotation rolls the profile back
        to that key, and the rotations after it on the same connection
        commit.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.exchange(protocol, transport, self.ok_line(reply[len(VERSION) :]))
        self.clock.advance(0)
        protocol.connectionLost(Failure(error.ConnectionLost()))
        self.assertEqual(
            self.store.get_profile("alice").previous_key_id,
            keyschedule.key_id(FIRST_KEY),
        )
        self.clock.advance(IDLE_TIMEOUT)
        self.store.mark_offline(["alice"], self.clock.seconds())
        self.reconnect_and_rotate_on()
        self.assertEqual(len(self.audit("rotation_rolled_back")), 1)
        self.assertEqual(self.failures(), [])
        self.assertIsNone(self.store.offline_since("alice"))

    def test_first_form(self):
        """
        An agent from before the attempt nonce reconnects with the first
        form, C{SUTO_C_RECONNECT_}: it is accepted, answered under its
        offline key, and its rotation commits, spending the step without a
        nonce; the audit record names the form.
        """
        self.store.mark_offline(["alice"], NOW)
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + b"SUTO_C_TIME\r\n")
        line = self.reconnect_line(nonce=None)
        self.assertTrue(line.startswith(b"SUTO_C_RECONNECT_" + self.key_id().encode()))
        [welcome] = self.decode(self.exchange(protocol, transport, line))
        self.assertTrue(opens_ok(self.device, self.step(), welcome.sealed, None))
        self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(self.step(), self.key_id()),
        )
        [(_, _, reason)] = self.audit("reconnected")
        self.assertIn("the first form", reason)

    def test_plain_rotation_offline(self):
        """
        A plain C{SUTO_C_ROTATE_} for an offline profile, with a key it
        holds, is answered C{SUTO_AUTH_0} and closed, and raised as
        C{reconnect_failed}; the profile is not blacklisted (the message
        proves no key), stays offline and keeps its key.
        """
        self.store.mark_offline(["alice"], NOW)
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + self.rotate_line()),
            VERSION + b"SUTO_AUTH_0\r\n",
        )
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertIsNotNone(self.store.offline_since("alice"))
        self.assertEqual(len(self.audit("reconnect_failed")), 1)
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))

    def test_failed_reconnect_offline(self):
        """
        Credentials copied to another machine reconnect for an offline
        profile: C{SUTO_AUTH_0}, close, blacklisted.
        """
        self.store.mark_offline(["alice"], NOW)
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + self.reconnect_line(copy)),
            VERSION + b"SUTO_AUTH_0\r\n",
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            self.store.blacklist_entry("alice").alert, "reconnect_failed"
        )

    def test_blacklisted(self):
        """
        A blacklisted profile gets C{SUTO_AUTH_0} at its first message,
        whether a rotation or a valid reconnection, and nothing else; each
        attempt is recorded as C{blacklisted_refused}; nothing changes.
        """
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "test", SOURCE, "reconnect_failed")
        )
        for line in (self.rotate_line(), self.reconnect_line()):
            protocol, transport = self.connect()
            self.assert_closed_with(
                protocol, transport, VERSION + line, VERSION + b"SUTO_AUTH_0\r\n"
            )
        self.assertEqual(len(self.audit("blacklisted_refused")), 2)
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 0)

    def test_unknown_key_or_profile(self):
        """
        A reconnection naming a key id the profile never held, or a user
        with no profile: C{SUTO_ERROR_UNKNOWN_KEY}, close, no blacklist.
        """
        self.store.mark_offline(["alice"], NOW)
        for device in (Device("alice", bytes(32)), Device("carol", FIRST_KEY)):
            protocol, transport = self.connect()
            self.assert_closed_with(
                protocol,
                transport,
                VERSION + self.reconnect_line(device),
                VERSION + b"SUTO_ERROR_UNKNOWN_KEY\r\n",
            )
        self.assertEqual(self.store.list_blacklist(), [])

    def test_reconnect_not_first(self):
        """
        A reconnection after a rotation on the same connection is
        C{SUTO_ERROR_OUT_OF_ORDER}, and changes nothing.
        """
        protocol, transport = self.rotated()
        self.assert_closed_with(
            protocol,
            transport,
            self.reconnect_line(),
            b"SUTO_ERROR_OUT_OF_ORDER\r\n",
        )

    def test_out_of_order_after_reconnect(self):
        """
        After C{SUTO_RECONNECT_OK_} only a rotation may follow: the time
        request, an acknowledgement or a second reconnection is
        C{SUTO_ERROR_OUT_OF_ORDER} and close, and the profile stays
        offline with no step spent.
        """
        self.store.mark_offline(["alice"], NOW)
        for line in (
            b"SUTO_C_TIME\r\n",
            b"SUTO_C_ROTATE_ACK_%s\r\n" % b64(bytes(19)),
            self.reconnect_line(),
        ):
            protocol, transport = self.connect()
            self.exchange(protocol, transport, VERSION + self.reconnect_line())
            self.assert_closed_with(
                protocol, transport, line, b"SUTO_ERROR_OUT_OF_ORDER\r\n"
            )
        self.assertIsNotNone(self.store.offline_since("alice"))

    def test_malformed(self):
        """
        A reconnection with a short seal or proof, a bad key id or a bad
        user is a protocol error (C{SUTO_ERROR_BAD_FIELD}) and close; nothing is
        recorded or changed.
        """
        self.store.mark_offline(["alice"], NOW)
        key_id = keyschedule.key_id(FIRST_KEY).encode("ascii")
        proof = b64(bytes(16))
        for line in (
            b"SUTO_C_RECONNECT_%s_%s_%s_alice\r\n" % (key_id, proof, b64(bytes(47))),
            b"SUTO_C_RECONNECT_%s_%s_%s_alice\r\n" % (b"zz" * 16, proof, b64(bytes(48))),
            b"SUTO_C_RECONNECT_%s_%s_%s_-rf\r\n" % (key_id, proof, b64(bytes(48))),
            b"SUTO_C_RECONNECT_%s_%s_%s_alice\r\n" % (key_id, b64(bytes(15)), b64(bytes(48))),
        ):
            protocol, transport = self.connect()
            self.exchange(protocol, transport, VERSION)
            self.assert_closed_with(
                protocol, transport, line, b"SUTO_ERROR_BAD_FIELD\r\n"
            )
        self.assertEqual(list(self.store.audit_events()), [])

    def test_without_reconnection(self):
        """
        A listener without the reconnection rules refuses a reconnection
        with C{SUTO_ERROR_UNKNOWN_KEY}, and the time request as a message
        it does not know.
        """
        factory = RotationListenerMixin.make_factory(self, self.rotation)
        protocol, transport = self.connect(factory)
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + self.reconnect_line()),
            VERSION + b"SUTO_ERROR_UNKNOWN_KEY\r\n",
        )
        protocol, transport = self.connect(factory)
        reply = self.exchange(protocol, transport, VERSION + b"SUTO_C_TIME\r\n")
        self.assertEqual(reply, VERSION + b"SUTO_ERROR_UNKNOWN_MESSAGE\r\n")
        self.assertTrue(transport.disconnecting)


class RecordingTracking:
    """
    Port tracking that records each admission and answers it with a
    L{Deferred} the test fires.
    """

    def __init__(self):
        self.admissions = []
        self.detached = []
        self.proofs = []

    def admit(self, profile, key, source, connection, now, previous=None, *, proven):
        d = Deferred()
        self.admissions.append((profile.username, key, previous, source, proven, d))
        return d

    def claimed(self, connection):
        # Every connection is asked to note its commits.
        return True

    async def proven(self, connection, now):
        self.proofs.append(connection)

    def held_elsewhere(self, user, connection):
        return False

    def forget(self, connection):
        pass

    def detach(self, user, connection, keep_move=False):
        self.detached.append(user)


class ReconnectTrackingTests(ReconnectListenerMixin, SynchronousTestCase):
    """
    A reconnection passes the location check after the rules, and before
    C{SUTO_RECONNECT_OK_}; the rotation that follows is not checked again.
    """

    def setUp(self):
        super().setUp()
        self.tracking = RecordingTracking()
        self.factory.rotation = replace(self.factory.rotation, tracking=self.tracking)
        self.store.mark_offline(["alice"], NOW)

    def test_admitted(self):
        """
        The rules accept, then tracking is asked with the profile's keys;
        C{SUTO_RECONNECT_OK_} goes out once it admits (the reconnection
        proved the fingerprint already), and the following rotation asks
        tracking nothing more than to note its commit.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.reconnect_line())
        self.assertEqual(reply, VERSION)
        [(user, key, previous, source, proven, d)] = self.tracking.admissions
        self.assertEqual(
            (user, key, previous, source, proven),
            ("alice", FIRST_KEY, None, SOURCE, True),
        )
        self.assertEqual(len(self.audit("reconnected")), 1)
        transport.clear()
        d.callback(True)
        [welcome] = self.decode(transport.value())
        self.assertIsInstance(welcome, wire.ReconnectOk)
        self.rotate_again(protocol, transport)
        self.assertEqual(len(self.tracking.admissions), 1)
        self.assertEqual(self.tracking.proofs, [protocol])
        self.assertIsNone(self.store.offline_since("alice"))

    def test_not_admitted(self):
        """
        Tracking refuses (the legitimate client answered the check at its
        old port): C{SUTO_ERROR_UNKNOWN_KEY}, close, no step spent.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.reconnect_line())
        [(_, _, _, _, _, d)] = self.tracking.admissions
        transport.clear()
        d.callback(False)
        self.assertEqual(transport.value(), b"SUTO_ERROR_UNKNOWN_KEY\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.store.spent_offline_step("alice"))

    def test_admitted_after_hanging_up(self):
        """
        A reconnection admitted (made live) after its peer hung up is
        detached at once, and nothing is sent.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.reconnect_line())
        [(_, _, _, _, _, d)] = self.tracking.admissions
        protocol.connectionLost(Failure(error.ConnectionDone()))
        transport.clear()
        d.callback(True)
        self.assertEqual((transport.value(), self.tracking.detached), (b"", ["alice"]))

    def test_refused_before_tracking(self):
        """
        A reconnection the rules refuse never reaches tracking: no check
        packet goes to the legitimate client for a failed attempt.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.reconnect_line(copy))
        self.assertEqual(self.tracking.admissions, [])


class NoChecks:
    """
    A check service for a profile that only ever shows up at its own
    address, where no check packet is sent.
    """

    def check(self, user, address, key, previous=None):
        raise AssertionError("no check packet goes to the profile's own address")


class KeyIdOnlyTests(RotationListenerMixin, SynchronousTestCase):
    """
    A peer that only knows the profile's public key id, at the profile's
    own address (behind the client's NAT, on its host), over the real
    rotation rules, port tracking, audit log, metrics and connection gate:
    it cannot replace the live session, raise C{fingerprint_mismatch} or
    have the address penalised; a client that proves the key still can.
    """

    def setUp(self):
        super().setUp()
        self.gate = ConnectionGate(self.clock)
        self.metrics = ServerMetrics()
        self.sink = RecordingSink()
        audit = AuditLog(
            self.store,
            [self.sink],
            observers=[self.gate.audited, self.metrics.audited],
        )
        self.live = LiveSessions()
        calls = LocalCalls(self.store)
        self.rotation = Rotation(
            calls,
            self.master_key,
            GroupCommitter(self.clock, self.store.commit_rotations),
            audit,
            new_private_key=lambda: next(self.server_keys),
        )
        self.factory.gate = self.gate
        self.factory.rotation = replace(
            self.factory.rotation,
            rotation=self.rotation,
            tracking=Tracking(calls, audit, self.live, NoChecks(), Locations()),
        )

    def connect(self, factory=None):
        """
        Connect from L{SOURCE}, through the connection gate.
        """
        address = IPv4Address("TCP", SOURCE, 40000)
        protocol = self.factory.buildProtocol(address)
        self.assertIsNotNone(protocol, "the gate refused the connection")
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def named_key_id(self):
        """
        A connection that names the profile's current key id (a public
        name) and is answered C{SUTO_ROTATE_OK_}, which it cannot open.
        """
        protocol, transport = self.connect()
        line = b"SUTO_C_ROTATE_%s_%s_%s_alice\r\n" % (
            self.key_id().encode("ascii"),
            b64(JUNK),
            b64(raw_public(CLIENT_PRIVATE)),
        )
        reply = self.exchange(protocol, transport, VERSION + line)
        [ok] = self.decode(reply[len(VERSION) :])
        self.assertIsInstance(ok, wire.RotateOk)
        return protocol, transport

    def state(self):
        """
        The profile's state as C{suto-admin clients} shows it.
        """
        [row] = result_of(
            self,
            clients_report(
                LocalCalls(self.store), self.live, Locations(), self.clock.seconds()
            ),
        )
        return row["state"]

    def failed_rotations(self):
        return _sample(self.metrics, "suto_rotations_total", result="failed")

    def assert_address_not_penalised(self):
        """
        The profile's address is not refused: another connection from it
        (the user's login, say) is admitted.
        """
        self.assertEqual(self.gate.penalised(), 0)
        self.assertIsNone(self.gate.limits.refused_until(SOURCE, self.clock.seconds()))

    def test_named_key_id_then_hung_up(self):
        """
        Three connections from the profile's own address that name its
        current key id and hang up after C{SUTO_ROTATE_OK_}, while the
        client's connection is live: the live session is still the
        client's (C{connected}), each is recorded as C{rotation_abandoned}
        but none counted, no C{fingerprint_mismatch}, the address is not
        penalised, and the client's next rotation goes through on its
        connection.
        """
        protocol, transport = self.rotated()
        self.assertIs(self.live.get("alice").connection, protocol)
        for _ in range(3):
            peer, _ = self.named_key_id()
            self.assertIs(self.live.get("alice").connection, protocol)
            peer.connectionLost(Failure(error.ConnectionDone()))
        self.assertIs(self.live.get("alice").connection, protocol)
        self.assertEqual(self.state(), "connected")
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 0)
        abandoned = self.audit("rotation_abandoned")
        self.assertEqual(len(abandoned), 3)
        for _, source, reason in abandoned:
            self.assertEqual(source, SOURCE)
            self.assertIn("not counted toward fingerprint_mismatch", reason)
        self.assertEqual(self.audit("rotation_failed"), [])
        self.assertEqual(self.audit("fingerprint_mismatch"), [])
        self.assertEqual(self.sink.alerts, [])
        self.assertEqual(self.failed_rotations(), 3)
        self.assert_address_not_penalised()
        self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertIs(self.live.get("alice").connection, protocol)
        # The gate admits the next connection from the address.
        self.connect()

    def test_named_key_id_then_noise(self):
        """
        The same with noise for the acknowledgement instead of hanging up:
        C{SUTO_ERROR_ROTATION_FAILED} each time, and still nothing counted
        or penalised, and the live session untouched.
        """
        protocol, transport = self.rotated()
        for _ in range(3):
            peer, peer_transport = self.named_key_id()
            self.assertEqual(
                self.exchange(
                    peer, peer_transport, b"SUTO_C_ROTATE_ACK_%s\r\n" % b64(bytes(19))
                ),
                b"SUTO_ERROR_ROTATION_FAILED\r\n",
            )
            peer.connectionLost(Failure(error.ConnectionDone()))
        self.assertIs(self.live.get("alice").connection, protocol)
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 0)
        self.assertEqual(len(self.audit("rotation_abandoned")), 3)
        self.assertEqual(self.audit("fingerprint_mismatch"), [])
        self.assert_address_not_penalised()
        self.rotate_again(protocol, transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))

    def test_changed_fingerprint(self):
        """
        The client itself, once its machine's fingerprint changed, fails
        on its live connection (counted: that connection had proven the
        key), hangs up, and fails twice more on new connections while none
        is live: C{fingerprint_mismatch} at the third failure, as
        C{--fingerprint-alert} says, naming the address; its own address
        is still not penalised.
        """
        protocol, transport = self.rotated()
        self.device.fingerprint = OTHER_FINGERPRINT
        reply = self.exchange(protocol, transport, self.rotate_line())
        with self.assertRaises(keyschedule.SealError):
            self.ok_line(reply)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 1)
        self.assertEqual(self.state(), "disconnected")
        for _ in range(2):
            protocol, transport = self.connect()
            reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
            with self.assertRaises(keyschedule.SealError):
                self.ok_line(reply[len(VERSION) :])
            protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 3)
        [(user, source, reason)] = self.audit("fingerprint_mismatch")
        self.assertEqual((user, source), ("alice", SOURCE))
        self.assertIn("3 rotations in a row failed", reason)
        self.assertEqual(
            [alert.type for alert in self.sink.alerts], ["fingerprint_mismatch"]
        )
        self.assert_address_not_penalised()

    def test_proven_newcomer_takes_over(self):
        """
        A client that connects again from its address before the server
        noticed its old connection died becomes the live session once its
        rotation commits, as before; the old connection's end then leaves
        it live.
        """
        old, _ = self.rotated()
        new, _ = self.rotated()
        self.assertIs(self.live.get("alice").connection, new)
        old.connectionLost(Failure(error.ConnectionDone()))
        self.assertIs(self.live.get("alice").connection, new)
        self.assertEqual(self.state(), "connected")
        self.assertEqual(self.audit("fingerprint_mismatch"), [])


class IdleConnectionFootprintTests(RotationListenerMixin, SynchronousTestCase):
    """
    What an idle rotation connection keeps, since a fleet keeps thousands
    of them open for hours.
    """

    def test_opening_dropped(self):
        """
        Once its rotation phase has started the connection no longer holds
        the opening machine, and it still serves rotation after rotation.
        """
        protocol, transport = self.rotated()
        self.assertIsNone(protocol._opening)
        self.rotate_again(protocol, transport)
        self.assertFalse(transport.disconnecting)

    def test_driver_has_no_instance_dict(self):
        """
        The rotation driver keeps its state in slots, with no per-instance
        dictionary.
        """
        protocol, _ = self.rotated()
        self.assertFalse(hasattr(protocol._phase, "__dict__"))

    def test_timeout_on_factory_clock(self):
        """
        The idle timeout after a rotation is scheduled on the factory's
        clock and ends the connection when it falls due.
        """
        _, transport = self.rotated()
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
