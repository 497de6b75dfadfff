"""
Tests for L{suto_client.rotation}, the endpoint's side of key rotation: as
exact sequences of messages and actions, as bytes over a
L{StringTransport} and a L{Clock}, through L{RotationFactory}'s back-off,
and inside the agent, against a small server built from the key schedule.
"""

import os
import random
import shutil
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import error as internet_error
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver, StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client import tap
from suto_client.fingerprint import FingerprintError
from suto_client.rotation import (
    MAX_HOLD_OFF,
    RETRY_CAP,
    UNANSWERED_DOUBLINGS,
    CommitError,
    RotationFactory,
    RotationProtocol,
    retry_wait,
)
from suto_client.rotation_machine import ClientRotation
from suto_client.rotation_outcome import Commit, Report, RotationError, RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send
from tests.support.client_rotation import (
    C2S,
    FINGERPRINT,
    INTERVAL,
    K0,
    OTHER_FINGERPRINT,
    PROFILE,
    SERVER,
    TIMEOUT,
    USER,
    ConversationFixture,
    Draws,
    FactoryFixture,
    FakeEndpoint,
    FakeServer,
    Fingerprints,
    FixedRandom,
    connected,
    make_factory,
    pump,
    raw_public,
    refused_connection,
    rotated_profile,
    secret_forms,
    start_agent,
)
from tests.support.udp import MemoryUDPReactor

# The same profile after enrolling again: another first key.
ENROLLED_AGAIN = replace(
    PROFILE, key=bytes(32), key_id=keyschedule.key_id(bytes(32))
)


