"""
Tests for the agent's side of reconnection (docs/PROTOCOL.md §10): the
offline path of L{ClientRotation} as exact messages and actions, the same
over a L{StringTransport} and a L{Clock} that disagrees with the server's,
L{RotationFactory} marking a silent profile offline and holding off after
a refusal, and the agent keeping that mark in its state file.

The server is L{OfflineServer}: the in-memory server of
L{tests.support.client_rotation} taught to answer C{SUTO_C_TIME} and
C{SUTO_C_RECONNECT_} as the server's rules do.
"""

import base64
import os
import random
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import error as internet_error
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client.fingerprint import FingerprintError
from suto_client.rotation import RETRY_CAP, CommitError, RotationProtocol
from suto_client.rotation_machine import ClientRotation
from suto_client.rotation_outcome import Commit, Report, RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send
from suto_server.core.timing import JITTER
from tests.support.client_rotation import (
    C2S,
    FINGERPRINT,
    INTERVAL,
    K0,
    OTHER_FINGERPRINT,
    PROFILE,
    S2C,
    TIMEOUT,
    USER,
    ConversationFixture,
    Draws,
    FakeEndpoint,
    FakeServer,
    Fingerprints,
    FixedRandom,
    make_factory,
    pump,
    raw_public,
    refused_connection,
    run_connection,
    secret_forms,
    start_agent,
)
from tests.support.udp import MemoryUDPReactor

#: The server's clock: hours ahead of every client clock in these tests.
SERVER_NOW = 1_700_040_000
STEP = 30
#: When PROFILE's first junk was due and not delivered.
DUE = PROFILE.enrolled_at + INTERVAL * (1 + JITTER)
OFFLINE = replace(PROFILE, offline_since=DUE)
#: The attempt nonce of a reconnection: the agent's second draw (after
#: the junk).
NONCE = bytes([2]) * keyschedule.ATTEMPT_NONCE_SIZE

_REFUSED = (
    "the server refused the profile (SUTO_AUTH_0): it may be blacklisted, "
    "which IT must lift before the machine enrolls again"
)


