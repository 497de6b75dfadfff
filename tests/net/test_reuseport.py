# -*- test-case-name: tests.net.test_reuseport -*-
"""
Tests for L{suto_server.net.reuseport} and the C{reusePort} argument of
the TLS listener: listeners sharing one real loopback port, as several
processes on one host do.
"""

import datetime
import os

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.net import certificate
from suto_server.net.endpoint import server_endpoint
from suto_server.net.reuseport import ReusePortEndpoint
from suto_server.net.tls import TLSConfigurationError


class _Counting(Factory):
    """
    Counts the connections it is given, and fires C{arrived} (if given)
    with itself at the first.
    """

    protocol = Protocol

    def __init__(self, arrived=None):
        self.built = 0
        self._arrived = arrived

    def buildProtocol(self, address):
        self.built += 1
        if self._arrived is not None and not self._arrived.called:
            self._arrived.callback(self)
        return super().buildProtocol(address)


class ReusePortTests(TestCase):
    """
    L{ReusePortEndpoint} on the loopback interface.
    """

    async def listen(self, endpoint, factory=None):
        """
        @return: the port C{endpoint} listens on, closed after the test.
        """
        port = await endpoint.listen(factory or _Counting())
        self.addCleanup(port.stopListening)
        return port

    async def test_shared_port(self):
        """
        Two listeners bind one port, and a connection to it reaches one
        of them.
        """
        arrived = Deferred()
        factories = [_Counting(arrived), _Counting(arrived)]
        first = await self.listen(
            ReusePortEndpoint(reactor, 0, interface="127.0.0.1"), factories[0]
        )
        number = first.getHost().port
        second = await self.listen(
            ReusePortEndpoint(reactor, number, interface="127.0.0.1"), factories[1]
        )
        self.assertEqual(second.getHost().port, number)
        client = await TCP4ClientEndpoint(reactor, "127.0.0.1", number).connect(
            Factory.forProtocol(Protocol)
        )
        self.addCleanup(client.transport.loseConnection)
        self.assertIn(await arrived, factories)
        self.assertEqual(sum(factory.built for factory in factories), 1)

    async def test_port_taken(self):
        """
        A port a listener holds without sharing it cannot be joined: the
        listen fails with L{CannotListenError}.
        """
        taken = await self.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
        with self.assertRaises(CannotListenError):
            await ReusePortEndpoint(
                reactor, taken.getHost().port, interface="127.0.0.1"
            ).listen(_Counting())

    async def test_tls_listeners_share(self):
        """
        Two C{ssl:} listeners with C{reusePort=yes} serve one port.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        key, cert, _ = certificate.ensure_self_signed(
            folder, "suto.example", datetime.datetime.now(datetime.timezone.utc)
        )
        description = (
            "ssl:{port}:privateKey={key}:certKey={cert}"
            ":interface=127.0.0.1:reusePort=yes"
        )
        first = await self.listen(
            server_endpoint(reactor, description.format(port=0, key=key, cert=cert))
        )
        number = first.getHost().port
        second = await self.listen(
            server_endpoint(reactor, description.format(port=number, key=key, cert=cert))
        )
        self.assertEqual(second.getHost().port, number)


class ReusePortArgumentTests(SynchronousTestCase):
    """
    The C{reusePort} argument's values.
    """

    def test_yes_or_no(self):
        """
        C{reusePort} takes C{yes} or C{no} only.
        """
        with self.assertRaises(TLSConfigurationError) as caught:
            server_endpoint(reactor, "ssl:0:privateKey=k.pem:reusePort=maybe")
        self.assertEqual(str(caught.exception), "reusePort must be yes or no")
