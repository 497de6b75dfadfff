"""
Tests for L{suto_server.net.bio_release}: a server connection swaps its
memory BIOs for new ones once its handshake is over and both are empty,
and loses no byte doing so.

The connections are pumped by hand in memory (L{tests.support.memory_tls}),
the server's send BIO read out after each turn as Twisted's
C{TLSMemoryBIOProtocol} does, and once through Twisted itself.
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

from suto_server.net import certificate
from suto_server.net.bio_release import ReleasingConnection
from suto_server.net.tls import ReloadableServerTLS
from tests.support.memory_tls import handshake, move

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
    L{ReleasingConnection} gives back its handshake's BIOs at the first
    read of its send BIO that finds them both empty after the handshake.
    """

    def setUp(self) -> None:
        tls = _server_tls(self.mktemp())
        self.server = tls.serverConnectionForTLS(None)
        self.server.set_accept_state()
        self.client = _client()
        self.bios = (self.server._into_ssl, self.server._from_ssl)

    def current(self) -> tuple:
        return (self.server._into_ssl, self.server._from_ssl)

    def test_listener_connections(self) -> None:
        """
        The TLS listener makes its connections of this kind.
        """
        self.assertIsInstance(self.server, ReleasingConnection)

    def test_kept_during_the_handshake(self) -> None:
        """
        While the handshake runs, however often the send BIO is read, the
        BIOs stay the same.
        """
        with self.assertRaises(SSL.WantReadError):
            self.client.do_handshake()
        move(self.client, self.server)
        with self.assertRaises(SSL.WantReadError):
            self.server.do_handshake()
        self.assertTrue(move(self.server, self.client))
        with self.assertRaises(SSL.WantReadError):
            self.server.bio_read(65536)
        self.assertEqual(self.current(), self.bios)

    def test_released_once_drained(self) -> None:
        """
        Once the handshake is done, reading out the session tickets that
        close it leaves both BIOs empty, and they are replaced; records
        then pass both ways over the new ones.
        """
        handshake(self.server, self.client)
        self.assertEqual(self.current(), self.bios)
        self.assertTrue(move(self.server, self.client))
        new = self.current()
        self.assertNotIn(new[0], self.bios)
        self.assertNotIn(new[1], self.bios)

        self.client.send(RECORD)
        move(self.client, self.server)
        self.assertEqual(self.server.recv(4096), RECORD)
        self.server.send(RECORD[::-1])
        move(self.server, self.client)
        self.assertEqual(self.client.recv(4096), RECORD[::-1])
        self.assertEqual(self.current(), new)

    def test_waits_for_unread_bytes(self) -> None:
        """
        A record received and not yet read keeps the BIOs until it is
        read: it is then read whole, and the next read of the send BIO
        releases them.
        """
        handshake(self.server, self.client)
        self.client.send(RECORD)
        move(self.client, self.server)
        self.assertTrue(move(self.server, self.client))
        self.assertEqual(self.current(), self.bios)
        self.assertEqual(self.server.recv(4096), RECORD)
        with self.assertRaises(SSL.WantReadError):
            self.server.bio_read(65536)
        self.assertNotIn(self.server._into_ssl, self.bios)

    def test_partial_record_kept(self) -> None:
        """
        Half a record received when the BIOs are released is kept by
        OpenSSL, and completed by the rest arriving in the new BIO.
        """
        handshake(self.server, self.client)
        self.client.send(RECORD)
        record = self.client.bio_read(65536)
        self.server.bio_write(record[:10])
        with self.assertRaises(SSL.WantReadError):
            self.server.recv(4096)
        self.assertTrue(move(self.server, self.client))
        self.assertNotIn(self.server._into_ssl, self.bios)
        self.server.bio_write(record[10:])
        self.assertEqual(self.server.recv(4096), RECORD)

    def test_kept_after_the_end_of_stream(self) -> None:
        """
        Once told the peer's stream ended, the connection keeps its BIOs,
        which carry that end: reading reports it rather than asking for
        more bytes.
        """
        handshake(self.server, self.client)
        self.server.bio_shutdown()
        self.assertTrue(move(self.server, self.client))
        self.assertEqual(self.current(), self.bios)
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