class ClientRotationTests(ConversationFixture, SynchronousTestCase):

    def test_success(self):
        """
        A rotation with a server that answers version 2 is exactly: VERSION
        both ways, ROTATE with the current key id, fresh junk and a fresh
        public key, the server's ROTATE_OK, an ACK sealed under the new
        key, the server's ROTATE_DONE, then a commit of the new key, and
        only once it is stored the report.
        """
        self.server = FakeServer(version=2)
        self.assertEqual(self.rotation.start(), [Send(wire.Version(3))])
        [send] = self.rotation.receive(wire.Version(2))
        junk = bytes([1]) * 32
        private = X25519PrivateKey.from_private_bytes(bytes([2]) * 32)
        self.assertEqual(
            send,
            Send(wire.Rotate(PROFILE.key_id, junk, raw_public(private), USER)),
        )
        [ok] = self.server.receive(send.message)
        [send] = self.rotation.receive(ok)
        new_key = self.server.pending
        self.assertEqual(
            send,
            Send(
                wire.RotateAck(
                    keyschedule.seal(
                        new_key,
                        b"ack",
                        profile=USER,
                        purpose="rotate-ack",
                        direction=C2S,
                        counter=0,
                    )
                )
            ),
        )
        [done] = self.server.receive(send.message)
        self.assertEqual(self.server.key, new_key)
        self.assertEqual(
            self.rotation.receive(done), [Commit(rotated_profile(self.server))]
        )
        self.assertEqual(self.rotation.profile, PROFILE)
        self.assertEqual(
            self.rotation.committed(),
            [Report(RotationOutcome.ROTATED, keyschedule.key_id(new_key), 1)],
        )
        self.assertEqual(self.rotation.profile, rotated_profile(self.server))
        self.assertEqual(self.fingerprint.calls, 1)

    def test_both_derive_next_key(self):
        """
        The key the client commits is L{keyschedule.next_key} of the old
        key, its junk, the fingerprint hash and the X25519 secret, for
        generation 1: the server, which computed it independently, holds
        the same.
        """
        [commit] = self.converse(self.rotation.start())
        self.assertEqual(commit.profile.key, self.server.key)
        self.assertNotEqual(commit.profile.key, K0)
        self.assertEqual(commit.profile.generation, 1)

    def test_two_rotations(self):
        """
        A second rotation on the same connection presents the committed
        key's id, draws new junk and a new key pair, recomputes the
        fingerprint, and rolls the key forward to generation 2.
        """
        self.converse(self.rotation.start())
        first = self.rotation.profile
        self.rotation.committed()
        [send] = self.rotation.rotate()
        self.assertEqual(send.message.key_id, self.rotation.profile.key_id)
        self.assertEqual(send.message.junk, bytes([3]) * 32)
        [commit] = self.converse([send])
        self.assertEqual(
            self.rotation.committed(),
            [
                Report(
                    RotationOutcome.ROTATED,
                    keyschedule.key_id(self.server.key),
                    2,
                )
            ],
        )
        self.assertEqual(commit.profile, rotated_profile(self.server))
        self.assertNotEqual(commit.profile.key, first.key)
        self.assertEqual(self.fingerprint.calls, 2)
        self.assertEqual(self.draws.sizes, [32] * 4)

    def test_unknown_key(self):
        """
        A server that does not know the key ends the rotations with
        UNKNOWN_KEY, saying re-enrollment is needed, and the client
        closes.
        """
        self.server.key = bytes(32)
        actions = self.converse(self.rotation.start())
        self.assertEqual(
            actions,
            [
                Report(
                    RotationOutcome.UNKNOWN_KEY,
                    PROFILE.key_id,
                    0,
                    "the server does not know this key: re-enrollment needed",
                ),
                Close(),
            ],
        )

    def test_other_fingerprint(self):
        """
        A machine with another fingerprint derives another key, cannot open
        ROTATE_OK, sends no acknowledgement and ends with OPEN_FAILED; the
        server keeps the old key.
        """
        self.fingerprint.value = OTHER_FINGERPRINT
        actions = self.converse(self.rotation.start())
        self.assertEqual(
            actions,
            [
                Report(
                    RotationOutcome.OPEN_FAILED,
                    PROFILE.key_id,
                    0,
                    "could not open the server's rotation message: the "
                    "hardware fingerprint changed or the key is stale",
                ),
                Close(),
            ],
        )
        self.assertEqual((self.server.key, self.server.generation), (K0, 0))
        self.assertEqual(self.rotation.profile, PROFILE)

    def test_ack_refused(self):
        """
        When the server cannot open the acknowledgement it answers
        ROTATION_FAILED: the rotation ends as an error naming that code,
        nothing is committed, and the old key stays the key.
        """
        self.rotation.start()
        [rotate] = self.rotation.receive(wire.Version(2))
        [ok] = self.server.receive(rotate.message)
        [ack] = self.rotation.receive(ok)
        tampered = bytearray(ack.message.sealed)
        tampered[0] ^= 1
        [refusal] = self.server.receive(wire.RotateAck(bytes(tampered)))
        self.assertEqual(refusal, wire.Error(wire.ERROR_ROTATION_FAILED))
        actions = self.rotation.receive(refusal)
        self.assertEqual(
            actions,
            [
                Report(
                    RotationOutcome.ERROR,
                    PROFILE.key_id,
                    0,
                    "the server could not open our acknowledgement "
                    "(ROTATION_FAILED)",
                ),
                Close(),
            ],
        )
        self.assertEqual(self.rotation.profile, PROFILE)

    def test_done_does_not_open(self):
        """
        A ROTATE_DONE that does not open under the new key is an error and
        commits nothing.
        """
        self.rotation.start()
        [rotate] = self.rotation.receive(wire.Version(2))
        [ok] = self.server.receive(rotate.message)
        self.rotation.receive(ok)
        [report, close] = self.rotation.receive(wire.RotateDone(bytes(16)))
        self.assertEqual(
            report,
            Report(
                RotationOutcome.ERROR,
                PROFILE.key_id,
                0,
                "the server's rotation confirmation did not open",
            ),
        )
        self.assertEqual(close, Close())

    def test_commit_failed(self):
        """
        When the new key cannot be stored the rotation is an error, the
        connection closes, and the old key stays the key: the server still
        accepts it and rolls back.
        """
        self.converse(self.rotation.start())
        self.assertEqual(
            self.rotation.commit_failed("disk full"),
            [
                Report(RotationOutcome.ERROR, PROFILE.key_id, 0, "disk full"),
                Close(),
            ],
        )
        self.assertEqual(self.rotation.profile, PROFILE)

    def test_out_of_order(self):
        """
        Messages the server sends at the wrong time end the rotations with
        an error: a second VERSION, ROTATE_DONE before ROTATE_OK, a
        ROTATE_OK with no rotation under way, another version, or a
        message that belongs to another conversation.
        """
        ok = wire.RotateOk(bytes(32), bytes(16))
        done = wire.RotateDone(bytes(16))
        for prefix, message in (
            ([wire.Version(2)], wire.Version(2)),
            ([wire.Version(2)], done),
            ([], ok),
            ([], wire.Version(4)),
            ([wire.Version(2)], wire.Auth(True)),
            ([], wire.Error(wire.ERROR_UNKNOWN_KEY)),
        ):
            rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
            rotation.start()
            for earlier in prefix:
                rotation.receive(earlier)
            [report, close] = rotation.receive(message)
            self.assertEqual(
                (report.outcome, close), (RotationOutcome.ERROR, Close())
            )

    def test_ok_when_ready(self):
        """
        A ROTATE_OK between rotations is an error.
        """
        self.converse(self.rotation.start())
        self.rotation.committed()
        [report, _] = self.rotation.receive(
            wire.RotateOk(bytes(32), bytes(16))
        )
        self.assertEqual(
            report,
            Report(
                RotationOutcome.ERROR,
                self.rotation.profile.key_id,
                1,
                "unexpected RotateOk from the server",
            ),
        )

    def test_server_error(self):
        """
        Another error code ends the rotation as an error naming it.
        """
        self.rotation.start()
        self.rotation.receive(wire.Version(2))
        [report, _] = self.rotation.receive(wire.Error(wire.ERROR_BUSY))
        self.assertEqual(
            report.reason, "the server is busy; try again (BUSY)"
        )

    def test_fingerprint_unavailable(self):
        """
        A machine whose fingerprint cannot be computed ends the rotation
        with an error instead of deriving anything.
        """

        def no_fingerprint():
            raise FingerprintError("no fingerprint source is available")

        rotation = ClientRotation(PROFILE, no_fingerprint, self.draws)
        actions = rotation.start()
        [rotate] = rotation.receive(wire.Version(2))
        [ok] = self.server.receive(rotate.message)
        [report, close] = rotation.receive(ok)
        self.assertEqual(actions, [Send(wire.Version(3))])
        self.assertEqual(
            report.reason,
            "cannot compute the hardware fingerprint: no fingerprint source "
            "is available",
        )
        self.assertEqual(close, Close())

    def test_low_order_public_key(self):
        """
        A server public key that gives no shared secret ends the rotation
        with an error.
        """
        self.rotation.start()
        self.rotation.receive(wire.Version(2))
        [report, _] = self.rotation.receive(
            wire.RotateOk(bytes(32), bytes(16))
        )
        self.assertEqual(report.outcome, RotationOutcome.ERROR)
        self.assertIn("cannot derive the next key", report.reason)

    def test_lost_and_timeout(self):
        """
        A connection lost during a rotation is an error (nothing left to
        close), reported unanswered when the server had said nothing yet;
        one that ran out of time after the server's version is a timeout,
        answered, and is dropped; a connection lost between rotations
        reports nothing.
        """
        self.rotation.start()
        self.assertEqual(
            self.rotation.connection_lost("the server closed the connection"),
            [
                Report(
                    RotationOutcome.ERROR,
                    PROFILE.key_id,
                    0,
                    "the server closed the connection",
                    answered=False,
                )
            ],
        )
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        rotation.receive(wire.Version(2))
        self.assertEqual(
            rotation.timed_out(),
            [
                Report(
                    RotationOutcome.TIMEOUT,
                    PROFILE.key_id,
                    0,
                    "the server did not answer in time",
                ),
                Close(abort=True),
            ],
        )
        self.rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        self.converse(self.rotation.start())
        self.rotation.committed()
        self.assertEqual(self.rotation.connection_lost("closed"), [])

    def test_answered(self):
        """
        A report says the server answered once any message or malformed
        bytes came from it; a timeout before the version is unanswered.
        """
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        [report, _] = rotation.timed_out()
        self.assertEqual(
            (report.outcome, report.answered), (RotationOutcome.TIMEOUT, False)
        )
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        [report, _] = rotation.protocol_error(
            wire.ProtocolError(wire.ERROR_BAD_FIELD, "bad")
        )
        self.assertTrue(report.answered)
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        [report, _] = rotation.receive(wire.Error(wire.ERROR_BUSY))
        self.assertEqual(
            (report.outcome, report.answered), (RotationOutcome.ERROR, True)
        )

    def test_protocol_error(self):
        """
        A malformed message from the server ends the rotation as an error
        naming the decoder's code.
        """
        self.rotation.start()
        [report, _] = self.rotation.protocol_error(
            wire.ProtocolError(wire.ERROR_BAD_FIELD, "bad")
        )
        self.assertEqual(report.reason, "protocol error: BAD_FIELD")

    def test_nothing_after_done(self):
        """
        Once the rotations have ended, nothing causes any action.
        """
        self.rotation.start()
        self.rotation.timed_out()
        for actions in (
            self.rotation.receive(wire.Version(2)),
            self.rotation.receive(wire.RotateDone(bytes(16))),
            self.rotation.connection_lost("closed"),
            self.rotation.timed_out(),
        ):
            self.assertEqual(actions, [])

    def test_invalid_user(self):
        """
        A profile whose user cannot travel in C{SUTO_C_ROTATE_} is refused
        with L{RotationError}.
        """
        profile = replace(PROFILE, user="DATA_x")
        self.assertRaises(
            RotationError,
            ClientRotation,
            profile,
            self.fingerprint,
            self.draws,
        )

    def test_no_key_in_actions(self):
        """
        Neither key appears in the representation of any action, so
        logging one cannot leak it.
        """
        self.server = FakeServer(version=2)
        actions = self.rotation.start()
        actions += self.rotation.receive(wire.Version(2))
        [ok] = self.server.receive(actions[-1].message)
        actions += self.rotation.receive(ok)
        [done] = self.server.receive(actions[-1].message)
        actions += self.rotation.receive(done)
        actions += self.rotation.committed()
        shown = repr(actions)
        for key in (K0, self.server.key):
            self.assertNotIn(key.hex(), shown)
            self.assertNotIn(repr(key), shown)


class RotationProtocolTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.server = FakeServer()
        self.fingerprint = Fingerprints()
        self.events = []
        self.random = FixedRandom(0.5)
        self.transport = StringTransport()
        self.protocol = self.make_protocol()

    def make_protocol(self, commit=None):
        return RotationProtocol(
            ClientRotation(PROFILE, self.fingerprint, Draws()),
            clock=self.clock,
            interval=INTERVAL,
            timeout=TIMEOUT,
            random=self.random,
            commit=commit or self.commit,
            report=lambda report: self.events.append(("report", report)),
        )

    def commit(self, profile):
        self.events.append(("commit", profile))

    def connect(self):
        self.protocol.makeConnection(self.transport)

    def test_bytes(self):
        """
        On the wire the conversation is framed lines: VERSION first, then
        ROTATE with the key id, the base64 junk and public key, and the
        user last.
        """
        self.connect()
        self.assertEqual(self.transport.value(), b"SUTO_VERSION_3\r\n")
        self.transport.clear()
        self.protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        line = self.transport.value()
        self.assertTrue(
            line.startswith(b"SUTO_C_ROTATE_" + PROFILE.key_id.encode() + b"_")
        )
        self.assertTrue(line.endswith(b"_alice\r\n"))

    def test_commit_before_report(self):
        """
        The new key is committed before the rotation is reported, and the
        rotation's timeout no longer runs once it is; only the next
        rotation is scheduled.
        """
        self.connect()
        pump(self.protocol, self.transport, self.server)
        new = rotated_profile(self.server, self.clock.seconds())
        self.assertEqual(
            self.events,
            [
                ("commit", new),
                ("report", Report(RotationOutcome.ROTATED, new.key_id, 1)),
            ],
        )
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), INTERVAL)

    def test_commit_before_next_rotation(self):
        """
        The next rotation starts after the interval and presents the key
        committed by the previous one.
        """
        self.connect()
        pump(self.protocol, self.transport, self.server)
        self.clock.advance(INTERVAL)
        rotate = self.transport.value()
        committed = self.events[0][1]
        self.assertTrue(
            rotate.startswith(
                b"SUTO_C_ROTATE_PRIMED_" + committed.key_id.encode()
            )
        )
        pump(self.protocol, self.transport, self.server)
        self.assertEqual(
            [kind for kind, _ in self.events],
            ["commit", "report", "commit", "report"],
        )
        self.assertEqual(self.events[2][1].generation, 2)

    def test_jitter_bounds(self):
        """
        Each wait between rotations is the interval within 10%: at the
        low end of the draw it is 54 seconds, at the high end 66.
        """
        for fraction, wait in ((0.0, 54.0), (0.999999, 66.0)):
            self.random.fraction = fraction
            self.clock = Clock()
            self.transport = StringTransport()
            self.server = FakeServer()
            self.protocol = self.make_protocol()
            self.connect()
            pump(self.protocol, self.transport, self.server)
            self.clock.advance(wait - 0.01)
            self.assertEqual(self.transport.value(), b"")
            self.clock.advance(0.01)
            self.assertTrue(
                self.transport.value().startswith(b"SUTO_C_ROTATE_")
            )

    def test_jitter_spread(self):
        """
        With real random draws, every wait of many rotations lies within
        10% of the interval, and they are not all the same.
        """
        self.random = random.Random(7)
        self.protocol = self.make_protocol()
        self.connect()
        waits = []
        for _ in range(50):
            pump(self.protocol, self.transport, self.server)
            [call] = self.clock.getDelayedCalls()
            wait = call.getTime() - self.clock.seconds()
            waits.append(wait)
            self.clock.advance(wait)
        self.assertTrue(all(54.0 <= wait <= 66.0 for wait in waits))
        self.assertGreater(len(set(waits)), 1)
        self.assertEqual(self.server.generation, 50)

    def test_commit_failure(self):
        """
        A commit that fails ends the rotation as an error before anything
        is reported as rotated; the connection closes and no further
        rotation is scheduled.
        """

        def failing(profile):
            raise CommitError("cannot write the state file")

        self.protocol = self.make_protocol(commit=failing)
        self.connect()
        pump(self.protocol, self.transport, self.server)
        [(_, report)] = self.events
        self.assertEqual(report.outcome, RotationOutcome.ERROR)
        self.assertEqual(
            report.reason,
            "could not store the new key: cannot write the state file",
        )
        self.assertEqual(report.key_id, PROFILE.key_id)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_commit_crash(self):
        """
        A commit that fails unexpectedly is logged and ends the rotation
        as an error, like any failed commit.
        """

        def crashing(profile):
            raise ZeroDivisionError()

        self.protocol = self.make_protocol(commit=crashing)
        self.connect()
        pump(self.protocol, self.transport, self.server)
        [(_, report)] = self.events
        self.assertEqual(report.reason, "could not store the new key")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_timeout(self):
        """
        A server that does not answer within the timeout ends the exchange
        as a timeout and the connection is dropped.
        """
        self.connect()
        self.clock.advance(TIMEOUT - 0.01)
        self.assertEqual(self.events, [])
        self.clock.advance(0.01)
        [(_, report)] = self.events
        self.assertEqual(report.outcome, RotationOutcome.TIMEOUT)
        self.assertTrue(self.transport.disconnected)

    def test_timeout_per_exchange(self):
        """
        Each later rotation gets its own timeout, counted from its start.
        """
        self.connect()
        pump(self.protocol, self.transport, self.server)
        self.clock.advance(INTERVAL)
        self.clock.advance(TIMEOUT)
        [_, _, (_, report)] = self.events
        self.assertEqual(report.outcome, RotationOutcome.TIMEOUT)
        self.assertEqual(report.key_id, self.events[0][1].key_id)

    def test_connection_lost_between_rotations(self):
        """
        A connection lost between rotations cancels the next one and
        reports nothing more.
        """
        self.connect()
        pump(self.protocol, self.transport, self.server)
        self.protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.events), 2)

    def test_garbage(self):
        """
        Bytes that are no SUTO message end the rotation as an error and
        close the connection; later bytes are ignored.
        """
        self.connect()
        self.protocol.dataReceived(b"HELLO\r\n")
        self.protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        [(_, report)] = self.events
        self.assertEqual(report.reason, "protocol error: UNKNOWN_MESSAGE")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class RotationFactoryTests(FactoryFixture, SynchronousTestCase):
    def test_store_then_profile(self):
        """
        A rotation stores the new profile in place of the old one, and the
        next connection starts from the new key.
        """
        self.connection()
        new = rotated_profile(self.server, self.clock.seconds())
        self.assertEqual(self.stored, [(PROFILE, new)])
        self.assertEqual(self.factory.profile, new)
        self.connection()
        self.assertEqual(self.stored[-1][0], new)
        self.assertEqual(self.server.generation, 2)

    def test_open_failed_holds_off(self):
        """
        After a rotation whose ROTATE_OK did not open, the next connection
        waits a full interval, then twice as long at each such failure in
        a row, up to an hour; a successful rotation resets the wait.
        """
        self.fingerprint.value = OTHER_FINGERPRINT
        delays = []
        for _ in range(8):
            self.connection()
            delays.append(self.factory.retry_delay(1))
        self.assertEqual(
            delays, [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0]
        )
        self.assertEqual(MAX_HOLD_OFF, 3600.0)
        self.fingerprint.value = FINGERPRINT
        self.connection()
        self.fingerprint.value = OTHER_FINGERPRINT
        self.connection()
        self.assertEqual(self.factory.retry_delay(1), 60.0)

    def test_hold_off_used_once(self):
        """
        The hold-off applies to the next connection only; connection
        attempts that fail after it back off as usual.
        """
        self.fingerprint.value = OTHER_FINGERPRINT
        self.connection()
        self.assertEqual(self.factory.retry_delay(1), 60.0)
        self.assertEqual(self.factory.retry_delay(1), 1.0)

    def seeded_factory(self, seed: int) -> RotationFactory:
        return make_factory(
            self.clock,
            lambda old, new: self.stored.append((old, new)),
            self.reports.append,
            self.fingerprint,
            random.Random(seed),
        )

    def test_errors_back_off(self):
        """
        Rotations that fail after the server answered make the back-off
        grow from one to the next: each wait is drawn from [c/2, c], c
        doubling from 4 s up to L{RETRY_CAP} (30 s), until one succeeds,
        which brings the next wait back to [1, 2] s.
        """
        self.factory = self.seeded_factory(1)
        self.server.receive = lambda message: [wire.Error(wire.ERROR_BUSY)]
        for ceiling in [4.0, 8.0, 16.0, 30.0, 30.0, 30.0]:
            self.connection()
            delay = self.factory.retry_delay(1)
            self.assertTrue(ceiling / 2 <= delay <= ceiling, (ceiling, delay))
        del self.server.receive
        self.connection()
        self.assertTrue(1.0 <= self.factory.retry_delay(1) <= 2.0)

    def test_unanswered_not_failures(self):
        """
        Connections the server closes before it says anything (refused
        under a connection limit) do not count as failed rotations: in a
        row they double the wait only L{UNANSWERED_DOUBLINGS} times, to
        [4, 8] s at most, on top of the failures that came before them;
        failed connection attempts after them keep growing; the first
        answered connection resets them.  The lower ends, drawn here,
        show the exponents.
        """
        self.assertEqual(UNANSWERED_DOUBLINGS, 3)
        delays = []
        for _ in range(5):
            refused_connection(self.factory)
            delays.append(self.factory.retry_delay(1))
        self.assertEqual(delays, [1.0, 2.0, 4.0, 4.0, 4.0])
        self.assertEqual(
            [self.factory.retry_delay(attempt) for attempt in (4, 5, 6)],
            [8.0, 15.0, 15.0],
        )
        self.server.receive = lambda message: [wire.Error(wire.ERROR_BUSY)]
        self.connection()
        self.assertEqual(self.factory.retry_delay(1), 2.0)
        refused_connection(self.factory)
        self.assertEqual(self.factory.retry_delay(1), 2.0)
        refused_connection(self.factory)
        self.assertEqual(self.factory.retry_delay(1), 4.0)
        self.assertEqual(self.stored, [])
        self.assertEqual(
            [(r.outcome, r.answered) for r in self.reports],
            [(RotationOutcome.ERROR, False)] * 5
            + [(RotationOutcome.ERROR, True)]
            + [(RotationOutcome.ERROR, False)] * 2,
        )

    def test_unanswered_timeout(self):
        """
        A connection the server accepts but never answers times out, and
        counts as unanswered too: it does not grow the failures.
        """
        protocol, _ = connected(self.factory)
        self.clock.advance(TIMEOUT)
        protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        [report] = self.reports
        self.assertEqual(
            (report.outcome, report.answered), (RotationOutcome.TIMEOUT, False)
        )
        self.assertEqual(self.factory.retry_delay(1), 1.0)

    def test_outcomes_logged(self):
        """
        Every outcome is logged with the user, server, outcome and key id,
        and never with key material.
        """
        observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )
        self.connection()
        self.fingerprint.value = OTHER_FINGERPRINT
        self.connection()
        self.server.key = bytes(32)
        self.connection()
        events = [event for event in observer if "outcome" in event]
        self.assertEqual(
            [(event["outcome"], event["log_level"]) for event in events],
            [
                ("rotated", LogLevel.info),
                ("open-failed", LogLevel.warn),
                ("unknown-key", LogLevel.error),
            ],
        )
        for event in events:
            self.assertEqual(event["user"], USER)
            self.assertEqual(event["server_host"], SERVER)
            self.assertEqual(event["key_id"], self.factory.profile.key_id)
        shown = repr(list(observer))
        for key in (K0, self.factory.profile.key):
            self.assertNotIn(key.hex(), shown)
            self.assertNotIn(repr(key), shown)


