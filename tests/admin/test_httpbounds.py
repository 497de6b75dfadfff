"""
Tests for L{suto_server.admin.httpbounds}: the request deadline and the
connection bounds of the HTTP listeners facing the network.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource, server

from suto_server.admin.httpbounds import (
    REQUEST_DEADLINE,
    ConnectionBounds,
    DeadlineSite,
)
from suto_server.settings import HttpLimits

#: The idle timeout of the sites under test: past the deadline, so that
#: only the deadline closes a connection that is never idle for long.
IDLE = 60

#: A client sends a byte this often: never idle for long.
TRICKLE = 1.0

HEAD = b"GET / HTTP/1.1\r\nHost: suto\r\n\r\n"


class _Hello(resource.Resource):
    """
    Answers every request at once, or holds it in L{held} when asked to.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.held = []

    def render(self, request):
        if self.hold:
            self.held.append(request)
            return server.NOT_DONE_YET
        return b"hello"


def connect(site, host="192.0.2.7"):
    """
    @return: a channel of C{site} on a L{StringTransport} from C{host}.
    """
    address = IPv4Address("TCP", host, 40000)
    channel = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    return channel, transport


class RequestDeadlineTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.root = _Hello()
        self.site = DeadlineSite(self.root, self.clock, IDLE)
        self.channel, self.transport = connect(self.site)

    def trickle(self, data: bytes) -> None:
        """
        Send C{data} a byte every L{TRICKLE} seconds.
        """
        for byte in data:
            self.channel.dataReceived(bytes([byte]))
            self.clock.advance(TRICKLE)

    def test_default(self):
        """
        The daemon's default deadline is the module's.
        """
        self.assertEqual(HttpLimits().request_deadline, REQUEST_DEADLINE)

    def test_trickled_head_closed(self):
        """
        A client sending its request's head a byte a second, never idle
        for longer, is closed when the deadline from the connection's
        start passes, and is never answered.
        """
        self.trickle(HEAD[: int(REQUEST_DEADLINE / TRICKLE) - 1])
        self.assertFalse(self.transport.disconnecting)
        self.trickle(HEAD[int(REQUEST_DEADLINE / TRICKLE) - 1 :][:1])
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.transport.value(), b"")

    def test_slow_body_closed(self):
        """
        A request whose head arrives at once but whose body trickles is
        closed at the deadline, however long the body said it would be.
        """
        self.channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: suto\r\nContent-Length: 100\r\n\r\n"
        )
        self.trickle(b"x" * int(REQUEST_DEADLINE / TRICKLE))
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.transport.value(), b"")

    def test_kept_alive(self):
        """
        A client making request after request on one kept-alive
        connection, each arriving in time, keeps it well past one
        deadline: the deadline starts again at the end of each answer.
        """
        for _ in range(5):
            self.clock.advance(REQUEST_DEADLINE - 1)
            self.channel.dataReceived(HEAD)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.transport.value().count(b"hello"), 5)
        self.clock.advance(REQUEST_DEADLINE)
        self.assertTrue(self.transport.disconnecting)

    def test_pipelined(self):
        """
        Requests sent together are all answered, and the deadline waits
        for the next one only after the last answer.
        """
        self.channel.dataReceived(HEAD * 3)
        self.assertEqual(self.transport.value().count(b"hello"), 3)
        self.clock.advance(REQUEST_DEADLINE - 1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)

    def test_answer_not_cut(self):
        """
        While an answer is being made there is no deadline: a slow answer
        is written whole, and the deadline starts when it ends.
        """
        self.root.hold = True
        self.channel.dataReceived(HEAD)
        self.clock.advance(REQUEST_DEADLINE * 3)
        self.assertFalse(self.transport.disconnecting)
        [request] = self.root.held
        request.write(b"late")
        request.finish()
        self.assertIn(b"late", self.transport.value())
        self.clock.advance(REQUEST_DEADLINE - 1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)

    def test_closed_connection(self):
        """
        A connection that closes leaves no timer behind.
        """
        self.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class _Arguments(resource.Resource):
    """
    Answers with the names of the request's arguments.
    """

    isLeaf = True

    def render_POST(self, request):
        return repr(sorted(request.args)).encode("ascii")


def post(site, content_type: bytes, body: bytes) -> StringTransport:
    """
    @return: the transport of a connection to C{site} that sent one POST
        of C{body} as C{content_type}.
    """
    channel, transport = connect(site)
    channel.dataReceived(
        b"POST / HTTP/1.1\r\nHost: suto\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    return transport


class FormTests(SynchronousTestCase):
    """
    A L{DeadlineSite} parses POST bodies sent as forms unless told not to.
    """

    FORM = b"application/x-www-form-urlencoded"
    MULTIPART = b"multipart/form-data; boundary=x"

    def site(self, **options):
        return DeadlineSite(_Arguments(), Clock(), IDLE, **options)

    def test_forms_by_default(self):
        """
        By default, as in Twisted, a form's fields become arguments, and a
        malformed multipart body is answered 400 by Twisted itself before
        any resource sees it.
        """
        site = self.site()
        self.assertTrue(post(site, self.FORM, b"user=alice").value().endswith(b"[b'user']"))
        transport = post(site, self.MULTIPART, b"garbage")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertTrue(transport.disconnecting)

    def test_no_forms(self):
        """
        With C{forms=False} no body is parsed before the resource: it
        gets no arguments from a form, and answers a malformed multipart
        body itself.
        """
        site = self.site(forms=False)
        for content_type, body in ((self.FORM, b"user=alice"), (self.MULTIPART, b"garbage")):
            transport = post(site, content_type, body)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
            self.assertTrue(transport.value().endswith(b"[]"))
            self.assertFalse(transport.disconnecting)


class ConnectionBoundsTests(SynchronousTestCase):
    def bounds(self, per_source: int, total: int) -> ConnectionBounds:
        clock = Clock()
        factory = ConnectionBounds(
            DeadlineSite(_Hello(), clock, IDLE),
            clock,
            per_source=per_source,
            total=total,
        )
        factory.doStart()
        return factory

    def test_per_source(self):
        """
        One source may hold C{per_source} connections at once; the next
        is refused (built as L{None}) until one of them closes; another
        source is not affected.
        """
        factory = self.bounds(per_source=2, total=10)
        first, _ = connect(factory, "192.0.2.50")
        connect(factory, "192.0.2.50")
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.50", 3)))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.51", 1)))
        first.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.50", 4)))

    def test_total(self):
        """
        The listener holds at most C{total} connections from all sources:
        the next is refused, whatever its source, and one is admitted
        again once one of them closes.
        """
        factory = self.bounds(per_source=2, total=3)
        held = [connect(factory, f"192.0.2.{n}")[0] for n in range(3)]
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.99", 1)))
        held[0].connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(connect(factory, "192.0.2.99")[0])
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.98", 1)))
