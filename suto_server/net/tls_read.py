# -*- test-case-name: tests.net.test_tls_read -*-
"""
The listener's TLS read: once a TLS 1.3 connection's handshake is done,
stop reading when OpenSSL has nothing more to give, instead of asking it
once more and catching its refusal.

Twisted's C{TLSMemoryBIOProtocol} hands each read's bytes to OpenSSL's
receive BIO, then calls C{recv} until pyOpenSSL raises C{WantReadError},
and reads the send BIO until it raises the same.  On a device connection
a read is one record of the agent's, so every read makes one C{recv} that
returns the message and one that fails, and every flush of the send BIO
with nothing in it fails too: each failure is OpenSSL's call, pyOpenSSL's
check of the connection's callbacks and of C{SSL_get_error}, a 32 KB
buffer and an exception built, raised and caught, 1.0-1.2 microseconds
each (bench/RESULTS.md, "Issue 21: the listener's TLS read").

L{SettledReadTLSProtocol} asks instead whether anything is left: bytes in
the receive BIO (a record, or part of one), decrypted bytes OpenSSL holds
(C{SSL_pending}), or the peer's close_notify already seen.  With none of
them, another C{recv} could only raise C{WantReadError}: OpenSSL reads a
record from its BIO only when asked for one, taking no byte ahead of it
(read-ahead is off: OpenSSL's default, which neither Twisted nor SUTO
changes and pyOpenSSL cannot turn on), so a record that returned data has
left behind only what the next C{recv} would read.  An empty send BIO is
flushed by doing nothing.

Everything else is Twisted's own path, unchanged: the handshake, TLS 1.2
(the agent and this server agree on 1.3; an older client, at the console
or the verification API, stays on the path Twisted always read it by),
any read that finds anything (a partial record, several records, an
alert, a close_notify, an error: each handled by the same loop, with the
same exceptions caught the same way as Twisted's), and the end of the
transport, when OpenSSL is told the stream ended and what is left is read
to its end.

The loop is Twisted's C{_flushReceiveBIO} with the one question added
before each further C{recv}; it reaches Twisted's and pyOpenSSL's private
names for it (L{TWISTED_NAMES}, L{OPENSSL_NAMES}, L{OPENSSL_CALLS}).  A
connection where any of them is missing (a Twisted, pyOpenSSL or
C{cryptography} that renamed one, or a connection that is not over memory
BIOs) is read by Twisted's path alone.
C{tests/net/test_tls_read.py} holds this module to Twisted's behaviour on
the same bytes in every state above, checks the fallback, and fails if
Twisted's loop changes, so that an upgrade is read against this copy.
"""

from __future__ import annotations

from OpenSSL import SSL
from OpenSSL._util import ffi, lib
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure

#: What Twisted asks pyOpenSSL for in one C{recv}, as its own loop does.
READ_SIZE = 2**15

#: The private names of Twisted's C{TLSMemoryBIOProtocol} the settled read
#: relies on, on the protocol once its handshake is done.
TWISTED_NAMES = (
    "_flushReceiveBIO",
    "_flushSendBIO",
    "_tlsConnection",
    "_lostTLSConnection",
    "_aborted",
    "_handshakeDone",
    "_shutdownTLS",
    "_tlsShutdownFinished",
)

#: The private names of pyOpenSSL's C{Connection} it relies on: the
#: C{SSL} object and its two memory BIOs.
OPENSSL_NAMES = ("_ssl", "_into_ssl", "_from_ssl")

#: What it calls of OpenSSL through pyOpenSSL's private bindings.
OPENSSL_CALLS = (
    "BIO_get_mem_data",
    "SSL_pending",
    "SSL_get_shutdown",
    "SSL_RECEIVED_SHUTDOWN",
)


def _unread(connection: SSL.Connection) -> bool:
    """
    @return: whether a C{recv} on C{connection} could give anything but
        C{WantReadError}: bytes in its receive BIO, decrypted bytes OpenSSL
        holds, or the peer's close_notify.
    """
    return bool(
        lib.BIO_get_mem_data(connection._into_ssl, ffi.NULL)
        or lib.SSL_pending(connection._ssl)
        or lib.SSL_get_shutdown(connection._ssl) & lib.SSL_RECEIVED_SHUTDOWN
    )


def _unsent(connection: SSL.Connection) -> bool:
    """
    @return: whether C{connection}'s send BIO holds bytes for the peer.
    """
    return bool(lib.BIO_get_mem_data(connection._from_ssl, ffi.NULL))


def settles(protocol: TLSMemoryBIOProtocol) -> bool:
    """
    @return: whether C{protocol}'s connection, its handshake done, may be
        read by the settled read: Twisted and pyOpenSSL have the names it
        uses, the connection is over memory BIOs and speaks TLS 1.3.
    """
    if not all(hasattr(protocol, name) for name in TWISTED_NAMES):
        return False
    if not all(hasattr(lib, name) for name in OPENSSL_CALLS):
        return False
    connection = protocol._tlsConnection
    return (
        isinstance(connection, SSL.Connection)
        and all(getattr(connection, name, None) is not None for name in OPENSSL_NAMES)
        and connection.get_protocol_version() == SSL.TLS1_3_VERSION
    )


class SettledReadTLSProtocol(TLSMemoryBIOProtocol):
    """
    TLS whose reads, once a TLS 1.3 handshake is done, stop when OpenSSL
    has nothing more to give.

    @ivar _settled: whether the settled read applies: L{None} until the
        handshake is done, then whether L{settles}; L{False} from the
        transport's end on.
    """

    _settled: bool | None = None

    def _flushReceiveBIO(self) -> None:
        """
        Twisted's loop, which reads until C{WantReadError}, with one
        question before each further C{recv}: is there anything left?
        """
        settled = self._settled
        if settled is None and self._handshakeDone:
            settled = self._settled = settles(self)
        if not settled:
            super()._flushReceiveBIO()
            return
        connection = self._tlsConnection
        while not self._lostTLSConnection:
            try:
                data = connection.recv(READ_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._shutdownTLS()
                self._tlsShutdownFinished(None)
            except SSL.Error:
                self._tlsShutdownFinished(Failure())
            else:
                if not self._aborted:
                    ProtocolWrapper.dataReceived(self, data)
                if not _unread(connection):
                    break
        self._flushSendBIO()

    def _flushSendBIO(self) -> None:
        """
        Send what the send BIO holds; when it holds nothing, do nothing
        rather than read it and catch C{WantReadError}.
        """
        if self._settled and not _unsent(self._tlsConnection):
            return
        super()._flushSendBIO()

    def connectionLost(self, reason) -> None:
        """
        The transport ended: Twisted tells OpenSSL so and reads what is
        left to the end of the stream, by its own path.
        """
        self._settled = False
        super().connectionLost(reason)
