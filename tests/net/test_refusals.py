# -*- test-case-name: tests.net.test_refusals -*-
"""
Tests for L{suto_server.net.refusals}: the budget of penalty notices, and
a penalised source told its penalty over TLS, in memory.
"""

from __future__ import annotations

import datetime
import os

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from suto_server.net import certificate
from suto_server.net.refusals import (
    NOTICE_TIMEOUT,
    HandshakeLog,
    IListenerWitness,
    PenaltyNotices,
    RefusingTLSFactory,
)
from suto_server.net.tls import ReloadableServerTLS
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.limits import source_key

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


class PenaltyNoticesTests(SynchronousTestCase):
    """
    L{PenaltyNotices} bounds the TLS handshakes spent on refused sources.
    """

    def test_once_per_source(self):
        """
        One source is sent a notice at most once per C{every} seconds.
        """
        notices = PenaltyNotices(per_second=10, every=5)
        self.assertTrue(notices.allow("192.0.2.7", 100.0))
        self.assertFalse(notices.allow("192.0.2.7", 104.9))
        self.assertTrue(notices.allow("192.0.2.8", 104.9))
        self.assertTrue(notices.allow("192.0.2.7", 105.0))

    def test_per_second(self):
        """
        All sources together get at most C{per_second} notices in a second.
        """
        notices = PenaltyNotices(per_second=2, every=5)
        allowed = [notices.allow(f"192.0.2.{n}", 100.5) for n in range(4)]
        self.assertEqual(allowed, [True, True, False, False])
        self.assertTrue(notices.allow("192.0.2.9", 101.0))

    def test_bounded_memory(self):
        """
        When C{max_sources} are remembered, a new source is refused a
        notice until one may be forgotten.
        """
        notices = PenaltyNotices(per_second=100, every=5, max_sources=2)
        self.assertTrue(notices.allow("192.0.2.1", 100.0))
        self.assertTrue(notices.allow("192.0.2.2", 100.0))
        self.assertFalse(notices.allow("192.0.2.3", 101.0))
        self.assertTrue(notices.allow("192.0.2.3", 105.0))


class FakeGate:
    """
    A connection gate that refuses with a penalty of C{left} seconds (none
    when L{None}).
    """

    def __init__(self, left):
        self.left = left
        self.clock = Clock()
        self.clock.advance(1000)

    def penalty_left(self, host):
        return self.left

    def source(self, host):
        return source_key(host)


class RefusingFactory(Factory):
    """
    Refuses every connection, as its gate decided.
    """

    def __init__(self, gate):
        self.gate = gate

    def buildProtocol(self, addr):
        return None


class Reader(Protocol):
    """
    Keeps what the server sends.
    """

    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data


