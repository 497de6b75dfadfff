"""
Tests for L{bench.admin_client}: how many connections its requests take
on a real UNIX socket.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import TestCase
from twisted.web import resource, server

from bench.admin_client import AdminClient


class _Status(resource.Resource):
    """
    Answers C{GET /v1/status} with an empty JSON object.
    """

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return b"{}"


class _Counting(WrappingFactory):
    """
    Counts the connections made to the site it wraps.
    """

    def __init__(self, site) -> None:
        super().__init__(site)
        self.connections = 0

    def buildProtocol(self, addr):
        self.connections += 1
        return super().buildProtocol(addr)


class AdminClientTests(TestCase):
    """
    L{AdminClient} keeps its connections for the next request, or takes a
    new one for each as C{suto-admin} does.
    """

    def setUp(self):
        path = os.path.join(self.mktemp(), "admin.sock")
        os.makedirs(os.path.dirname(path))
        self.path = path
        self.factory = _Counting(server.Site(_Status()))
        port = reactor.listenUNIX(path, self.factory)
        self.addCleanup(port.stopListening)

    @inlineCallbacks
    def statuses(self, **options):
        """
        Ask for the status three times, one after the other.

        @return: (through the L{Deferred}) the statuses answered.
        """
        client = AdminClient(reactor, self.path, 1, **options)
        codes = []
        try:
            for _ in range(3):
                code, answer = yield client.status()
                self.assertEqual(answer, {})
                codes.append(code)
        finally:
            yield client.close()
        return codes

    @inlineCallbacks
    def test_kept_alive(self):
        """
        By default one connection serves every request.
        """
        self.assertEqual((yield self.statuses()), [200, 200, 200])
        self.assertEqual(self.factory.connections, 1)

    @inlineCallbacks
    def test_connection_per_request(self):
        """
        With C{kept_alive=False} each request has a connection of its own.
        """
        self.assertEqual((yield self.statuses(kept_alive=False)), [200, 200, 200])
        self.assertEqual(self.factory.connections, 3)
