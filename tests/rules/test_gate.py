"""
The connection gate with a task.Clock and recording metrics, and the
server's protocol and TLS factory refusing or dropping connections.
"""

import math

from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from suto_server.core import wire
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.metrics import ServerMetrics
from suto_server.net.refusals import RefusingTLSFactory
from suto_server.phases.classic import ClassicRules
from suto_server.phases.connection import ServerFactory
from suto_server.rules.expected import ExpectedSources, KnownLocations
from suto_server.rules.gate import OPEN_GATE, PENALISED_EVENTS, ConnectionGate
from suto_server.rules.limits import Limits, MaxStartups, Penalties
from suto_server.rules.rendezvous import Outcome, Rendezvous, Verdict
from suto_server.store.records import AuditEvent
from tests.support.coroutines import result_of


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
                lambda user: succeed(None),
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
            classic=ClassicRules(
                Rendezvous(self.clock), None, lambda user: succeed(None), lambda: ""
            ),
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


class FloodTests(SynchronousTestCase):
    """
    A flood of unexpected connections fills the starting cap; the gate
    still admits those the server waits for, within the reserve.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock)
        # Just under certainty: admitted until FULL, refused from there.
        self.limits = Limits(
            startups=MaxStartups(10, 30, 20), random=lambda: 0.999
        )
        self.gate = ConnectionGate(self.clock, self.limits, login_grace=30)
        self.gate.expect(
            ExpectedSources(
                self.rendezvous, KnownLocations([("alice", "198.51.100.7")])
            )
        )
        for index in range(20):
            self.assertIsNotNone(self.gate.admit(f"10.0.{index // 10}.{index}"))
        self.assertEqual(self.limits.starting, 20)

    def test_unexpected_refused(self):
        """
        With the cap full, a connection from an address nobody waits for
        is refused.
        """
        self.assertIsNone(self.gate.admit("203.0.113.5"))

    def test_pending_request_target_admitted(self):
        """
        With the cap full, the target of a pending classic request gets
        in; after the request is claimed, it is unexpected again.
        """
        self.assertIsNone(self.gate.admit("192.0.2.7"))
        self.rendezvous.open("bob", ["192.0.2.7"])
        self.assertIsNotNone(self.gate.admit("192.0.2.7"))
        result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.assertIsNone(self.gate.admit("192.0.2.7"))

    def test_network_target_admitted(self):
        """
        With the cap full, any address of a pending broadcast request's
        network gets in.
        """
        self.rendezvous.open("bob", ["192.0.2.0/24"])
        self.assertIsNotNone(self.gate.admit("192.0.2.200"))

    def test_profile_location_admitted(self):
        """
        With the cap full, an enrolled profile's registered location gets
        in, and follows the profile when the audit log records its move.
        """
        self.assertIsNotNone(self.gate.admit("198.51.100.7"))
        self.gate.audited(
            AuditEvent(0.0, "location_changed", "alice", "198.51.100.8", "", ())
        )
        self.assertIsNone(self.gate.admit("198.51.100.7"))
        self.assertIsNotNone(self.gate.admit("198.51.100.8"))

    def test_reserve_bounded(self):
        """
        Expected connections take at most the reserve (START, here 10)
        past the cap; the next is refused until one settles or closes.
        """
        tickets = [self.gate.admit("198.51.100.7") for _ in range(10)]
        self.assertNotIn(None, tickets)
        self.assertIsNone(self.gate.admit("198.51.100.7"))
        tickets[0].closed()
        self.assertIsNotNone(self.gate.admit("198.51.100.7"))

    def test_expected_source_penalised(self):
        """
        Penalties apply to an expected source as to any other.
        """
        penalties = self.gate.limits.penalties
        for _ in range(math.ceil(penalties.min / penalties.authfail)):
            self.gate.failed("198.51.100.7")
        self.assertIsNone(self.gate.admit("198.51.100.7"))


class UnansweredTests(SynchronousTestCase):
    """
    Connections that ask for the classic challenge with no authentication
    waiting: refused, logged once per source per interval, never
    penalised.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.limits = Limits(
            max_per_source=0, startups=MaxStartups(10**6, 100, 10**6)
        )
        self.gate = ConnectionGate(
            self.clock, self.limits, login_grace=30, log_interval=60
        )
        self.factory = ServerFactory(
            framing=wire.Framing.FRAMED,
            clock=self.clock,
            classic=ClassicRules(Rendezvous(self.clock), None, None, None),
            gate=self.gate,
        )

    def ask(self, host):
        """
        Connect from C{host}, ask for a salt, and let the server close the
        connection.

        @return: what the server wrote.
        """
        address = IPv4Address("TCP", host, 40000)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"SUTO_VERSION_2\r\nSUTO_C_GET_SALTA\r\n")
        protocol.connectionLost(None)
        return transport.value()

    def test_flood_from_one_source_logs_once(self):
        """
        5,000 such connections from one source within one interval write
        at most two log lines (here one, as the first line is at once and
        the next is only due after the interval); each is still refused,
        and the source is not penalised.
        """
        with capturedLogs() as events:
            for _ in range(5000):
                self.assertEqual(
                    self.ask("192.0.2.1"),
                    b"SUTO_VERSION_2\r\nSUTO_ERROR_NO_REQUEST\r\n",
                )
                self.clock.advance(0.0001)
        self.assertLessEqual(len(events), 2)
        self.assertEqual(
            [(e["source"], e["reason"], e["quiet"]) for e in events],
            [("192.0.2.1", "no_request", 0)],
        )
        self.assertFalse(self.limits.refused_for_penalty("192.0.2.1", 1.0))
        self.assertEqual(self.limits.starting, 0)

    def test_next_line_counts_the_quiet(self):
        """
        The first line after the interval says how many alike were kept
        quiet; another source has a line of its own.
        """
        with capturedLogs() as events:
            for _ in range(3):
                self.ask("192.0.2.1")
            self.ask("192.0.2.2")
            self.clock.advance(60)
            self.ask("192.0.2.1")
        self.assertEqual(
            [(e["source"], e["quiet"]) for e in events],
            [("192.0.2.1", 0), ("192.0.2.2", 0), ("192.0.2.1", 2)],
        )
        self.assertEqual(events[0]["why"], "no authentication is waiting for it")
