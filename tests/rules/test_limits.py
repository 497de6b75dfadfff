"""
The connection limits: the pure rules with explicit times, the gate with a
task.Clock and recording metrics, and the server's protocol and TLS factory
refusing or dropping connections.
"""

from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from suto_server import tap
from suto_server.core import wire
from suto_server.core.throttle import OncePerInterval
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.metrics import ServerMetrics
from suto_server.net.refusals import RefusingTLSFactory
from suto_server.phases.classic import ClassicRules
from suto_server.phases.connection import ServerFactory
from suto_server.rules.enrollment import DEFAULT_MAX_ATTEMPTS
from suto_server.rules.limits import (
    OPEN_GATE,
    PENALISED_EVENTS,
    ConnectionGate,
    Limits,
    MaxStartups,
    Penalties,
    source_key,
)
from suto_server.rules.rendezvous import Outcome, Rendezvous, Verdict
from suto_server.store.records import AuditEvent


class SourceKeyTests(SynchronousTestCase):
    def test_ipv4(self):
        """
        An IPv4 address is its own source, mapped into IPv6 or not.
        """
        self.assertEqual(source_key("192.0.2.7"), "192.0.2.7")
        self.assertEqual(source_key("::ffff:192.0.2.7"), "192.0.2.7")

    def test_ipv6_by_64(self):
        """
        Every IPv6 address of one /64 is the same source; another /64 is
        another source.
        """
        self.assertEqual(source_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(source_key("2001:db8::ffff:1"), "2001:db8::/64")
        self.assertNotEqual(source_key("2001:db8:0:1::1"), "2001:db8::/64")

    def test_not_an_address(self):
        """
        A peer that is not an IP address (or no peer) is no source at all.
        """
        self.assertIsNone(source_key(None))
        self.assertIsNone(source_key("/run/suto/admin.sock"))


class MaxStartupsTests(SynchronousTestCase):
    def test_parse(self):
        """
        C{START:RATE:FULL} and a single C{N} (meaning C{N:100:N}) parse;
        the round trip through C{str} gives the same value back.
        """
        self.assertEqual(MaxStartups.parse("10:30:100"), MaxStartups(10, 30, 100))
        self.assertEqual(MaxStartups.parse("50"), MaxStartups(50, 100, 50))
        self.assertEqual(MaxStartups.parse(str(MaxStartups())), MaxStartups())

    def test_parse_refuses(self):
        """
        Malformed or inconsistent values are refused with L{ValueError}.
        """
        for text in ["", "a:b:c", "1:2", "10:30:5", "0:30:10", "10:101:20", "1:2:3:4"]:
            with self.subTest(text):
                self.assertRaises(ValueError, MaxStartups.parse, text)

    def test_drop_chance(self):
        """
        Below START nothing is dropped; from START the chance rises from
        RATE percent linearly to certainty at FULL.
        """
        startups = MaxStartups(10, 30, 110)
        self.assertEqual(startups.drop_chance(9), 0.0)
        self.assertAlmostEqual(startups.drop_chance(10), 0.3)
        self.assertAlmostEqual(startups.drop_chance(60), 0.65)
        self.assertEqual(startups.drop_chance(110), 1.0)


class LimitsTests(SynchronousTestCase):
    def test_per_source_cap(self):
        """
        A source holding C{max_per_source} connections is refused another
        until one closes; other sources are unaffected.
        """
        limits = Limits(max_per_source=2)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertEqual(limits.admit("192.0.2.1", 0), "per_source")
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        limits.closed("192.0.2.1", settled=False)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertEqual(limits.connections("192.0.2.1"), 2)

    def test_per_source_off(self):
        """
        C{max_per_source=0} puts no limit on one source.
        """
        limits = Limits(max_per_source=0, startups=MaxStartups(1000, 100, 1000))
        for _ in range(100):
            self.assertIsNone(limits.admit("192.0.2.1", 0))

    def test_startups_full(self):
        """
        At FULL starting connections every new one is refused, whatever
        its source; settling or closing one makes room again.
        """
        limits = Limits(startups=MaxStartups(2, 100, 2), random=lambda: 0.99)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        self.assertEqual(limits.admit("192.0.2.3", 0), "startups")
        limits.settled()
        self.assertIsNone(limits.admit("192.0.2.3", 0))
        self.assertEqual(limits.starting, 2)
        limits.closed("192.0.2.1", settled=True)
        self.assertEqual(limits.starting, 2)
        limits.closed("192.0.2.2", settled=False)
        self.assertEqual(limits.starting, 1)

    def test_startups_random_early_drop(self):
        """
        Between START and FULL the refusal follows the random draw against
        the drop chance.
        """
        draws = [0.5, 0.1]
        limits = Limits(startups=MaxStartups(1, 30, 100), random=lambda: draws.pop(0))
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        # Drop chance 0.3 at one starting: 0.5 passes, 0.1 is refused.
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        self.assertGreater(limits.startups.drop_chance(2), 0.3)
        self.assertEqual(limits.admit("192.0.2.3", 0), "startups")

    def test_one_failure_forgiven(self):
        """
        A penalty below the minimum is recorded but not enforced.
        """
        limits = Limits(penalties=Penalties(authfail=5, min=15))
        limits.penalise("192.0.2.1", 5, now=100)
        self.assertIsNone(limits.admit("192.0.2.1", 101))

    def test_run_of_failures_refused_then_decays(self):
        """
        Failures faster than their penalty decays reach the minimum: the
        source is refused until the accumulated penalty has run out, then
        admitted again and forgotten.
        """
        limits = Limits(penalties=Penalties(min=15))
        for now in (100, 101, 102):
            limits.penalise("192.0.2.1", 5, now)
        # 13 seconds are left at 102: not yet enforced.
        self.assertIsNone(limits.admit("192.0.2.1", 102))
        limits.penalise("192.0.2.1", 5, 103)
        # Expiry 100 + 4 * 5 = 120.
        self.assertEqual(limits.admit("192.0.2.1", 119), "penalty")
        self.assertEqual(limits.penalised(119), 1)
        self.assertIsNone(limits.admit("192.0.2.1", 120))
        self.assertEqual(limits.penalised(120), 0)

    def test_default_penalties_hear_every_enrollment_attempt(self):
        """
        With the default penalties, the quick failures of all but the last
        attempt of an enrollment window leave the source admitted, so its
        last attempt is heard; the last failure gets it refused.
        """
        limits = Limits()
        for _ in range(DEFAULT_MAX_ATTEMPTS - 1):
            limits.penalise("192.0.2.9", limits.penalties.authfail, 100.0)
        self.assertFalse(limits.refused_for_penalty("192.0.2.9", 100.0))
        limits.penalise("192.0.2.9", limits.penalties.authfail, 100.0)
        self.assertTrue(limits.refused_for_penalty("192.0.2.9", 100.0))

    def test_penalty_capped(self):
        """
        However many failures a source piles up, it is refused for at most
        the maximum from its latest failure.
        """
        limits = Limits(penalties=Penalties(min=15, max=60))
        for _ in range(1000):
            limits.penalise("192.0.2.1", 5, now=0)
        self.assertEqual(limits.admit("192.0.2.1", 59), "penalty")
        self.assertIsNone(limits.admit("192.0.2.1", 60))

    def test_zero_penalty_off(self):
        """
        A misdeed whose penalty is 0 leaves no trace.
        """
        limits = Limits()
        limits.penalise("192.0.2.1", 0, now=0)
        self.assertEqual(limits.penalised(0), 0)
        self.assertFalse(limits.refused_for_penalty("192.0.2.1", 0))

    def test_penalty_table_bounded(self):
        """
        Once C{max_sources} sources have a live penalty, a new source's
        penalty is not recorded (the caller is told); once they decay,
        there is room again.
        """
        limits = Limits(penalties=Penalties(min=1, max_sources=2))
        self.assertTrue(limits.penalise("192.0.2.1", 5, 0))
        self.assertTrue(limits.penalise("192.0.2.2", 5, 0))
        self.assertFalse(limits.penalise("192.0.2.3", 5, 0))
        self.assertTrue(limits.penalise("192.0.2.1", 5, 0))
        self.assertIsNone(limits.admit("192.0.2.3", 1))
        self.assertTrue(limits.penalise("192.0.2.3", 5, 20))
        self.assertEqual(limits.admit("192.0.2.3", 21), "penalty")

    def test_unknown_source_not_limited(self):
        """
        A peer that is no IP source counts as starting but has no
        per-source count nor penalty.
        """
        limits = Limits(max_per_source=1)
        self.assertIsNone(limits.admit(None, 0))
        self.assertIsNone(limits.admit(None, 0))
        self.assertEqual(limits.starting, 2)


class OncePerIntervalTests(SynchronousTestCase):
    def test_once_per_interval(self):
        """
        The first event of a key is due; repeats within the interval are
        kept quiet, and the next due one says how many were.
        """
        reports = OncePerInterval(60)
        self.assertEqual(reports.due("a", 0), 0)
        self.assertIsNone(reports.due("a", 10))
        self.assertIsNone(reports.due("a", 59))
        self.assertEqual(reports.due("b", 59), 0)
        self.assertEqual(reports.due("a", 60), 2)
        self.assertIsNone(reports.due("a", 61))

    def test_bounded(self):
        """
        It remembers at most C{max_keys} keys, forgetting the oldest.
        """
        reports = OncePerInterval(60, max_keys=2)
        reports.due("a", 0)
        reports.due("b", 0)
        reports.due("c", 0)
        self.assertEqual(len(reports._reported), 2)
        self.assertEqual(reports.due("a", 1), 0)


def _event(event, source):
    return AuditEvent(0.0, event, "alice", source, "reason", ())


class GateTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.metrics = ServerMetrics()
        self.limits = Limits(max_per_source=1, penalties=Penalties(authfail=5, min=15))
        self.gate = ConnectionGate(
            self.clock, self.limits, self.metrics, login_grace=30, log_interval=60
        )

    def rejected(self, reason):
        return self.metrics.registry.get_sample_value(
            "suto_connections_rejected_total", {"reason": reason}
        )

    def test_refusal_counted_and_logged_once(self):
        """
        Every refusal is counted under its reason, but a source is logged
        once per interval, the next line saying how many were kept quiet.
        """
        self.assertIsNotNone(self.gate.admit("192.0.2.1"))
        with capturedLogs() as events:
            for _ in range(5):
                self.assertIsNone(self.gate.admit("192.0.2.1"))
            self.clock.advance(60)
            self.assertIsNone(self.gate.admit("192.0.2.1"))
        self.assertEqual(self.rejected("per_source"), 6)
        warnings = [e for e in events if e["log_level"] is LogLevel.warn]
        self.assertEqual([e["quiet"] for e in warnings], [0, 4])
        self.assertEqual({e["source"] for e in warnings}, {"192.0.2.1"})

    def test_penalty_left(self):
        """
        C{penalty_left} is the seconds a source stays refused for its
        penalty, and L{None} for a source not refused for one (or none).
        """
        for _ in range(3):
            self.gate.failed("192.0.2.9")
        self.clock.advance(2)
        self.assertEqual(self.gate.penalty_left("192.0.2.9"), 13)
        self.assertIsNone(self.gate.penalty_left("192.0.2.10"))
        self.assertIsNone(self.gate.penalty_left(None))
        self.clock.advance(13)
        self.assertIsNone(self.gate.penalty_left("192.0.2.9"))

    def test_failures_penalise(self):
        """
        Failed enrollments, rotations and classic answers from a source
        add up to a refusal of its next connection; so do failed
        reconnections and attempts for a blacklisted profile.
        """
        self.gate.audited(_event("enrollment_failed", "192.0.2.9"))
        self.gate.audited(_event("rotation_failed", "192.0.2.9"))
        self.gate.authenticated(
            None, Outcome("alice", Verdict.REJECTED, "192.0.2.9", "wrong")
        )
        self.assertIsNone(self.gate.admit("192.0.2.9"))
        self.assertEqual(self.rejected("penalty"), 1)
        self.assertEqual(self.gate.penalised(), 1)
        self.gate.audited(_event("reconnect_failed", "192.0.2.10"))
        self.gate.audited(_event("blacklisted_refused", "192.0.2.10"))
        self.gate.audited(_event("reconnect_failed", "192.0.2.10"))
        self.assertIsNone(self.gate.admit("192.0.2.10"))

    def test_udp_sourced_events_never_penalise(self):
        """
        Events whose source may come from a UDP packet (a forged check
        answer, a move), successes and server-side errors never penalise:
        a forged source address must not get a victim banned.
        """
        self.assertNotIn("check_forged", PENALISED_EVENTS)
        self.assertNotIn("location_changed", PENALISED_EVENTS)
        for _ in range(10):
            self.gate.audited(_event("check_forged", "192.0.2.9"))
            self.gate.audited(_event("location_changed", "192.0.2.9"))
            self.gate.authenticated(
                None, Outcome("alice", Verdict.ERROR, "192.0.2.9", "hash pool saturated")
            )
            self.gate.authenticated(None, Outcome("alice", Verdict.ACCEPTED, "192.0.2.9"))
        self.assertIsNotNone(self.gate.admit("192.0.2.9"))

    def test_grace(self):
        """
        A ticket not settled within the login grace time calls its expiry;
        timing out then counts a C{grace} drop and penalises the source.
        """
        ticket = self.gate.admit("192.0.2.1")
        expired = []
        ticket.start(lambda: expired.append(True))
        self.clock.advance(29)
        self.assertEqual(expired, [])
        self.clock.advance(1)
        self.assertEqual(expired, [True])
        ticket.timed_out()
        ticket.closed()
        self.assertEqual(self.rejected("grace"), 1)
        self.assertEqual(self.limits.starting, 0)
        self.assertEqual(self.limits.connections("192.0.2.1"), 0)

    def test_rotated_settles(self):
        """
        A rotation completing settles the ticket: its latency is observed,
        the grace timer is cancelled, it no longer counts as starting, and
        a later silence timeout is no misdeed.
        """
        ticket = self.gate.admit("192.0.2.1")
        ticket.start(lambda: self.fail("expired"))
        ticket.rotation_started()
        self.clock.advance(0.25)
        ticket.rotated()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.limits.starting, 0)
        self.assertEqual(
            self.metrics.registry.get_sample_value("suto_rotation_duration_seconds_sum"),
            0.25,
        )
        ticket.timed_out()
        ticket.closed()
        ticket.closed()
        self.assertEqual(self.rejected("grace"), 0)
        self.assertEqual(self.limits.starting, 0)

    def refusing(self):
        """
        @return: the list of C{(now, host, source, until)} the gate reports when a
            source starts being refused, filled as it reports.
        """
        reported = []
        self.gate = ConnectionGate(
            self.clock,
            self.limits,
            login_grace=30,
            on_refusing=lambda *args: reported.append(args),
        )
        return reported

    def test_refusing_reported_once(self):
        """
        The failure that brings a source's penalty to the minimum reports
        when its refusals start and when its penalty will have decayed;
        neither more failures nor its refused connections report again.
        """
        reported = self.refusing()
        self.gate.failed("192.0.2.9")
        self.gate.failed("192.0.2.9")
        self.assertEqual(reported, [])
        self.gate.failed("192.0.2.9")
        self.assertEqual(reported, [(1000, "192.0.2.9", "192.0.2.9", 1015)])
        self.gate.failed("192.0.2.9")
        self.assertIsNone(self.gate.admit("192.0.2.9"))
        self.assertEqual(len(reported), 1)

    def test_refusing_again_after_decay(self):
        """
        Once the penalty has decayed, a new run of failures is reported
        again; another source is reported on its own.
        """
        reported = self.refusing()
        for _ in range(3):
            self.gate.failed("192.0.2.9")
        self.clock.advance(15)
        self.assertIsNotNone(self.gate.admit("192.0.2.9"))
        for host in ["192.0.2.9", "2001:db8::1"] * 3:
            self.gate.failed(host)
        self.assertEqual(
            reported,
            [
                (1000, "192.0.2.9", "192.0.2.9", 1015),
                (1015, "192.0.2.9", "192.0.2.9", 1030),
                (1015, "2001:db8::1", "2001:db8::/64", 1030),
            ],
        )

    def test_refusing_after_grace(self):
        """
        Connections dropped for the login grace time penalise their
        source too, and are reported by the host they came from.
        """
        reported = self.refusing()
        for _ in range(2):
            ticket = self.gate.admit("192.0.2.1")
            ticket.timed_out()
            ticket.closed()
        self.assertEqual(reported, [(1000, "192.0.2.1", "192.0.2.1", 1020)])

    def test_grace_off(self):
        """
        A login grace of 0 arms no timer.
        """
        gate = ConnectionGate(self.clock, Limits(), login_grace=0)
        gate.admit("192.0.2.1").start(lambda: None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_full_penalty_table_logged(self):
        """
        A penalty lost to a full table is logged (once per interval).
        """
        gate = ConnectionGate(self.clock, Limits(penalties=Penalties(max_sources=1)))
        with capturedLogs() as events:
            for host in ["192.0.2.1", "192.0.2.2", "192.0.2.3"]:
                gate.failed(host)
        self.assertEqual(len([e for e in events if "quiet" in e]), 1)


class ProtocolGateTests(SynchronousTestCase):
    """
    The server protocol with a gate, over a StringTransport.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.metrics = ServerMetrics()
        self.gate = ConnectionGate(
            self.clock, Limits(max_per_source=1), self.metrics, login_grace=30
        )
        self.factory = ServerFactory(
            framing=wire.Framing.FRAMED,
            clock=self.clock,
            classic=ClassicRules(
                Rendezvous(self.clock),
                Portal(SutoRealm(), [SaltedChallengeChecker({}, None)]),
                lambda user: None,
                lambda: "$6$ABCDEFGHIJKLMNOP",
            ),
            exchange_timeout=10,
            gate=self.gate,
        )

    def connect(self, host="192.0.2.1"):
        address = IPv4Address("TCP", host, 40000)
        protocol = self.factory.buildProtocol(address)
        if protocol is None:
            return None, None
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_refused_connection_gets_no_protocol(self):
        """
        A connection over a limit gets no protocol at all, so the listener
        closes it before reading a byte.
        """
        protocol, transport = self.connect()
        self.assertIsNotNone(protocol)
        self.assertEqual(self.connect(), (None, None))
        protocol.connectionLost(None)
        self.assertIsNotNone(self.connect()[0])

    def test_slow_sender_dropped_at_login_grace(self):
        """
        A peer that keeps its connection busy one byte at a time (so the
        silence timeout never fires) is still dropped with
        C{SUTO_ERROR_TIMEOUT} when the login grace time is up.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            wire.encode(wire.Version(wire.PROTOCOL_VERSION), wire.Framing.FRAMED)
        )
        trickle = b"SUTO_C_ENROLL_" + b"a" * 20
        for second in range(29):
            self.clock.advance(1)
            protocol.dataReceived(trickle[second : second + 1])
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertIn(wire.ERROR_TIMEOUT.encode(), transport.value())
        self.assertEqual(
            self.metrics.registry.get_sample_value(
                "suto_connections_rejected_total", {"reason": "grace"}
            ),
            1,
        )

    def test_open_gate_by_default(self):
        """
        A factory given no gate admits every connection.
        """
        factory = ServerFactory(
            framing=wire.Framing.FRAMED,
            clock=self.clock,
            classic=ClassicRules(Rendezvous(self.clock), None, lambda user: None, lambda: ""),
        )
        self.assertIs(factory.gate, OPEN_GATE)
        for _ in range(3):
            self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 1)))


