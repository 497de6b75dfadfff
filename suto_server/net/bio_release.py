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

L{ReleasingConnection} replaces both BIOs with new ones the moment its
handshake completes, carrying over the few bytes either holds then (the
session tickets that close a TLS 1.3 handshake, a record the client sent
along with its Finished): no byte is lost or reordered, and the TLS
session, its keys and sequence numbers are the C{SSL} object's and stay
as they are.  It costs two BIOs made and two freed once per connection
(about 24 000 instructions, 2-3 microseconds), and nothing per record
afterwards.  Once the receiving side was told of the end of the stream
(C{bio_shutdown}) the BIOs are left alone, since that end is a property
of the BIO.

pyOpenSSL offers no call to replace a connection's BIOs, so this sets the
three attributes its C{Connection} reads them from (C{_ssl},
C{_into_ssl}, C{_from_ssl}); C{tests/net/test_bio_release.py} fails if
pyOpenSSL changes them, and setup.cfg takes pyOpenSSL only below its next
major release, so an upgrade that moved them is taken only once the tests
pass on it.
"""

from __future__ import annotations

from OpenSSL import SSL
from OpenSSL._util import ffi, lib


class ReleasingConnection(SSL.Connection):
    """
    A memory-BIO connection (made with no socket, as Twisted's TLS
    protocol makes them) that swaps its BIOs for new ones when its
    handshake completes, so that the buffers the handshake grew are freed.

    @ivar _ended: whether the receive BIO was told the stream ended.
    """

    _ended = False

    def do_handshake(self) -> None:
        """
        Carry on with the handshake; once it is complete, move what the
        BIOs hold into new ones.
        """
        super().do_handshake()
        if not self._ended:
            self._release()

    def bio_shutdown(self) -> None:
        """
        Tell OpenSSL the peer's stream ended: that is marked on the
        receive BIO, which is therefore kept from now on.
        """
        self._ended = True
        super().bio_shutdown()

    def _release(self) -> None:
        """
        Give the connection two new memory BIOs holding what the old ones
        held; C{SSL_set_bio} frees the old ones with their buffers.
        """
        into_ssl = _copy(self._into_ssl)
        from_ssl = _copy(self._from_ssl)
        if into_ssl == ffi.NULL or from_ssl == ffi.NULL:
            # Out of memory: keep the BIOs there are, which still work
            # (BIO_free ignores a NULL).
            lib.BIO_free(into_ssl)
            lib.BIO_free(from_ssl)
            return
        lib.SSL_set_bio(self._ssl, into_ssl, from_ssl)
        self._into_ssl = into_ssl
        self._from_ssl = from_ssl


def _copy(bio):
    """
    @return: a new memory BIO holding the bytes not yet read from the
        memory BIO C{bio}, or C{NULL} if OpenSSL could not make one.
    """
    copy = lib.BIO_new(lib.BIO_s_mem())
    if copy == ffi.NULL:
        return copy
    data = ffi.new("char **")
    length = lib.BIO_get_mem_data(bio, data)
    if length and lib.BIO_write(copy, data[0], length) != length:
        lib.BIO_free(copy)
        return ffi.NULL
    return copy
