"""
Tests for L{suto_server.net.bio_release}: a server connection swaps its
memory BIOs for new ones when its handshake completes, and loses no byte
doing so.

The connections are pumped by hand in memory (L{bench.tls_footprint}'s helpers),
the server's handshake driven as Twisted's C{TLSMemoryBIOProtocol} drives
it, and once through Twisted itself.
"""

from __future__ import annotations

import datetime
import os

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from bench.tls_footprint import handshake, move
from suto_server.net import certificate
from suto_server.net.bio_release import ReleasingConnection
from suto_server.net.tls import ReloadableServerTLS

#: About as long as one of SUTO's messages.
RECORD = b"SUTO_C_ROTATE_" + b"x" * 100


def _server_tls(directory: str) -> ReloadableServerTLS:
    os.makedirs(directory)
    key, cert, _ = certificate.ensure_self_signed(
        directory, "suto.test", datetime.datetime.now(datetime.timezone.utc)
    )
    return ReloadableServerTLS(key, cert)


def _client() -> SSL.Connection:
    client = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    client.set_connect_state()
    return client


class ReleasingConnectionTests(SynchronousTestCase):
    """
    L{ReleasingConnection} moves to new BIOs when its handshake completes,
    carrying over whatever its old ones held.
    """

    def setUp(self) -> None:
        tls = _server_tls(self.mktemp())
        self.server = tls.serverConnectionForTLS(None)
        self.server.set_accept_state()
        self.client = _client()
        self.bios = (self.server._into_ssl, self.server._from_ssl)

    def assert_released(self) -> None:
        self.assertNotIn(self.server._into_ssl, self.bios)
        self.assertNotIn(self.server._from_ssl, self.bios)

    def client_finished(self) -> None:
        """
        Run the handshake up to the client's Finished, which is left in
        the client's send BIO.
        """
        with self.assertRaises(SSL.WantReadError):
            self.client.do_handshake()
        move(self.client, self.server)
        with self.assertRaises(SSL.WantReadError):
            self.server.do_handshake()
        move(self.server, self.client)
        self.client.do_handshake()

    def test_listener_connections(self) -> None:
        """
        The TLS listener makes its connections of this kind.
        """
        self.assertIsInstance(self.server, ReleasingConnection)

    def test_kept_during_the_handshake(self) -> None:
        """
        While the handshake runs, the BIOs stay the same.
        """
        self.client_finished()
        self.assertEqual((self.server._into_ssl, self.server._from_ssl), self.bios)

    def test_released_with_the_handshake(self) -> None:
        """
        The handshake completed, both BIOs are new, the session tickets
        written last reach the client, and records pass both ways.
        """
        handshake(self.server, self.client)
        self.assert_released()
        self.assertTrue(move(self.server, self.client))
        self.client.send(RECORD)
        move(self.client, self.server)
        self.assertEqual(self.server.recv(4096), RECORD)
        self.server.send(RECORD[::-1])
        move(self.server, self.client)
        self.assertEqual(self.client.recv(4096), RECORD[::-1])

    def test_unread_record_carried(self) -> None:
        """
        A record that arrived with the client's Finished is read whole
        from the new BIO.
        """
        self.client_finished()
        self.client.send(RECORD)
        move(self.client, self.server)
        self.server.do_handshake()
        self.assert_released()
        self.assertEqual(self.server.recv(4096), RECORD)

    def test_partial_record_carried(self) -> None:
        """
        Part of a record that arrived with the client's Finished is
        completed by the rest arriving in the new BIO.
        """
        self.client_finished()
        self.client.send(RECORD)
        sent = self.client.bio_read(65536)
        self.server.bio_write(sent[:-50])
        self.server.do_handshake()
        self.assert_released()
        with self.assertRaises(SSL.WantReadError):
            self.server.recv(4096)
        self.server.bio_write(sent[-50:])
        self.assertEqual(self.server.recv(4096), RECORD)

    def test_kept_after_the_end_of_stream(self) -> None:
        """
        Told the peer's stream ended before the handshake completes, the
        connection keeps its BIOs, which carry that end: reading reports
        it rather than asking for more bytes.
        """
        self.client_finished()
        move(self.client, self.server)
        self.server.bio_shutdown()
        self.server.do_handshake()
        self.assertEqual((self.server._into_ssl, self.server._from_ssl), self.bios)
        with self.assertRaises(SSL.Error) as raised:
            self.server.recv(4096)
        self.assertNotIsInstance(raised.exception, SSL.WantReadError)


class _Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class _Received(Protocol):
    def __init__(self) -> None:
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


@implementer(IOpenSSLClientConnectionCreator)
class _ClientCreator:
    def clientConnectionForTLS(self, protocol) -> SSL.Connection:
        return _client()


class TwistedTests(SynchronousTestCase):
    """
    Under Twisted's TLS protocol the BIOs are released after the
    handshake and the connection carries on.
    """

    def test_echo(self) -> None:
        """
        A connection of the listener's TLS settings has released its
        handshake's BIOs by the time it answered a first record, and
        answers the next.
        """
        clock = Clock()
        tls = _server_tls(self.mktemp())
        server_factory = TLSMemoryBIOFactory(
            tls, False, Factory.forProtocol(_Echo), clock
        )
        client_factory = TLSMemoryBIOFactory(
            _ClientCreator(), True, Factory.forProtocol(_Received), clock
        )
        client, server, pump = iosim.connectedServerAndClient(
            lambda: server_factory.buildProtocol(None),
            lambda: client_factory.buildProtocol(None),
            greet=False,
        )

        def exchange(data: bytes) -> None:
            # Twisted's TLS transport gathers small writes for a turn of
            # the clock.
            client.write(data)
            for _ in range(2):
                clock.advance(0)
                pump.flush()

        connection = server._tlsConnection
        bios = (connection._into_ssl, connection._from_ssl)
        pump.flush()
        self.assertTrue(server._handshakeDone)
        exchange(RECORD)
        self.assertEqual(client.wrappedProtocol.received, RECORD)
        self.assertNotIn(connection._into_ssl, bios)
        self.assertNotIn(connection._from_ssl, bios)
        exchange(RECORD[::-1])
        self.assertEqual(client.wrappedProtocol.received, RECORD + RECORD[::-1])
