"""
L{suto_server.net.direct}: a TCP server transport that sends at once when
nothing is waiting, and leaves everything else to Twisted's buffer.
"""

from __future__ import annotations

import socket
import struct

from twisted.internet import main, tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from suto_server.net.direct import DirectWriteServer, direct_writes


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """
    @return: both ends of a TCP connection over loopback.
    """
    with socket.create_server(("127.0.0.1", 0)) as listening:
        peer = socket.create_connection(listening.getsockname())
        ours, _ = listening.accept()
    return ours, peer


class DirectWriteServerTests(SynchronousTestCase):
    """
    The transport over one end of a loopback TCP connection, on a reactor
    that only records what it is asked to watch.
    """

    def setUp(self):
        self.reactor = MemoryReactor()
        ours, self.peer = _tcp_pair()
        self.addCleanup(self.peer.close)
        self.transport = DirectWriteServer(
            ours, Protocol(), ("127.0.0.1", 1), None, 1, self.reactor
        )
        self.addCleanup(self.transport.socket.close)
        self.peer.setblocking(False)

    def received(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(1 << 16)
            except BlockingIOError:
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def writing(self) -> bool:
        return self.transport in self.reactor.getWriters()

    def test_sent_at_once(self):
        """
        With nothing waiting, a write is on the socket when C{write}
        returns, and the reactor is not asked to watch for writability.
        """
        self.transport.write(b"SUTO_ROTATE_DONE_x\r\n")
        self.assertEqual(self.received(), b"SUTO_ROTATE_DONE_x\r\n")
        self.assertFalse(self.writing())

    def test_no_delay(self):
        """
        Nagle's algorithm is off: a turn's second write is not held until
        the first is acknowledged.
        """
        self.assertTrue(self.transport.getTcpNoDelay())

    def test_full_socket_buffered_in_order(self):
        """
        What the kernel does not take waits in Twisted's buffer, later
        writes queue behind it, and the reactor's writes deliver all of it
        in order.
        """
        self.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = bytes(range(256)) * 4000
        self.transport.write(big)
        self.assertTrue(self.writing())
        self.transport.write(b"tail")
        got = self.received()
        while self.writing():
            self.transport.doWrite()
            got += self.received()
        self.assertEqual(got, big + b"tail")

    def test_broken_connection_left_to_the_reactor(self):
        """
        A send that fails is buffered, and the reactor's write attempt
        reports the connection lost, as without direct writes.
        """
        # Closing with a zero linger resets the connection at once.
        self.peer.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.peer.close()
        self.transport.write(b"lost")
        self.assertTrue(self.writing())
        self.assertIs(self.transport.doWrite(), main.CONNECTION_LOST)

    def test_closing_uses_the_buffer(self):
        """
        Once the transport is closing, writes take Twisted's path, which
        sends them before the close.
        """
        self.transport.loseConnection()
        self.transport.write(b"last")
        self.assertEqual(self.received(), b"")
        self.transport.doWrite()
        self.assertEqual(self.received(), b"last")

    def test_empty_write(self):
        """
        Writing nothing sends nothing and watches nothing.
        """
        self.transport.write(b"")
        self.assertEqual((self.received(), self.writing()), (b"", False))


class DirectWritesTests(SynchronousTestCase):
    def test_tcp_port(self):
        """
        A listening TCP port builds L{DirectWriteServer}s.
        """
        port = tcp.Port(0, None, interface="127.0.0.1", reactor=MemoryReactor())
        self.assertIs(direct_writes(port), port)
        self.assertIs(port.transport, DirectWriteServer)

    def test_other_port(self):
        """
        Any other port (a test reactor's) is given back untouched.
        """
        port = object()
        self.assertIs(direct_writes(port), port)
