"""
The request deadline of the HTTP listeners facing the network, over real
loopback sockets: a client trickling its request a byte at a time, never
idle for long, is closed by the verification API and by the web console
alike, while a prompt client on the same listener is answered.  The
deadline is configured short, and the reactor's own time passes.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from suto_server.settings import HttpLimits, Listeners
from tests.support.server import make_server

#: The deadline the listeners are given: short, so the test is quick.
DEADLINE = 0.5

#: A trickling client sends a byte this often.
TRICKLE = 0.05

#: What a trickling client sends, a byte at a time: longer to send than
#: the deadline, however it is cut.
SLOW = b"GET / HTTP/1.1\r\nHost: suto\r\nX-Slow: " + b"x" * 200


class _Client(Protocol):
    """
    A client recording what it got and when it was closed.
    """

    def __init__(self) -> None:
        self.received = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class SlowClientTests(TestCase):
    @defer.inlineCallbacks
    def start(self, name: str):
        """
        Start a server whose listener C{name} (C{api} or C{console}) is on
        a loopback port, with a deadline of L{DEADLINE}.

        @return: the port.
        """
        listeners = Listeners(
            **{name: TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")}
        )
        server = make_server(
            reactor, listeners=listeners, http=HttpLimits(request_deadline=DEADLINE)
        )
        server.startService()
        self.addCleanup(server.stopService)
        port = yield server.listeners[-1].listening
        return port.getHost().port

    @defer.inlineCallbacks
    def connect(self, port: int):
        client = _Client()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        yield endpoint.connect(Factory.forProtocol(lambda: client))
        self.addCleanup(lambda: client.transport.abortConnection())
        return client

    @defer.inlineCallbacks
    def trickled_closed(self, name: str):
        """
        On listener C{name}, a trickling client is closed at the deadline,
        unanswered, and a prompt one is answered.
        """
        port = yield self.start(name)
        slow = yield self.connect(port)
        began = reactor.seconds()
        sent = 0
        for byte in SLOW:
            if slow.closed.called:
                break
            slow.transport.write(bytes([byte]))
            sent += 1
            yield deferLater(reactor, TRICKLE, lambda: None)
        yield slow.closed
        self.assertLess(sent, len(SLOW))
        self.assertGreaterEqual(reactor.seconds() - began, DEADLINE)
        self.assertEqual(slow.received, b"")
        prompt = yield self.connect(port)
        prompt.transport.write(b"GET / HTTP/1.0\r\n\r\n")
        yield prompt.closed
        self.assertTrue(prompt.received.startswith(b"HTTP/1.0 "))

    def test_api(self):
        """
        The verification API closes a trickling client.
        """
        return self.trickled_closed("api")

    def test_console(self):
        """
        The web console closes a trickling client.
        """
        return self.trickled_closed("console")
