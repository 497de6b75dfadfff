# -*- test-case-name: tests.net.test_bio_release -*-
"""
Server TLS connections that give back their handshake-sized buffers once
the handshake is over.

Twisted's C{TLSMemoryBIOProtocol} runs OpenSSL over two memory BIOs, one
that the bytes received are written into and one that the bytes to send
are read out of.  A memory BIO grows its buffer to the largest flight it
held and never shrinks it, even when it is empty: after a TLS 1.3
handshake with a post-quantum hybrid key share (C{X25519MLKEM768}, which
OpenSSL 4 negotiates by default) one holds the ClientHello (1.9 KB of
buffer) and the other the server's first flight (2.3 KB), for as long as
the connection lives.  A fleet of agents keeps its connections idle
between rotations, and every later record is a few hundred bytes, so
those 4.1 KB per connection are held for nothing (bench/RESULTS.md,
"Issue 21: what OpenSSL keeps per connection, measured again").
C{SSL_MODE_RELEASE_BUFFERS} frees OpenSSL's own record buffers, not
these, and OpenSSL offers no way to shrink a memory BIO.

L{ReleasingConnection} replaces both BIOs with new, empty ones the first
time it is read from after its handshake completed with both BIOs
drained: the send BIO is read out by Twisted after every turn, so this
happens at the end of the turn that finished the handshake, or at the
latest after the first exchange.  Nothing is in either BIO then, and
whatever OpenSSL buffered of a partial record it keeps in its own record
layer, so no byte is lost or reordered; the TLS session, its keys and
sequence numbers are the C{SSL} object's and stay as they are.  Once the
receiving side was told of the end of the stream (C{bio_shutdown}) the
BIOs are left alone, since that end is a property of the BIO.

pyOpenSSL offers no call to replace a connection's BIOs, so this sets the
three attributes its C{Connection} reads them from (C{_ssl},
C{_into_ssl}, C{_from_ssl}); C{tests/net/test_bio_release.py} fails if
pyOpenSSL changes them.
"""

from __future__ import annotations

from OpenSSL import SSL
from OpenSSL._util import ffi, lib


class ReleasingConnection(SSL.Connection):
    """
    A memory-BIO connection (made with no socket, as Twisted's TLS
    protocol makes them) that swaps its BIOs for new ones once, after the
    handshake, so that the buffers its handshake grew are freed.

    @ivar _holding: whether the handshake is done and its BIOs are still
        the ones it grew.
    """

    _holding = False

    def do_handshake(self) -> None:
        """
        Carry on with the handshake; once it is complete, release the BIOs
        at the next read of the send BIO that finds both empty.
        """
        super().do_handshake()
        self._holding = True

    def bio_read(self, bufsiz: int) -> bytes:
        """
        Read what OpenSSL wrote for the peer, then release the
        handshake's BIOs if they are due and empty.
        """
        try:
            return super().bio_read(bufsiz)
        finally:
            if self._holding:
                self._release()

    def bio_shutdown(self) -> None:
        """
        Tell OpenSSL the peer's stream ended: that is marked on the
        receive BIO, which is therefore kept from now on.
        """
        self._holding = False
        super().bio_shutdown()

    def _release(self) -> None:
        """
        Give the connection two new memory BIOs if neither of its BIOs
        holds a byte; C{SSL_set_bio} frees the old ones with their buffers.
        """
        if lib.BIO_get_mem_data(self._into_ssl, ffi.NULL) or lib.BIO_get_mem_data(
            self._from_ssl, ffi.NULL
        ):
            return
        into_ssl = lib.BIO_new(lib.BIO_s_mem())
        from_ssl = lib.BIO_new(lib.BIO_s_mem())
        if into_ssl == ffi.NULL or from_ssl == ffi.NULL:
            # Out of memory: keep the BIOs there are, which still work
            # (BIO_free ignores a NULL).
            lib.BIO_free(into_ssl)
            lib.BIO_free(from_ssl)
            return
        lib.SSL_set_bio(self._ssl, into_ssl, from_ssl)
        self._into_ssl = into_ssl
        self._from_ssl = from_ssl
        self._holding = False
