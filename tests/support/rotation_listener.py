"""
A framed listener that rotates keys, driven over a L{StringTransport}.

L{RotationListenerMixin} builds the server's factory around the real
rotation rules on a L{task.Clock}, with a device enrolled and every X25519
key fixed so each line on the wire is known; the connection's rotation
phase and the tracking rules both talk to it.  L{ReconnectListenerMixin}
adds the reconnection rules over the same store.
"""

import base64
import itertools
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import error, task
from twisted.python.failure import Failure

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.core.timing import DEFAULT_OFFLINE_STEP
from suto_server.phases.rotation import RotationRules
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rendezvous import Rendezvous
from suto_server.rules.rotation import Rotation
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.memory import MemoryStore
from tests.support.factories import connected, framed_factory
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool
from tests.support.reconnection import ATTEMPT_NONCE, reconnect_message
from tests.support.rotation import NOW, SOURCE, enroll

IDLE_TIMEOUT = 96
VERSION = b"SUTO_VERSION_2\r\n"
# The version whose commits prime the next rotation.
VERSION_3 = b"SUTO_VERSION_3\r\n"
# The client's X25519 private key: fixed, so every line is known.
CLIENT_PRIVATE = X25519PrivateKey.from_private_bytes(bytes(range(100, 132)))


def b64(data):
    return base64.b64encode(data)


def sealed(key, plaintext, purpose, direction, counter):
    """
    C{plaintext} sealed for C{alice} under C{key}, as the side of
    C{direction} seals its message C{counter} under a rotation's key.
    """
    return keyschedule.seal(
        key,
        plaintext,
        profile="alice",
        purpose=purpose,
        direction=direction,
        counter=counter,
    )


def server_private_keys():
    """
    The server's X25519 private keys, one per rotation: fixed, so every
    line is known.
    """
    for number in itertools.count(1):
        yield X25519PrivateKey.from_private_bytes(bytes([number]) * 32)


