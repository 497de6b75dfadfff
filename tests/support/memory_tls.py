"""
Two pyOpenSSL connections over memory BIOs, pumped by hand: a TLS
conversation in one test with no sockets and no reactor.

L{handshake} drives the server the way Twisted's C{TLSMemoryBIOProtocol}
does, calling C{do_handshake} until it returns, rather than letting the
first C{recv} finish it.
"""

from __future__ import annotations

from OpenSSL import SSL


def move(source: SSL.Connection, sink: SSL.Connection) -> bool:
    """
    Move what C{source} wrote for its peer into C{sink}.

    @return: whether there was anything.
    """
    try:
        data = source.bio_read(65536)
    except SSL.WantReadError:
        return False
    sink.bio_write(data)
    return True


def handshake(server: SSL.Connection, client: SSL.Connection) -> None:
    """
    Run the handshake until both sides' C{do_handshake} returned.  What
    was written in the turn that finished it stays unread: in TLS 1.3, the
    server's session tickets in its send BIO.
    """
    pending = [client, server]
    while pending:
        for side in list(pending):
            try:
                side.do_handshake()
            except SSL.WantReadError:
                continue
            pending.remove(side)
        if pending:
            while move(server, client) or move(client, server):
                pass