class RetryWaitTests(SynchronousTestCase):
    """
    L{retry_wait}, the agent's back-off between connection attempts.
    """

    def test_bounds(self):
        """
        After C{n} failures the wait lies in [c/2, c], c = min(2^n,
        L{RETRY_CAP}), and the draws cover that range: the jitter is
        proportional to the wait, not a fixed second.  Huge counts stay at
        the cap.
        """
        self.assertEqual(RETRY_CAP, 30.0)
        draws = random.Random(3)
        for failures in (0, 1, 2, 3, 4, 5, 6, 10, 1000):
            ceiling = min(2.0**failures, RETRY_CAP)
            waits = [retry_wait(failures, draws) for _ in range(500)]
            self.assertTrue(all(ceiling / 2 <= w <= ceiling for w in waits))
            self.assertGreater(max(waits) - min(waits), 0.9 * ceiling / 2)

    def test_ends(self):
        """
        The lowest draw waits half the ceiling, the highest the ceiling.
        """
        self.assertEqual(retry_wait(3, FixedRandom(0.0)), 4.0)
        self.assertEqual(retry_wait(3, FixedRandom(1.0)), 8.0)
        self.assertEqual(retry_wait(9, FixedRandom(1.0)), RETRY_CAP)

    def test_fleet_spreads(self):
        """
        A fleet cut off at the same moment does not retry in waves: after
        six failed attempts in a row the endpoints' next attempts are
        spread over more than the last wait's half-range (15 s), where a
        fixed second of jitter would have kept them within six seconds.
        No endpoint waits longer than the cap between two attempts.
        """
        draws = random.Random(11)
        times = []
        for _ in range(1000):
            waits = [retry_wait(n, draws) for n in range(1, 7)]
            self.assertLessEqual(max(waits), RETRY_CAP)
            times.append(sum(waits))
        self.assertGreater(max(times) - min(times), 15.0)


