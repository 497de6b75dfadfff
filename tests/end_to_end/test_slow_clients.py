"""
The request deadline of the daemon's HTTP listeners, over real loopback
and UNIX sockets: a client trickling its request a byte at a time, never
idle for long, is closed by the verification API, the web console, the
metrics listener and the admin socket alike, while a prompt client on the
same listener is answered.  The deadline is configured short, and the
reactor's own time passes.  The metrics listener and the admin socket
also hold no more connections at once than their bounds.
"""

from __future__ import annotations

import os

from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    UNIXClientEndpoint,
    quoteStringArgument,
    serverFromString,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from suto_server.admin.api import ADMIN_CONNECTIONS
from suto_server.metrics import METRICS_PER_SOURCE
from suto_server.settings import HttpLimits, Listeners
from tests.support.folders import socket_folder
from tests.support.server import make_server

#: The deadline the listeners are given: short, so the test is quick.
DEADLINE = 0.5

#: The deadline while a test holds connections idle: longer than the
#: test takes, so that only the connection bound closes any.
HELD_DEADLINE = 30.0

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
    def start(self, name: str, deadline: float = DEADLINE):
        """
        Start a server whose listener C{name} (C{api}, C{console},
        C{metrics}, or C{admin} on a UNIX socket) is on a loopback port,
        with a request deadline of C{deadline}.

        @return: a client endpoint reaching it.
        """
        if name == "admin":
            path = os.path.join(socket_folder(self, "suto-slow-"), "admin.sock")
            listening = serverFromString(
                reactor, f"unix:{quoteStringArgument(path)}:mode=600"
            )
        else:
            listening = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        server = make_server(
            reactor,
            listeners=Listeners(**{name: listening}),
            http=HttpLimits(request_deadline=deadline),
        )
        server.startService()
        self.addCleanup(server.stopService)
        port = yield server.listeners[-1].listening
        if name == "admin":
            return UNIXClientEndpoint(reactor, path)
        return TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)

    @defer.inlineCallbacks
    def connect(self, endpoint):
        client = _Client()
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

    def test_metrics(self):
        """
        The metrics listener closes a trickling client.
        """
        return self.trickled_closed("metrics")

    def test_admin_socket(self):
        """
        The admin socket closes a trickling client.
        """
        return self.trickled_closed("admin")

    @defer.inlineCallbacks
    def held_at_most(self, name: str, most: int):
        """
        Listener C{name} holds C{most} idle connections from one client
        at once: the next is closed unanswered (at once, not at the
        request deadline, which is long here), and once one of those
        goes, a new one is answered.
        """
        endpoint = yield self.start(name, deadline=HELD_DEADLINE)
        held = []
        for _ in range(most):
            held.append((yield self.connect(endpoint)))
        began = reactor.seconds()
        refused = yield self.connect(endpoint)
        yield refused.closed
        self.assertLess(reactor.seconds() - began, HELD_DEADLINE)
        self.assertEqual(refused.received, b"")
        self.assertEqual([client.closed.called for client in held], [False] * most)
        held[0].transport.loseConnection()
        yield held[0].closed
        # The listener hears of the close in its next turn.
        yield deferLater(reactor, 0.05, lambda: None)
        again = yield self.connect(endpoint)
        again.transport.write(b"GET /v1/none HTTP/1.0\r\n\r\n")
        yield again.closed
        self.assertTrue(again.received.startswith(b"HTTP/1.0 404 "))

    def test_metrics_connections(self):
        """
        The metrics listener holds at most its per-source bound of
        connections from one address.
        """
        return self.held_at_most("metrics", METRICS_PER_SOURCE)

    def test_admin_connections(self):
        """
        The admin socket holds at most its bound of connections.
        """
        return self.held_at_most("admin", ADMIN_CONNECTIONS)