class PenaltyNoticeTests(SynchronousTestCase):
    """
    A penalised source completes the TLS handshake with the server it
    trusts and reads one line saying how long to wait.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        key_path, cert_path, _ = certificate.ensure_self_signed(
            folder, "suto.test", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert_path, "rb") as handle:
            self.trusted = Certificate.loadPEM(handle.read())
        self.tls = ReloadableServerTLS(key_path, cert_path)

    def factory(self, left):
        self.gate = FakeGate(left)
        return RefusingTLSFactory(self.tls, False, RefusingFactory(self.gate))

    def test_told(self):
        """
        The device's TLS client trusts the server and reads
        C{SUTO_ERROR_PENALTY_<seconds left>}, then the connection closes.
        """
        server = self.factory(17.2).buildProtocol(PEER)
        reader = Reader()
        client = TLSMemoryBIOFactory(
            optionsForClientTLS("localhost", trustRoot=self.trusted),
            True,
            Factory.forProtocol(lambda: reader),
        ).buildProtocol(None)
        pump = iosim.connect(
            server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client)
        )
        pump.flush()
        self.assertEqual(reader.received, b"SUTO_ERROR_PENALTY_18\r\n")
        self.assertEqual(self.gate.clock.getDelayedCalls(), [])

    def test_not_penalised(self):
        """
        A source refused for another reason is closed before TLS.
        """
        self.assertIsNone(self.factory(None).buildProtocol(PEER))

    def test_budget(self):
        """
        Past the budget, a penalised source is closed before TLS too.
        """
        factory = self.factory(17.2)
        self.assertIsNotNone(factory.buildProtocol(PEER))
        self.assertIsNone(factory.buildProtocol(PEER))

    def test_budget_per_source(self):
        """
        Two addresses of one IPv6 /64 are one source: once one was told,
        the other is closed before TLS too, so a /64 stepping through its
        addresses cannot take the whole budget.
        """
        factory = self.factory(17.2)
        first = IPv6Address("TCP", "2001:db8::1", 4433)
        second = IPv6Address("TCP", "2001:db8::2", 4433)
        self.assertIsNotNone(factory.buildProtocol(first))
        self.assertIsNone(factory.buildProtocol(second))

    def test_handshake_never_finished(self):
        """
        A penalised peer that does not finish the handshake is dropped
        after L{NOTICE_TIMEOUT}.
        """
        server = self.factory(17.2).buildProtocol(PEER)
        transport = StringTransport()
        server.makeConnection(transport)
        self.gate.clock.advance(NOTICE_TIMEOUT - 0.1)
        self.assertFalse(transport.disconnecting)
        self.gate.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)


class HandshakeLogTests(SynchronousTestCase):
    """
    L{HandshakeLog} logs the failed handshakes of a listener no
    authentication waits on through the gate's paced logging: once per
    source per interval.
    """

    def setUp(self):
        self.clock = Clock()
        self.witness = HandshakeLog(
            "verification API", ConnectionGate(self.clock, log_interval=60).paced
        )

    def test_interface(self):
        self.assertTrue(verifyObject(IListenerWitness, self.witness))

    def test_paced_per_source(self):
        """
        A source refused again and again within the interval is logged
        once, then again after it with the count kept quiet; another source
        is logged at once.  Refusals by the factory are left to it.
        """
        with capturedLogs() as events:
            for _ in range(50):
                self.witness.handshake_failed("192.0.2.7", "certificate verify failed")
            self.witness.handshake_failed("192.0.2.8", "certificate verify failed")
            self.witness.refused("192.0.2.9")
            self.clock.advance(61)
            self.witness.handshake_failed("192.0.2.7", "certificate verify failed")
        self.assertEqual(
            [(e["listener"], e["source"], e["quiet"]) for e in events],
            [
                ("verification API", "192.0.2.7", 0),
                ("verification API", "192.0.2.8", 0),
                ("verification API", "192.0.2.7", 49),
            ],
        )
        self.assertIn("certificate verify failed", formatEvent(events[0]))


@implementer(IListenerWitness)
class RecordingWitness:
    """
    Keeps the failed handshakes a listener tells of.
    """

    def __init__(self):
        self.failed = []

    def refused(self, host):
        pass

    def handshake_failed(self, host, reason):
        self.failed.append((host, reason))


class FirstReadTests(SynchronousTestCase):
    """
    A listener's connection notes that its peer began a handshake on its
    first read only; later reads go straight to TLS.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        key_path, cert_path, _ = certificate.ensure_self_signed(
            folder, "suto.test", datetime.datetime.now(datetime.timezone.utc)
        )
        self.witness = RecordingWitness()
        factory = RefusingTLSFactory(
            ReloadableServerTLS(key_path, cert_path),
            False,
            Factory.forProtocol(Reader),
            self.witness,
        )
        self.server = factory.buildProtocol(PEER)
        self.server.makeConnection(StringTransport())

    def test_later_reads(self):
        """
        After the first read the connection has no read of its own: the
        class's C{dataReceived} takes every later one.
        """
        self.assertIn("dataReceived", vars(self.server))
        self.server.dataReceived(b"\x16\x03\x01")
        self.assertNotIn("dataReceived", vars(self.server))

    def test_failed_on_a_later_read(self):
        """
        A handshake begun on the first read and failed on a later one is
        told to the witness with OpenSSL's reason.
        """
        self.server.dataReceived(b"\x16\x03\x01")
        self.server.dataReceived(b"\x00\x05garbage")
        self.server.connectionLost(Failure(ConnectionDone()))
        [(host, reason)] = self.witness.failed
        self.assertEqual(host, "192.0.2.7")
        self.assertEqual(reason, "unexpected message")

    def test_closed_after_beginning(self):
        """
        A peer that began the handshake and closed the connection is told
        as one that gave up on it.
        """
        self.server.dataReceived(b"\x16\x03\x01")
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(
            self.witness.failed,
            [("192.0.2.7", "the peer closed the connection during the handshake")],
        )