class AgentRotationTests(SynchronousTestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        save_state(self.path, ClientState(profiles={USER: PROFILE}))
        self.server = FakeServer()
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(PROFILE.enrolled_at)
        self.endpoints = {}
        self.outcomes = []

    def start(self, path=None, fingerprint=FINGERPRINT):
        return start_agent(
            self,
            self.reactor,
            path or self.path,
            self.endpoint,
            fingerprint,
            lambda user, outcome, key_id: self.outcomes.append(
                (user, outcome, key_id)
            ),
        )

    def endpoint(self, reactor, profile, timeout):
        self.assertIs(reactor, self.reactor)
        self.assertEqual(timeout, TIMEOUT)
        return self.endpoints.setdefault(profile.key_id, FakeEndpoint())

    def rotate_once(self, key_id=PROFILE.key_id):
        """
        Accept the pending connection for the profile holding C{key_id}
        and run it until the server's side is done.
        """
        protocol, transport = self.endpoints[key_id].accept()
        pump(protocol, transport, self.server)
        return protocol, transport

    def test_rotates_and_stores(self):
        """
        The agent connects for each enrolled profile, rotates at once, and
        the state file then holds the new key; observers learn the new
        key id.
        """
        self.start()
        self.rotate_once()
        stored = load_state(self.path).profiles[USER]
        self.assertEqual(stored, rotated_profile(self.server, self.reactor.seconds()))
        self.assertEqual(
            self.outcomes, [(USER, RotationOutcome.ROTATED, stored.key_id)]
        )

    def test_keeps_rotating(self):
        """
        The same connection rotates again every interval, and the state
        file follows.
        """
        self.start()
        protocol, transport = self.rotate_once()
        self.reactor.advance(INTERVAL * 0.9)
        pump(protocol, transport, self.server)
        self.assertEqual(self.server.generation, 2)
        self.assertEqual(
            load_state(self.path).profiles[USER], rotated_profile(self.server, self.reactor.seconds())
        )
        self.assertEqual(self.endpoints[PROFILE.key_id].attempts, [])

    def test_share_neither_stored_nor_logged(self):
        """
        Three rotations on a version-3 connection, two of them primed,
        leave in the state file the profile with the last key and nothing
        else, and no share the server sent for a next rotation shows in
        the file or in any log event.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.start()
        protocol, transport = self.rotate_once()
        for _ in range(2):
            self.reactor.advance(INTERVAL)
            pump(protocol, transport, self.server)
        self.assertEqual(self.server.generation, 3)
        self.assertEqual(
            load_state(self.path).profiles[USER],
            rotated_profile(self.server, self.reactor.seconds()),
        )
        with open(self.path, encoding="utf-8") as handle:
            stored = handle.read()
        shown = repr(list(observer))
        self.assertEqual(len(self.server.shares), 3)
        for form in secret_forms(*self.server.shares):
            self.assertNotIn(form, stored)
            self.assertNotIn(form, shown)

    def test_reconnects_with_latest_key(self):
        """
        A dropped connection is made again after a back-off, and the new
        connection presents the latest stored key.
        """
        self.start()
        protocol, _ = self.rotate_once()
        protocol.connectionLost(Failure(internet_error.ConnectionLost()))
        endpoint = self.endpoints[PROFILE.key_id]
        self.assertEqual(endpoint.attempts, [])
        self.reactor.advance(2.0)
        protocol, transport = endpoint.accept()
        transport.clear()
        protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        self.assertIn(
            rotated_profile(self.server).key_id.encode(), transport.value()
        )

    def test_unknown_key_stops(self):
        """
        A profile whose server does not know the key stops rotating: no
        new connection however long the agent runs, until the profile in
        the state file changes.
        """
        self.server.key = bytes(32)
        self.start()
        self.rotate_once()
        self.assertEqual(
            self.outcomes,
            [(USER, RotationOutcome.UNKNOWN_KEY, PROFILE.key_id)],
        )
        self.reactor.advance(INTERVAL)
        self.reactor.advance(MAX_HOLD_OFF)
        self.assertEqual(self.endpoints[PROFILE.key_id].attempts, [])
        # Enrolled again now: its key was agreed at this time.
        again = replace(ENROLLED_AGAIN, enrolled_at=self.reactor.seconds())
        save_state(self.path, ClientState(profiles={USER: again}))
        self.reactor.advance(INTERVAL)
        self.rotate_once(ENROLLED_AGAIN.key_id)
        self.assertEqual(self.outcomes[-1][1], RotationOutcome.ROTATED)
        self.assertEqual(load_state(self.path).profiles[USER].generation, 1)

    def test_open_failed_backs_off(self):
        """
        After ROTATE_OK fails to open, the next connection waits a full
        interval, and the one after twice as long.
        """
        self.start(fingerprint=OTHER_FINGERPRINT)
        endpoint = self.endpoints[PROFILE.key_id]
        self.rotate_once()
        self.reactor.advance(INTERVAL - 0.1)
        self.assertEqual(endpoint.attempts, [])
        self.reactor.advance(0.1)
        self.rotate_once()
        self.reactor.advance(2 * INTERVAL - 0.1)
        self.assertEqual(endpoint.attempts, [])
        self.reactor.advance(0.1)
        self.assertEqual(len(endpoint.attempts), 1)
        self.assertEqual(
            [outcome for _, outcome, _ in self.outcomes],
            [RotationOutcome.OPEN_FAILED] * 2,
        )
        self.assertEqual(load_state(self.path).profiles[USER], PROFILE)

    def test_copied_state(self):
        """
        A copy of the state file on another machine (another fingerprint)
        cannot open ROTATE_OK, changes neither the copy nor the server's
        key, and the original machine goes on rotating.
        """
        copy = os.path.join(self.mktemp(), "client.json")
        os.makedirs(os.path.dirname(copy))
        shutil.copy(self.path, copy)
        self.start(path=copy, fingerprint=OTHER_FINGERPRINT)
        self.rotate_once()
        self.assertEqual(
            self.outcomes,
            [(USER, RotationOutcome.OPEN_FAILED, PROFILE.key_id)],
        )
        self.assertEqual((self.server.key, self.server.generation), (K0, 0))
        self.assertEqual(load_state(copy).profiles[USER], PROFILE)
        self.start()
        self.rotate_once()
        self.assertEqual(self.outcomes[-1][1], RotationOutcome.ROTATED)
        self.assertEqual(
            load_state(self.path).profiles[USER], rotated_profile(self.server, self.reactor.seconds())
        )

    def test_profile_changed_during_rotation(self):
        """
        A profile enrolled again while a rotation runs is not overwritten
        by that rotation's key: the rotation ends as an error, and the
        agent moves on to the profile the file now holds.
        """
        self.start()
        protocol, transport = self.endpoints[PROFILE.key_id].accept()
        save_state(self.path, ClientState(profiles={USER: ENROLLED_AGAIN}))
        pump(protocol, transport, self.server)
        self.assertEqual(self.outcomes[-1][1], RotationOutcome.ERROR)
        self.assertEqual(load_state(self.path).profiles[USER], ENROLLED_AGAIN)
        self.reactor.advance(INTERVAL)
        endpoint = self.endpoints[ENROLLED_AGAIN.key_id]
        self.assertEqual(len(endpoint.attempts), 1)

    def test_removed_profile(self):
        """
        A profile removed from the state file stops rotating at the next
        reading of the file: its connection is closed.
        """
        self.start()
        protocol, transport = self.rotate_once()
        save_state(self.path, ClientState())
        self.reactor.advance(INTERVAL)
        self.assertTrue(transport.disconnecting)

    def test_stop(self):
        """
        Stopping the agent closes the rotation connections.
        """
        agent = self.start()
        _, transport = self.rotate_once()
        agent.stopService()
        self.assertTrue(transport.disconnecting)

    def test_no_profiles(self):
        """
        Without enrolled profiles the agent connects nowhere.
        """
        save_state(self.path, ClientState())
        self.start()
        self.reactor.advance(INTERVAL)
        self.assertEqual(self.endpoints, {})


class TapRotationTests(SynchronousTestCase):
    def test_rotation_interval(self):
        """
        C{--rotation-interval} defaults to a minute and takes seconds up to
        an hour.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["rotation-interval"], 60.0)
        options = tap.Options()
        options.parseOptions(["--rotation-interval", "90"])
        self.assertEqual(options["rotation-interval"], 90.0)
        for value in ("0", "3601", "soon"):
            self.assertRaises(
                usage.UsageError,
                tap.Options().parseOptions,
                ["--rotation-interval", value],
            )
