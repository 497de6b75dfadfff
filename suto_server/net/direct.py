# -*- test-case-name: tests.net.test_direct -*-
"""
Writes that leave in the turn they are made: a TCP server transport that
sends at once when nothing is waiting to be sent.

Twisted's TCP transport buffers every write and sends it when the reactor
next finds the socket writable: it asks epoll to watch for writability
(one C{epoll_ctl}), wakes on the next poll, sends, and stops watching (a
second C{epoll_ctl}), dispatching the event through its logging context
on the way.  A SUTO device connection writes one TLS record per turn of
its conversation (a rotation's C{SUTO_ROTATE_DONE_NEXT_}), into a
socket whose send buffer is empty nearly always, so all of that is paid
for a send that could have been made on the spot: profiled, about one
tenth of the server's CPU per rotation went to its writes.

L{DirectWriteServer.write} sends at once when the transport is connected,
not closing, and holds nothing unsent.  Whatever the kernel does not take
(a full socket buffer) and any error go through Twisted's buffer exactly
as before, so the order of bytes, the pausing of producers and the
handling of a broken connection stay Twisted's: the reactor's next write
attempt meets the same error and closes the connection as it would have.
The bytes on the wire are the same; only when they leave changes.

Since a write now leaves at once, two writes of one turn are two segments
where Twisted's buffer made one (the TLS session tickets that close the
handshake, then the first answer): the transport sets C{TCP_NODELAY} so
that Nagle's algorithm does not hold the second until the first is
acknowledged, a delayed acknowledgement away.  The connection's protocol
already gathers each turn's answers into one write
(L{suto_server.phases.connection.ServerProtocol}).

L{direct_writes} makes a listening port build these transports; it
leaves alone the ports of other reactors (C{MemoryReactor} in tests).
"""

from __future__ import annotations

from twisted.internet import tcp


class DirectWriteServer(tcp.Server):
    """
    A TCP server transport whose writes leave at once when nothing is
    waiting, with Nagle's algorithm off.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setTcpNoDelay(True)

    def write(self, data: bytes) -> None:
        if (
            data
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and self.offset == len(self.dataBuffer)
        ):
            try:
                sent = self.socket.send(data)
            except OSError:
                # Would block, or the connection broke: Twisted's write
                # path finds out again and handles it as it always has.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)


def direct_writes(port):
    """
    Make a listening TCP port's connections L{DirectWriteServer}s.

    @param port: what a TCP endpoint's C{listen} gave.
    @return: C{port}, so this can be a L{Deferred}'s callback.
    """
    if isinstance(port, tcp.Port):
        port.transport = DirectWriteServer
    return port