class RefusingTLSFactoryTests(SynchronousTestCase):
    def test_refused_before_handshake(self):
        """
        When the wrapped factory refuses, the TLS factory builds nothing,
        so no TLS handshake is made for a refused peer.
        """

        class Refusing:
            def buildProtocol(self, addr):
                return None

            def doStart(self):
                pass

        @implementer(IOpenSSLServerConnectionCreator)
        class Creator:
            def serverConnectionForTLS(self, protocol):
                raise AssertionError("no TLS connection is made")

        factory = RefusingTLSFactory(Creator(), False, Refusing())
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 1)))


class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        With no options the limits are the documented defaults.
        """
        options = tap.Options()
        options.parseOptions([])
        limits = options.capacity
        self.assertEqual(limits.max_per_source, 32)
        self.assertEqual(limits.startups, MaxStartups(100, 30, 1000))
        self.assertEqual(limits.penalties, Penalties(3.0, 10.0, 15.0, 600.0, 65536))
        self.assertEqual(
            (options["login-grace"], options["limit-log-interval"], options["hash-pending"]),
            (30.0, 60.0, 256),
        )
        self.assertIsNone(options["metrics-listen"])

    def test_given(self):
        """
        Each limit option reaches the rules.
        """
        options = tap.Options()
        options.parseOptions(
            ["--max-per-source", "0", "--max-startups", "10:50:20",
             "--penalty-authfail", "0", "--penalty-grace", "3",
             "--penalty-min", "20", "--penalty-max", "60", "--penalty-sources", "10"]
        )
        limits = options.capacity
        self.assertEqual(limits.max_per_source, 0)
        self.assertEqual(limits.startups, MaxStartups(10, 50, 20))
        self.assertEqual(limits.penalties, Penalties(0.0, 3.0, 20.0, 60.0, 10))

    def test_refused(self):
        """
        Inconsistent or out-of-range limits are usage errors.
        """
        for argv in [
            ["--max-per-source", "-1"],
            ["--max-startups", "20:30:10"],
            ["--penalty-min", "100", "--penalty-max", "50"],
            ["--penalty-sources", "0"],
            ["--hash-pending", "0"],
            ["--login-grace", "-1"],
        ]:
            with self.subTest(argv):
                self.assertRaises(UsageError, tap.Options().parseOptions, argv)