class RotationListenerMixin:
    """
    A framed listener that rotates keys, with C{alice} enrolled from
    L{SOURCE} holding L{FIRST_KEY}, and the server's X25519 keys drawn
    from L{server_private_keys}; the rules make the store's calls
    C{self.calls} at once.
    """

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.master_key = new_master_key(self)
        self.device = enroll(self.store, self.master_key, "alice")
        self.server_keys = server_private_keys()
        self.calls = LocalCalls(self.store)
        self.rotation = Rotation(
            self.calls,
            self.master_key,
            GroupCommitter(self.clock, self.store.commit_rotations),
            AuditLog(self.store),
            new_private_key=lambda: next(self.server_keys),
        )
        self.factory = self.make_factory(self.rotation)

    def make_factory(self, rotation):
        """
        A framed factory; C{rotation} is L{None} for one that does not
        rotate keys.
        """
        return framed_factory(
            self.clock,
            ImmediatePool(),
            Rendezvous(self.clock, timeout=5),
            rotation=(
                RotationRules(rotation, idle_timeout=IDLE_TIMEOUT)
                if rotation is not None
                else None
            ),
        )

    def connect(self, factory=None):
        return connected(factory or self.factory, SOURCE)

    def exchange(self, protocol, transport, data):
        """
        Send C{data} to the server and return what it wrote back.
        """
        transport.clear()
        protocol.dataReceived(data)
        return transport.value()

    def rotate_line(self, private=CLIENT_PRIVATE):
        """
        The device's C{SUTO_C_ROTATE_} line, from the key it holds.
        """
        request = self.device.request(private)
        return b"SUTO_C_ROTATE_%s_%s_%s_alice\r\n" % (
            request.key_id.encode("ascii"),
            b64(request.junk),
            b64(request.public),
        )

    def ok_line(self, data):
        """
        Read a C{SUTO_ROTATE_OK_} line as the device does, and return its
        acknowledgement line.
        """
        [message] = self.decode(data)
        return b"SUTO_C_ROTATE_ACK_%s\r\n" % b64(
            self.device.acknowledge(message.public, message.sealed)
        )

    def decode(self, data):
        decoder = wire.Decoder(wire.Framing.FRAMED)
        decoder.receive_data(data)
        messages = []
        while (message := decoder.next_event()) is not wire.NEED_DATA:
            messages.append(message)
        return messages

    def rotated(self):
        """
        Connect and complete one rotation.

        @return: the protocol and its transport.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.assertTrue(reply.startswith(VERSION))
        ack = self.ok_line(reply[len(VERSION) :])
        self.exchange(protocol, transport, ack)
        self.clock.advance(0)
        [done] = self.decode(transport.value())
        self.device.commit(done.sealed)
        return protocol, transport

    def rotate_again(self, protocol, transport):
        """
        Complete one rotation on the open connection C{protocol}: the
        server answers C{SUTO_ROTATE_DONE_}, and the device commits.
        """
        reply = self.exchange(protocol, transport, self.rotate_line())
        self.exchange(protocol, transport, self.ok_line(reply))
        self.clock.advance(0)
        [done] = self.decode(transport.value())
        self.assertIsInstance(done, wire.RotateDone)
        self.device.commit(done.sealed)

    def primed_line(self, device=None):
        """
        The C{SUTO_C_ROTATE_PRIMED_} line of C{device} (by default the
        enrolled one), its ack sealed under the key it derives with the
        share it holds.
        """
        device = device or self.device
        return wire.encode(
            device.primed_request(CLIENT_PRIVATE), wire.Framing.FRAMED
        )

    def take_next(self, transport):
        """
        Read the C{SUTO_ROTATE_DONE_NEXT_} the server wrote, and commit on
        it as the device does.
        """
        [done] = self.decode(transport.value())
        self.assertIsInstance(done, wire.RotateDoneNext)
        self.device.commit_next(done.sealed)

    def assert_times_out(self, protocol, transport, seconds):
        """
        The quiet connection stays open for C{seconds} less one, and is
        closed with C{SUTO_ERROR_TIMEOUT} at C{seconds}; then its
        transport reports the loss.
        """
        transport.clear()
        self.clock.advance(seconds - 1)
        self.assertEqual((transport.value(), transport.disconnecting), (b"", False))
        self.clock.advance(1)
        self.assertEqual(
            (transport.value(), transport.disconnecting),
            (b"SUTO_ERROR_TIMEOUT\r\n", True),
        )
        protocol.connectionLost(Failure(error.ConnectionDone()))

    def audit(self, event):
        return [
            (e.username, e.source, e.reason)
            for e in self.store.audit_events()
            if e.event == event
        ]

    def failures(self):
        """
        The failed rotations recorded, from the profile's own address and
        from elsewhere, as (event, user, source, reason).
        """
        return [
            (e.event, e.username, e.source, e.reason)
            for e in self.store.audit_events()
            if e.event in ("rotation_failed", "rotation_abandoned")
        ]

    def key_id(self):
        return self.store.get_profile("alice").key_id


class ReconnectListenerMixin(RotationListenerMixin):
    """
    L{RotationListenerMixin}'s listener with the reconnection and
    blacklist rules over the same store (default step and window), and
    no port tracking.
    """

    def make_factory(self, rotation):
        factory = super().make_factory(rotation)
        self.reconnection = Reconnection(
            LocalCalls(self.store), rotation, AuditLog(self.store)
        )
        factory.rotation = replace(factory.rotation, reconnection=self.reconnection)
        return factory

    def step(self):
        return keyschedule.time_step(self.clock.seconds(), DEFAULT_OFFLINE_STEP)

    def reconnect_line(self, device=None, step=None, nonce=ATTEMPT_NONCE):
        """
        The C{SUTO_C_RECONNECT_N_} line of C{device} (by default the
        enrolled one) for C{step} (by default the server's), or with
        C{nonce=None} its C{SUTO_C_RECONNECT_} line of the first form.
        """
        message = reconnect_message(
            device or self.device, self.step() if step is None else step, nonce=nonce
        )
        return wire.encode(message, wire.Framing.FRAMED)

    def state(self, user="alice"):
        """
        What the store holds for C{user}: profile, offline spell, spent
        step, blacklist entry.
        """
        return (
            self.store.get_profile(user),
            self.store.offline_since(user),
            self.store.spent_offline_step(user),
            self.store.blacklist_entry(user),
        )

    def assert_closed_with(self, protocol, transport, data, expected):
        """
        Sending C{data} is answered with exactly C{expected}, the
        connection closes and the stored state does not change.
        """
        before = self.state()
        self.assertEqual(self.exchange(protocol, transport, data), expected)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.clock.advance(0)
        self.assertEqual(self.state(), before)
