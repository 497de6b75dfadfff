"""
Tests for the agent's fallback to protocol version 2 against a server of
the release before (L{suto_client.version_fallback} as the
L{suto_client.rotation.RotationFactory} uses it, docs/PROTOCOL.md §9.2):
such a server answers C{SUTO_VERSION_3} with C{SUTO_ERROR_BAD_VERSION},
and the agent connects again at once announcing 2, rotates in two round
trips for an hour, then tries 3 again.  Over a
L{StringTransport} and a L{Clock}, against the fake server built from the
key schedule, made to speak version 2 alone.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from suto_client.rotation_machine import ClientRotation
from suto_client.rotation_outcome import Report, RotationOutcome
from suto_client.version_fallback import (
    FALLBACK_SPELL,
    FALLBACK_VERSION,
    VersionFallback,
)
from suto_server.core import wire
from suto_server.core.machine import Close, Send
from tests.support.client_rotation import (
    INTERVAL,
    K0,
    PROFILE,
    SERVER,
    USER,
    ConversationFixture,
    FactoryFixture,
    FakeServer,
    rotated_profile,
)


class VersionFallbackTests(SynchronousTestCase):
    """
    L{VersionFallback}, the version one profile's connections announce.
    """

    def setUp(self):
        self.clock = Clock()
        self.fallback = VersionFallback(self.clock)

    def test_own_version(self):
        """
        Without a refusal, and after a report that refused nothing, the
        connections announce this release's version.
        """
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)
        self.assertFalse(self.fallback.refused(None))
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)

    def test_spell(self):
        """
        A refusal of version 3 falls back to 2 for exactly
        L{FALLBACK_SPELL} seconds.
        """
        self.assertEqual(FALLBACK_VERSION, 2)
        self.assertTrue(self.fallback.refused(wire.PROTOCOL_VERSION))
        self.assertEqual(self.fallback.version(), FALLBACK_VERSION)
        self.clock.advance(FALLBACK_SPELL - 0.5)
        self.assertEqual(self.fallback.version(), FALLBACK_VERSION)
        self.clock.advance(0.5)
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)

    def test_nothing_older(self):
        """
        A refusal of version 2 leaves nothing older to announce: no
        fallback starts, and one under way runs its course unchanged.
        """
        self.assertFalse(self.fallback.refused(FALLBACK_VERSION))
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)
        self.fallback.refused(wire.PROTOCOL_VERSION)
        self.clock.advance(FALLBACK_SPELL / 2)
        self.assertFalse(self.fallback.refused(FALLBACK_VERSION))
        self.clock.advance(FALLBACK_SPELL / 2)
        self.assertEqual(self.fallback.version(), wire.PROTOCOL_VERSION)


class AnnouncedVersionTests(ConversationFixture, SynchronousTestCase):
    """
    The conversation announces the version it is given, and says in its
    report, not only in its reason, that the server refused it.
    """

    def test_announces_given_version(self):
        """
        A rotation made to announce version 2 sends C{SUTO_VERSION_2}, and
        by default this release's version.
        """
        rotation = ClientRotation(
            PROFILE, self.fingerprint, self.draws, FALLBACK_VERSION
        )
        self.assertEqual(rotation.start(), [Send(wire.Version(FALLBACK_VERSION))])
        self.assertEqual(
            self.rotation.start(), [Send(wire.Version(wire.PROTOCOL_VERSION))]
        )

    def test_newer_answer_is_violation(self):
        """
        A server that answers version 3 to an announced 2 breaks the
        protocol: the rotation ends as an error and closes.
        """
        rotation = ClientRotation(
            PROFILE, self.fingerprint, self.draws, FALLBACK_VERSION
        )
        rotation.start()
        self.assertEqual(
            rotation.receive(wire.Version(wire.PROTOCOL_VERSION)),
            [
                Report(
                    RotationOutcome.ERROR,
                    PROFILE.key_id,
                    0,
                    "the server speaks version 3",
                ),
                Close(),
            ],
        )

    def test_refusal_reported(self):
        """
        C{SUTO_ERROR_BAD_VERSION} in answer to the version ends the
        rotation as an error whose report names the refused version.
        """
        self.rotation.start()
        [report, close] = self.rotation.receive(wire.Error(wire.ERROR_BAD_VERSION))
        self.assertEqual(close, Close())
        self.assertEqual(report.outcome, RotationOutcome.ERROR)
        self.assertEqual(report.refused_version, wire.PROTOCOL_VERSION)
        self.assertEqual(
            report.reason,
            "the server does not speak the version announced (BAD_VERSION)",
        )

    def test_refusal_only_before_answer(self):
        """
        A C{SUTO_ERROR_BAD_VERSION} after the server confirmed a version
        refuses no version: it is an error like any other, as is any
        other error before the answer.
        """
        self.rotation.start()
        self.rotation.receive(wire.Version(wire.PROTOCOL_VERSION))
        [report, _] = self.rotation.receive(wire.Error(wire.ERROR_BAD_VERSION))
        self.assertEqual(
            (report.outcome, report.refused_version), (RotationOutcome.ERROR, None)
        )
        rotation = ClientRotation(PROFILE, self.fingerprint, self.draws)
        rotation.start()
        [report, _] = rotation.receive(wire.Error(wire.ERROR_BUSY))
        self.assertIsNone(report.refused_version)


class FallbackTests(FactoryFixture, SynchronousTestCase):
    """
    A L{RotationFactory} against a server of the release before.
    """

    def setUp(self):
        super().setUp()
        self.server = FakeServer(version=FALLBACK_VERSION, only=True)
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def announced(self) -> list[int]:
        """
        The versions the client announced, one per connection, in order.
        """
        return [
            message.version
            for message in self.server.received
            if isinstance(message, wire.Version)
        ]

    def rotate_through_spell(self) -> None:
        """
        From a refusal, rotate every interval on version-2 connections,
        as the agent does, until one second before the fallback ends.
        """
        start = self.clock.seconds()
        self.factory.retry_delay(1)
        while self.clock.seconds() + INTERVAL < start + FALLBACK_SPELL:
            self.connection()
            self.clock.advance(INTERVAL)
        self.connection()
        self.clock.advance(start + FALLBACK_SPELL - 1 - self.clock.seconds())
        self.connection()

    def fallbacks(self) -> list:
        """
        The warnings that the server speaks only version 2.
        """
        return [event for event in self.observer if "refused" in event]

    def test_falls_back_at_once(self):
        """
        A C{SUTO_ERROR_BAD_VERSION} to version 3 is followed at once by a
        connection announcing 2, which rotates in two round trips and
        commits; the refusal is not reported as a rotation.
        """
        self.connection()
        self.assertEqual(self.reports, [])
        self.assertEqual(self.factory.retry_delay(1), 0.0)
        self.connection()
        self.assertEqual(self.announced(), [wire.PROTOCOL_VERSION, FALLBACK_VERSION])
        self.assertEqual(
            [type(message) for message in self.server.received[2:]],
            [wire.Rotate, wire.RotateAck],
        )
        self.assertEqual(self.server.generation, 1)
        new = rotated_profile(self.server, self.clock.seconds())
        self.assertEqual(self.stored, [(PROFILE, new)])
        self.assertEqual(
            [report.outcome for report in self.reports], [RotationOutcome.ROTATED]
        )

    def test_later_rotations_two_round_trips(self):
        """
        Each later rotation on the fallback connection is the two-message
        form too: a version-2 server sends no share.
        """
        self.connection()
        self.factory.retry_delay(1)
        self.connection()
        self.clock.advance(INTERVAL)
        self.connection()
        self.assertEqual(self.server.generation, 2)
        self.assertEqual(self.server.shares, [])
        self.assertNotIn(
            wire.RotatePrimed, [type(message) for message in self.server.received]
        )

    def test_no_failure_counted(self):
        """
        The refusal says nothing about the key: it grows no back-off,
        stores nothing, and marks nothing offline.  A connection attempt
        that fails after it waits what the first failure waits.
        """
        self.connection()
        self.assertEqual(self.factory.retry_delay(1), 0.0)
        self.assertEqual(self.factory.retry_delay(1), 1.0)
        self.assertEqual(self.stored, [])
        self.assertIsNone(self.factory.profile.offline_since)
        self.assertEqual(self.factory.profile, PROFILE)

    def test_own_version_again_after_an_hour(self):
        """
        The agent announces 2 for L{FALLBACK_SPELL} seconds (an hour),
        rotating all along, then 3 again; a server upgraded meanwhile
        primes its rotations again.
        """
        self.assertEqual(FALLBACK_SPELL, 3600.0)
        self.connection()
        self.rotate_through_spell()
        self.assertEqual(self.server.generation, 61)
        announced = self.announced()
        self.assertEqual(
            announced, [wire.PROTOCOL_VERSION] + [FALLBACK_VERSION] * 61
        )
        self.clock.advance(1)
        self.server.version, self.server.only = wire.PROTOCOL_VERSION, False
        self.connection()
        self.assertEqual(self.announced()[len(announced) :], [wire.PROTOCOL_VERSION])
        self.assertEqual(len(self.server.shares), 1)
        self.assertEqual(self.reports[-1].outcome, RotationOutcome.ROTATED)
        self.assertEqual(
            [event["log_level"] for event in self.fallbacks()], [LogLevel.warn]
        )

    def test_refused_again_falls_back_again(self):
        """
        A server still of the release before when the hour is up refuses
        3 again: the agent falls back for another hour, at once, and warns
        again, once.
        """
        self.connection()
        self.rotate_through_spell()
        self.clock.advance(1)
        self.connection()
        self.assertEqual(self.factory.retry_delay(1), 0.0)
        self.connection()
        self.assertEqual(
            self.announced()[-3:],
            [FALLBACK_VERSION, wire.PROTOCOL_VERSION, FALLBACK_VERSION],
        )
        self.assertEqual(len(self.fallbacks()), 2)
        self.assertEqual(
            {report.outcome for report in self.reports}, {RotationOutcome.ROTATED}
        )
        self.assertEqual(len(self.reports), 62)

    def test_refused_version_2_is_error(self):
        """
        C{SUTO_ERROR_BAD_VERSION} in answer to version 2 is a real error:
        reported, logged as a failed rotation, and counted in the
        back-off; the agent does not fall back further.
        """
        self.server.version = 1
        self.connection()
        self.factory.retry_delay(1)
        self.connection()
        [report] = self.reports
        self.assertEqual(
            (report.outcome, report.refused_version, report.answered),
            (RotationOutcome.ERROR, FALLBACK_VERSION, True),
        )
        self.assertEqual(self.factory.retry_delay(1), 2.0)
        self.connection()
        self.assertEqual(
            self.announced(),
            [wire.PROTOCOL_VERSION, FALLBACK_VERSION, FALLBACK_VERSION],
        )
        self.assertEqual(len(self.fallbacks()), 1)
        errors = [event for event in self.observer if event.get("outcome") == "error"]
        self.assertEqual(len(errors), 2)

    def test_warning(self):
        """
        The fallback is logged once, at warn, naming the server, the user
        and the versions, and no key.
        """
        self.connection()
        self.factory.retry_delay(1)
        self.connection()
        [event] = self.fallbacks()
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            (event["server_host"], event["server_port"], event["user"]),
            (SERVER, 2021, USER),
        )
        self.assertEqual(
            (event["refused"], event["version"]),
            (wire.PROTOCOL_VERSION, FALLBACK_VERSION),
        )
        self.assertNotIn("outcome", event)
        shown = repr(list(self.observer))
        for key in (K0, self.factory.profile.key):
            self.assertNotIn(key.hex(), shown)
            self.assertNotIn(repr(key), shown)