class OfflineServer(FakeServer):
    """
    L{FakeServer} that also knows the profile is offline, as the server
    does once it missed the profile's junk: it answers C{SUTO_C_TIME} with
    its own clock and step length, opens C{SUTO_C_RECONNECT_N_} under
    the attempt key of C{offline_key(key, enrolled fingerprint, step of its
    clock)} and the message's nonce, and then
    answers C{SUTO_RECONNECT_OK_} sealed under that key, or C{SUTO_AUTH_0}
    when it does not open; a plain rotation of the offline profile that
    did not reconnect first is refused with C{SUTO_AUTH_0}.  The rotation
    that follows a reconnection ends the spell.
    """

    def __init__(self, seconds=SERVER_NOW, step=STEP, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds
        self.step = step
        self.offline = True
        self.reconnected = False

    def reply(self, message) -> list:
        if isinstance(message, wire.GetTime):
            return [wire.ServerTime(self.seconds, self.step)]
        if isinstance(message, wire.Reconnect):
            return [self.reconnect(message)]
        if (
            isinstance(message, wire.Rotate)
            and self.offline
            and not self.reconnected
        ):
            return [wire.Auth(False)]
        replies = super().reply(message)
        if isinstance(replies[0], (wire.RotateDone, wire.RotateDoneNext)):
            self.offline = self.reconnected = False
        return replies

    def attempt_key(self, nonce) -> bytes:
        step = keyschedule.time_step(self.seconds, self.step)
        return keyschedule.attempt_key(
            keyschedule.offline_key(self.key, self.fingerprint, step, USER),
            nonce,
            USER,
        )

    def reconnect(self, message: wire.Reconnect):
        key = self.attempt_key(message.nonce)
        try:
            keyschedule.open_sealed(
                key,
                message.sealed,
                profile=USER,
                purpose="reconnect",
                direction=C2S,
                counter=0,
            )
        except keyschedule.SealError:
            return wire.Auth(False)
        self.reconnected = True
        return wire.ReconnectOk(
            keyschedule.seal(
                key,
                b"ok",
                profile=USER,
                purpose="reconnect-ok",
                direction=S2C,
                counter=0,
            )
        )


def committed_profile(server: FakeServer, rotated_at=None):
    """
    The profile an offline client commits once C{server} holds a new key:
    a plain rotation's, which no longer says offline.
    """
    return replace(
        OFFLINE,
        key=server.key,
        key_id=keyschedule.key_id(server.key),
        generation=server.generation,
        rotated_at=rotated_at,
        offline_since=None,
    )


class ClientReconnectionTests(ConversationFixture, SynchronousTestCase):
    """
    L{ClientRotation} for a profile that marked itself offline.
    """

    profile = OFFLINE
    make_server = OfflineServer

    def reconnect_sent(self) -> Send:
        """
        Run the conversation up to the RECONNECT the client sends, without
        delivering it.
        """
        self.rotation.start()
        self.rotation.receive(wire.Version(2))
        [send] = self.rotation.receive(wire.ServerTime(SERVER_NOW, STEP))
        return send

    def test_messages(self):
        """
        An offline profile's connection is exactly: VERSION both ways,
        C{SUTO_C_TIME}, the server's time, RECONNECT naming the last key
        id and the user with a fresh attempt nonce and fresh junk sealed
        under the attempt's key, from the offline key of the server's time
        step and that nonce (purpose reconnect, client to server, counter
        0), the server's RECONNECT_OK, and then a plain rotation: ROTATE
        with the same key id, new junk and a new public key.
        """
        self.assertEqual(self.rotation.start(), [Send(wire.Version(3))])
        self.assertEqual(
            self.rotation.receive(wire.Version(2)), [Send(wire.GetTime())]
        )
        attempt_key = keyschedule.attempt_key(
            keyschedule.offline_key(K0, FINGERPRINT, SERVER_NOW // STEP, USER),
            NONCE,
            USER,
        )
        sealed = keyschedule.seal(
            attempt_key,
            bytes([1]) * 32,
            profile=USER,
            purpose="reconnect",
            direction=C2S,
            counter=0,
        )
        expected = wire.Reconnect(
            PROFILE.key_id,
            keyschedule.reconnect_proof(K0, USER, sealed, NONCE),
            sealed,
            USER,
            NONCE,
        )
        [send] = self.rotation.receive(wire.ServerTime(SERVER_NOW, STEP))
        self.assertEqual(send, Send(expected))
        [welcome] = self.server.receive(send.message)
        self.assertIsInstance(welcome, wire.ReconnectOk)
        private = X25519PrivateKey.from_private_bytes(bytes([4]) * 32)
        self.assertEqual(
            self.rotation.receive(welcome),
            [
                Send(
                    wire.Rotate(
                        PROFILE.key_id, bytes([3]) * 32, raw_public(private), USER
                    )
                )
            ],
        )
        self.assertEqual(self.draws.sizes, [32, 16, 32, 32])

    def test_commit_clears_offline(self):
        """
        The rotation after a reconnection commits the key the server
        derived, at the next generation, and the committed profile is
        online again; until the commit is stored the machine's profile is
        still the offline one, and the report comes only after it.
        """
        [commit] = self.converse(self.rotation.start())
        self.assertEqual(commit, Commit(committed_profile(self.server)))
        self.assertIsNone(commit.profile.offline_since)
        self.assertEqual(commit.profile.generation, 1)
        self.assertEqual(self.rotation.profile, OFFLINE)
        self.assertEqual(
            self.rotation.committed(),
            [Report(RotationOutcome.ROTATED, commit.profile.key_id, 1)],
        )
        self.assertEqual(self.rotation.profile, commit.profile)
        self.assertFalse(self.server.offline)

    def test_next_rotation_is_plain(self):
        """
        Once the rotation after the reconnection is stored, the next one
        on the connection is a rotation alone: no time request, no second
        reconnection; on version 3, from the share that rotation's "done"
        carried.
        """
        self.converse(self.rotation.start())
        self.rotation.committed()
        del self.server.received[:]
        [send] = self.rotation.rotate()
        self.assertIsInstance(send.message, wire.RotatePrimed)
        self.converse([send])
        self.assertEqual(
            [type(message) for message in self.server.received],
            [wire.RotatePrimed],
        )

    def test_server_time_and_step(self):
        """
        The offline key is derived for the step the server's time falls
        in by the server's step length, whatever they are: a server with
        60-second steps and another time gets the key of its own step.
        The step is the floor of time over length, as TOTP counts, even
        late in a step; the reconnection seals the agent's fresh junk
        under that key and proves the last key over it.
        """
        for seconds, step, number in (
            (SERVER_NOW + 3 * 3600 + 45, 60, 28_334_180),
            (62, 7, 8),
        ):
            rotation = ClientRotation(OFFLINE, Fingerprints(), Draws())
            rotation.start()
            rotation.receive(wire.Version(2))
            [send] = rotation.receive(wire.ServerTime(seconds, step))
            message = send.message
            junk = keyschedule.open_sealed(
                keyschedule.attempt_key(
                    keyschedule.offline_key(K0, FINGERPRINT, number, USER),
                    NONCE,
                    USER,
                ),
                message.sealed,
                profile=USER,
                purpose="reconnect",
                direction=C2S,
                counter=0,
            )
            self.assertEqual(
                (junk, message),
                (
                    bytes([1]) * keyschedule.JUNK_SIZE,
                    wire.Reconnect(
                        keyschedule.key_id(K0),
                        keyschedule.reconnect_proof(K0, USER, message.sealed, NONCE),
                        message.sealed,
                        USER,
                        NONCE,
                    ),
                ),
            )

    def test_welcome_does_not_open(self):
        """
        A RECONNECT_OK that does not open under the attempt's key (sealed
        under another step's, under the offline key itself, under another
        attempt's, or the wrong words) ends the conversation as an
        error and closes: no ROTATE is sent and nothing is committed, so
        the profile stays offline.
        """
        other_step = keyschedule.attempt_key(
            keyschedule.offline_key(K0, FINGERPRINT, SERVER_NOW // STEP + 1, USER),
            NONCE,
            USER,
        )
        offline_key = keyschedule.offline_key(
            K0, FINGERPRINT, SERVER_NOW // STEP, USER
        )
        right = self.server.attempt_key(NONCE)
        for key, words in (
            (other_step, b"ok"),
            (offline_key, b"ok"),
            (self.server.attempt_key(bytes(16)), b"ok"),
            (right, b"no"),
        ):
            self.rotation = ClientRotation(OFFLINE, self.fingerprint, Draws())
            self.reconnect_sent()
            sealed = keyschedule.seal(
                key,
                words,
                profile=USER,
                purpose="reconnect-ok",
                direction=S2C,
                counter=0,
            )
            self.assertEqual(
                self.rotation.receive(wire.ReconnectOk(sealed)),
                [
                    Report(
                        RotationOutcome.ERROR,
                        PROFILE.key_id,
                        0,
                        "the server's reconnection answer did not open",
                    ),
                    Close(),
                ],
            )
            self.assertEqual(self.rotation.profile, OFFLINE)

    def test_refused(self):
        """
        SUTO_AUTH_0 in answer to the reconnection, or to the rotation
        that follows it, ends the conversation as REFUSED, with a reason
        that points at the blacklist, and closes.
        """
        self.reconnect_sent()
        self.assertEqual(
            self.rotation.receive(wire.Auth(False)),
            [Report(RotationOutcome.REFUSED, PROFILE.key_id, 0, _REFUSED), Close()],
        )
        self.rotation = ClientRotation(OFFLINE, self.fingerprint, Draws())
        [welcome] = self.server.receive(self.reconnect_sent().message)
        self.rotation.receive(welcome)
        self.assertEqual(
            self.rotation.receive(wire.Auth(False)),
            [Report(RotationOutcome.REFUSED, PROFILE.key_id, 0, _REFUSED), Close()],
        )

    def test_refused_online(self):
        """
        An online profile's plain rotation answered with SUTO_AUTH_0 (its
        server marked it offline or blacklisted it) is REFUSED too.
        """
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        rotation.receive(wire.Version(2))
        [report, close] = rotation.receive(wire.Auth(False))
        self.assertEqual((report.outcome, close), (RotationOutcome.REFUSED, Close()))

    def test_other_machine_refused(self):
        """
        A copy of the offline state on a machine with another fingerprint
        seals its reconnection under another offline key: the server
        cannot open it and refuses, and the copy commits nothing.
        """
        self.fingerprint.value = OTHER_FINGERPRINT
        actions = self.converse(self.rotation.start())
        self.assertEqual(
            actions,
            [Report(RotationOutcome.REFUSED, PROFILE.key_id, 0, _REFUSED), Close()],
        )
        self.assertEqual((self.server.key, self.server.reconnected), (K0, False))

    def test_out_of_order(self):
        """
        The reconnection's messages at the wrong time end the conversation
        as an error and close: SUTO_TIME_ before the version, to an online
        profile, or twice; RECONNECT_OK before the reconnection was sent,
        to an online profile, or after the reconnection was welcomed;
        ROTATE_OK before RECONNECT_OK; and AUTH_0 or AUTH_1 while the
        client waits for the time.
        """
        time = wire.ServerTime(SERVER_NOW, STEP)
        [welcome] = self.server.receive(self.reconnect_sent().message)
        ok = wire.RotateOk(bytes(32), bytes(16))
        for profile, prefix, message in (
            (OFFLINE, [], time),
            (PROFILE, [wire.Version(2)], time),
            (OFFLINE, [wire.Version(2), time], time),
            (OFFLINE, [wire.Version(2)], welcome),
            (PROFILE, [wire.Version(2)], welcome),
            (OFFLINE, [wire.Version(2), time, welcome], welcome),
            (OFFLINE, [wire.Version(2), time], ok),
            (OFFLINE, [wire.Version(2)], wire.Auth(False)),
            (OFFLINE, [wire.Version(2)], wire.Auth(True)),
        ):
            rotation = ClientRotation(profile, Fingerprints(), Draws())
            rotation.start()
            for earlier in prefix:
                rotation.receive(earlier)
            [report, close] = rotation.receive(message)
            self.assertEqual(
                (report.outcome, close),
                (RotationOutcome.ERROR, Close()),
                (profile.offline_since, prefix, message),
            )
            self.assertEqual(rotation.profile, profile)

    def test_fingerprint_recomputed_never_sent(self):
        """
        The fingerprint is computed afresh for the reconnection and again
        for the rotation that follows, and never travels: no message the
        client sends carries it in any encoding.
        """
        self.converse(self.rotation.start())
        self.assertEqual(self.fingerprint.calls, 2)
        self.assertEqual(len(self.server.received), 5)
        wire_bytes = b"".join(
            wire.encode(message, wire.Framing.FRAMED)
            for message in self.server.received
        )
        for form in (
            FINGERPRINT,
            FINGERPRINT.hex().encode(),
            base64.b64encode(FINGERPRINT),
        ):
            self.assertNotIn(form, wire_bytes)

    def test_fingerprint_unavailable(self):
        """
        A machine whose fingerprint cannot be computed when the server's
        time arrives sends no reconnection: the conversation ends as an
        error saying why, and closes.
        """

        def no_fingerprint():
            raise FingerprintError("no fingerprint source is available")

        rotation = ClientRotation(OFFLINE, no_fingerprint, self.draws)
        rotation.start()
        rotation.receive(wire.Version(2))
        self.assertEqual(
            rotation.receive(wire.ServerTime(SERVER_NOW, STEP)),
            [
                Report(
                    RotationOutcome.ERROR,
                    PROFILE.key_id,
                    0,
                    "cannot compute the hardware fingerprint: no fingerprint "
                    "source is available",
                ),
                Close(),
            ],
        )

    def test_timeout_and_lost(self):
        """
        A server that does not answer the time request or the
        reconnection ends the conversation as a timeout, dropped; a
        connection lost while reconnecting is an error.
        """
        self.rotation.start()
        self.rotation.receive(wire.Version(2))
        [report, close] = self.rotation.timed_out()
        self.assertEqual(
            (report.outcome, close), (RotationOutcome.TIMEOUT, Close(abort=True))
        )
        self.rotation = ClientRotation(OFFLINE, self.fingerprint, Draws())
        self.reconnect_sent()
        self.assertEqual(
            self.rotation.connection_lost("the connection was lost"),
            [
                Report(
                    RotationOutcome.ERROR,
                    PROFILE.key_id,
                    0,
                    "the connection was lost",
                )
            ],
        )

    def test_no_secret_in_actions(self):
        """
        No action of a whole reconnection and rotation shows the old key,
        the offline key, the new key, the fingerprint or the junk in its
        representation, so logging one cannot leak them.
        """
        offline_key = self.server.attempt_key(NONCE)
        actions = self.rotation.start()
        actions += self.converse(list(actions))
        actions += self.rotation.committed()
        shown = repr([actions, self.server.received])
        for form in secret_forms(
            K0, offline_key, self.server.key, FINGERPRINT, bytes([1]) * 32
        ):
            self.assertNotIn(form, shown)


class ReconnectionProtocolTests(SynchronousTestCase):
    """
    L{RotationProtocol} running an offline profile's conversation as
    bytes, on a clock hours away from the server's.
    """

    def setUp(self):
        # The client's clock is at the epoch plus a little: hours, indeed
        # decades, away from the server's.
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.server = OfflineServer()
        self.committed = []
        self.reports = []
        self.transport = StringTransport()
        self.protocol = RotationProtocol(
            ClientRotation(OFFLINE, Fingerprints(), Draws()),
            clock=self.clock,
            interval=INTERVAL,
            timeout=TIMEOUT,
            random=FixedRandom(0.5),
            commit=self.committed.append,
            report=self.reports.append,
        )
        self.protocol.makeConnection(self.transport)

    def test_bytes(self):
        """
        On the wire the offline profile sends SUTO_C_TIME after the
        version exchange, and SUTO_C_RECONNECT_N_ with its key id, the
        nonce, the proof, the sealed junk and the user once the server's
        SUTO_TIME_ arrived.
        """
        self.transport.clear()
        self.protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        self.assertEqual(self.transport.value(), b"SUTO_C_TIME\r\n")
        self.transport.clear()
        self.protocol.dataReceived(b"SUTO_TIME_%d_%d\r\n" % (SERVER_NOW, STEP))
        line = self.transport.value()
        self.assertTrue(
            line.startswith(
                b"SUTO_C_RECONNECT_N_"
                + PROFILE.key_id.encode()
                + b"_"
                + base64.b64encode(NONCE)
                + b"_"
            )
        )
        self.assertTrue(line.endswith(b"_alice\r\n"))

    def test_wrong_client_clock(self):
        """
        Whatever the client's clock says, the reconnection opens under the
        server's offline key and the rotation that follows commits, with
        C{rotated_at} from the client's clock and the profile online.
        """
        pump(self.protocol, self.transport, self.server)
        self.assertIsInstance(self.server.received[2], wire.Reconnect)
        self.assertEqual(
            self.committed, [committed_profile(self.server, self.clock.seconds())]
        )
        self.assertEqual(
            self.reports,
            [Report(RotationOutcome.ROTATED, self.committed[0].key_id, 1)],
        )

    def test_one_timeout(self):
        """
        The version exchange, the reconnection and the first rotation
        share one timeout: a server that answers the time and then stays
        silent is given up on when it runs out.
        """
        self.protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        self.clock.advance(TIMEOUT / 2)
        self.protocol.dataReceived(b"SUTO_TIME_%d_%d\r\n" % (SERVER_NOW, STEP))
        self.clock.advance(TIMEOUT / 2)
        [report] = self.reports
        self.assertEqual(report.outcome, RotationOutcome.TIMEOUT)
        self.assertTrue(self.transport.disconnected)


class OfflineFactoryTests(SynchronousTestCase):
    """
    L{RotationFactory} finding out that a profile's junk was due and not
    delivered, keeping that through its store callback, reconnecting, and
    holding off after a refusal.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(PROFILE.enrolled_at)
        self.server = OfflineServer()
        self.server.offline = False
        self.fingerprint = Fingerprints()
        self.stored = []
        self.factory = self.make_factory(self.store)

    def make_factory(self, store):
        return make_factory(self.clock, store, lambda report: None, self.fingerprint)

    def store(self, old, new):
        self.stored.append((old, new))

    def connection(self):
        run_connection(self.factory, self.server)

    def advance_to(self, when):
        self.clock.advance(when - self.clock.seconds())

    def test_not_before_due(self):
        """
        Until the longest wait an interval may draw has passed since the
        key was agreed, failed attempts and a new connection mark
        nothing: the connection rotates plainly.
        """
        self.advance_to(DUE - 0.001)
        self.factory.retry_delay(1)
        self.factory.retry_delay(2)
        self.assertEqual(self.stored, [])
        self.connection()
        self.assertEqual(
            [type(message) for message in self.server.received],
            [wire.Version, wire.Rotate, wire.RotateAck],
        )
        [(old, new)] = self.stored
        self.assertEqual((old, new.offline_since), (PROFILE, None))

    def test_new_nonce_after_state_not_written(self):
        """
        When the state file cannot take the key the rotation after a
        reconnection agreed, the profile stays offline with its old key,
        and the next connection reconnects again from that key with a new
        attempt nonce (docs/PROTOCOL.md §10.2, "A reconnection cut
        short"), never the one the server recorded.
        """

        def store(old, new):
            if new.key_id != old.key_id:
                raise CommitError("the disk is full")
            self.stored.append((old, new))

        self.factory = self.make_factory(store)
        self.advance_to(DUE)
        self.server.offline = True
        self.connection()
        self.assertEqual(self.factory.profile, OFFLINE)
        self.server.offline = True
        self.connection()
        first, second = [
            message
            for message in self.server.received
            if isinstance(message, wire.Reconnect)
        ]
        self.assertEqual(first.key_id, second.key_id)
        self.assertEqual(first.key_id, PROFILE.key_id)
        self.assertNotEqual(first.nonce, second.nonce)

    def test_attempts_failing(self):
        """
        A connection attempt that fails once the junk is due marks the
        profile offline at that time, through the store callback, once:
        later failures store nothing more.
        """
        self.advance_to(DUE - 0.001)
        self.factory.retry_delay(3)
        self.advance_to(DUE)
        self.factory.retry_delay(4)
        self.assertEqual(self.stored, [(PROFILE, OFFLINE)])
        self.assertEqual(self.factory.profile, OFFLINE)
        self.clock.advance(INTERVAL)
        self.factory.retry_delay(5)
        self.assertEqual(self.stored, [(PROFILE, OFFLINE)])

    def test_connection_lost(self):
        """
        After a rotation the due time counts from its commit: a
        connection lost then and attempts failing after it mark the
        profile offline only once that rotation's next junk is overdue.
        """
        self.connection()
        [(_, rotated)] = self.stored
        self.assertEqual(rotated.rotated_at, PROFILE.enrolled_at)
        self.factory.retry_delay(1)
        due = rotated.rotated_at + INTERVAL * (1 + JITTER)
        self.advance_to(due - 0.001)
        self.factory.retry_delay(2)
        self.assertEqual(len(self.stored), 1)
        self.advance_to(due)
        self.factory.retry_delay(3)
        self.assertEqual(
            self.stored[1], (rotated, replace(rotated, offline_since=due))
        )

    def test_next_connection_reconnects(self):
        """
        The connection after the profile was marked offline asks the
        server's time and reconnects before it rotates; the rotation's
        commit replaces the offline profile with an online one.
        """
        self.advance_to(DUE)
        self.factory.retry_delay(1)
        self.server.offline = True
        self.connection()
        self.assertEqual(
            [type(message) for message in self.server.received],
            [wire.Version, wire.GetTime, wire.Reconnect, wire.Rotate, wire.RotateAck],
        )
        self.assertEqual(
            self.stored[-1], (OFFLINE, committed_profile(self.server, DUE))
        )
        self.assertIsNone(self.factory.profile.offline_since)

    def test_new_connection_marks(self):
        """
        A connection made long after the key was agreed (the agent was
        not running) finds the silence itself before it says anything:
        the profile is marked offline, stored, and reconnects.
        """
        self.advance_to(DUE + 3600)
        self.server.offline = True
        self.connection()
        self.assertEqual(
            self.stored[0], (PROFILE, replace(OFFLINE, offline_since=DUE + 3600))
        )
        self.assertEqual(self.server.received[1], wire.GetTime())
        self.assertEqual(self.server.generation, 1)

    def test_clock_went_back(self):
        """
        A clock earlier than the last agreement (set back while the agent
        was away) cannot measure the silence, so the profile is marked
        offline and reconnects: a plain rotation would get a profile the
        server marked offline meanwhile blacklisted, while the server
        accepts the reconnection of a profile it still has online.
        """
        self.clock = Clock()
        self.clock.advance(PROFILE.enrolled_at - 3600)
        self.factory = self.make_factory(self.store)
        self.connection()
        self.assertEqual(
            self.stored[0],
            (PROFILE, replace(OFFLINE, offline_since=PROFILE.enrolled_at - 3600)),
        )
        self.assertEqual(self.server.received[1], wire.GetTime())
        self.assertEqual(self.server.generation, 1)

    def test_mark_not_stored(self):
        """
        A mark that cannot be stored is logged, without secrets, and the
        profile still reconnects: it is offline whether or not the file
        says so.
        """

        def failing(old, new):
            if new.offline_since is not None:
                raise CommitError("cannot write the state file")
            self.stored.append((old, new))

        self.factory = self.make_factory(failing)
        self.advance_to(DUE)
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.factory.retry_delay(1)
        [warning] = [e for e in observer if e["log_level"] is LogLevel.warn]
        self.assertEqual(
            (warning["user"], warning["error"]),
            (USER, "cannot write the state file"),
        )
        self.assertEqual(self.factory.profile, OFFLINE)
        self.server.offline = True
        self.connection()
        self.assertEqual(self.server.received[1], wire.GetTime())
        self.assertEqual(self.stored, [(OFFLINE, committed_profile(self.server, DUE))])

    def test_refused_holds_off(self):
        """
        After a refused reconnection the next attempt waits one interval,
        then twice as long at each refusal in a row, up to an hour; each
        refusal is logged as an error; a reconnection that succeeds resets
        the wait.
        """
        self.advance_to(DUE)
        self.factory.retry_delay(1)
        self.server.offline = True
        self.fingerprint.value = OTHER_FINGERPRINT
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        delays = []
        for _ in range(8):
            self.connection()
            delays.append(self.factory.retry_delay(1))
        self.assertEqual(
            delays, [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0]
        )
        outcomes = [
            (e["outcome"], e["log_level"]) for e in observer if "outcome" in e
        ]
        self.assertEqual(outcomes, [("refused", LogLevel.error)] * 8)
        self.assertEqual(len(self.stored), 1)
        self.fingerprint.value = FINGERPRINT
        self.connection()
        self.assertEqual(self.server.generation, 1)
        self.assertEqual(self.factory.retry_delay(1), 1.0)

    def test_storm(self):
        """
        An offline endpoint whose server was down and then refuses it twice
        under its start-up limit (closing before its version) is back
        within L{RETRY_CAP} plus two short waits of the server's return:
        the waits while the server is down never pass the cap, the
        refusals neither count as failed rotations nor mark anything, and
        the reconnection that follows rotates.  Time runs on the test's
        clock, the draws from a seeded generator.
        """
        self.factory = make_factory(
            self.clock, self.store, lambda report: None, self.fingerprint,
            random.Random(5),
        )
        self.advance_to(DUE)
        self.server.offline = True
        waits = []
        for attempt in range(1, 9):
            waits.append(self.factory.retry_delay(attempt))
            self.clock.advance(waits[-1])
        self.assertLessEqual(max(waits), RETRY_CAP)
        self.assertEqual(self.stored, [(PROFILE, OFFLINE)])
        # The server returns just after the last failed attempt.
        back = self.clock.seconds()
        self.clock.advance(self.factory.retry_delay(9))
        for _ in range(2):
            refused_connection(self.factory)
            wait = self.factory.retry_delay(1)
            self.assertLessEqual(wait, 4.0)
            self.clock.advance(wait)
        self.assertEqual(self.stored, [(PROFILE, OFFLINE)])
        self.connection()
        self.assertEqual(self.server.generation, 1)
        self.assertIsNone(self.factory.profile.offline_since)
        self.assertLessEqual(self.clock.seconds() - back, RETRY_CAP + 2 + 4)

    def test_no_secret_logged(self):
        """
        The events of a profile going offline, reconnecting and rotating
        name the user, the due time, the outcome and key ids, and show no
        key, offline key, fingerprint or junk.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.advance_to(DUE)
        self.factory.retry_delay(1)
        self.server.offline = True
        offline_key = self.server.attempt_key(NONCE)
        self.connection()
        [marked] = [e for e in observer if "due" in e]
        self.assertEqual((marked["user"], marked["due"]), (USER, DUE))
        [rotated] = [e for e in observer if "outcome" in e]
        self.assertEqual(rotated["key_id"], self.factory.profile.key_id)
        shown = repr(list(observer))
        for form in secret_forms(
            K0, offline_key, self.server.key, FINGERPRINT, bytes([1]) * 32
        ):
            self.assertNotIn(form, shown)


class AgentOfflineTests(SynchronousTestCase):
    """
    The agent keeps the offline mark in its state file and reconnects
    from it, before and after a restart.
    """

    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        self.server = OfflineServer()
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(PROFILE.enrolled_at)
        self.endpoint = FakeEndpoint()
        self.outcomes = []

    def start(self, profile):
        save_state(self.path, ClientState(profiles={USER: profile}))
        return start_agent(
            self,
            self.reactor,
            self.path,
            lambda reactor, profile, timeout: self.endpoint,
            observer=lambda user, outcome, key_id: self.outcomes.append(outcome),
        )

    def refuse_attempt(self):
        """
        Wait for the agent's next connection attempt, and refuse it.
        """
        while not self.endpoint.attempts:
            self.reactor.advance(
                min(call.getTime() for call in self.reactor.getDelayedCalls())
                - self.reactor.seconds()
            )
        _, attempt = self.endpoint.attempts.pop(0)
        attempt.errback(Failure(internet_error.ConnectionRefusedError()))

    def test_unreachable_server(self):
        """
        An agent that cannot reach its server writes the offline mark
        into the state file at the first failed attempt once the junk is
        due, and the connection it finally makes reconnects and rotates:
        the file then holds the new key, online, and the server agrees.
        """
        self.start(PROFILE)
        while self.reactor.seconds() < DUE:
            self.assertIsNone(load_state(self.path).profiles[USER].offline_since)
            self.refuse_attempt()
        marked = load_state(self.path).profiles[USER]
        self.assertEqual(marked, replace(OFFLINE, offline_since=self.reactor.seconds()))
        while not self.endpoint.attempts:
            self.reactor.advance(1)
        protocol, transport = self.endpoint.accept()
        pump(protocol, transport, self.server)
        self.assertIsInstance(self.server.received[2], wire.Reconnect)
        self.assertEqual(self.outcomes, [RotationOutcome.ROTATED])
        self.assertEqual(
            load_state(self.path).profiles[USER],
            replace(
                committed_profile(self.server, self.reactor.seconds()),
                enrolled_at=PROFILE.enrolled_at,
            ),
        )

    def test_restart_offline(self):
        """
        An agent started on a state file that says offline reconnects on
        its first connection, whatever its clock says.
        """
        self.start(OFFLINE)
        protocol, transport = self.endpoint.accept()
        pump(protocol, transport, self.server)
        self.assertEqual(
            [type(message) for message in self.server.received][:3],
            [wire.Version, wire.GetTime, wire.Reconnect],
        )
        self.assertIsNone(load_state(self.path).profiles[USER].offline_since)
