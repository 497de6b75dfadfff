"""
TLS to a SUTO server whose certificate is pinned by its fingerprint.

A SUTO server makes its own self-signed certificate unless its operator
brings one, so no certificate authority vouches for it: instead the agent is
told the SHA-256 fingerprint of the server's certificate when the account is
added, and a handshake succeeds only if the certificate the server presents
has exactly that fingerprint.  Chain and name checks would add nothing to
that and would refuse every self-signed certificate, so they are not made.
There is deliberately no way to connect after a mismatch.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from OpenSSL import SSL
from OpenSSL.crypto import X509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

_PIN_PREFIX = re.compile(r"^sha-?256:\s*", re.IGNORECASE)
_PIN = re.compile(r"^[0-9a-f]{64}$")


class PinMismatch(Exception):
    """
    The server presented a certificate other than the pinned one.

    @ivar expected: the pinned fingerprint.
    @ivar presented: the fingerprint of the certificate the server sent.
    """

    def __init__(self, expected: str, presented: str) -> None:
        super().__init__(expected, presented)
        self.expected = expected
        self.presented = presented

    def __str__(self) -> str:
        return (
            f"the server's certificate has SHA-256 fingerprint "
            f"{self.presented}, but {self.expected} is pinned"
        )


def normalise_pin(text: str) -> str:
    """
    Bring a SHA-256 fingerprint to the one form the agent stores.

    Accepts what tools print: C{AB:CD:...} (as C{openssl x509 -fingerprint
    -sha256} and C{suto-admin cert} do), plain hex in either case, and an
    optional C{sha256:} prefix.

    @return: 64 lowercase hex digits.
    @raise ValueError: C{text} is not a SHA-256 fingerprint.
    """
    if not isinstance(text, str) or len(text) > 200:
        raise ValueError("a SHA-256 fingerprint is 64 hex digits")
    digits = _PIN_PREFIX.sub("", text.strip()).replace(":", "").lower()
    if not _PIN.match(digits):
        raise ValueError("a SHA-256 fingerprint is 64 hex digits")
    return digits


def certificate_pin(certificate: X509) -> str:
    """
    @return: the SHA-256 fingerprint of C{certificate}'s DER encoding, in
        the form L{normalise_pin} returns.
    """
    der = certificate.to_cryptography().public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


@implementer(IOpenSSLClientConnectionCreator)
class _PinnedClientCreator:
    """
    Makes client connections that accept only the pinned certificate.
    """

    log = Logger()

    def __init__(self, pin: str) -> None:
        self._pin = pin
        self._context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self._context.set_min_proto_version(SSL.TLS1_2_VERSION)

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
            self._verifier(tlsProtocol),
        )
        return connection

    def _verifier(self, tls_protocol):
        """
        The verification callback for one connection.  OpenSSL calls it for
        each certificate of the chain, possibly more than once; only the
        server's own certificate (depth 0) decides, and a mismatch hands
        the connection a L{PinMismatch} so the application sees both
        fingerprints rather than a bare "certificate verify failed".
        """

        def verify(connection, certificate, error, depth, ok) -> bool:
            if depth != 0:
                return True
            try:
                presented = certificate_pin(certificate)
                if hmac.compare_digest(presented, self._pin):
                    return True
                tls_protocol.failVerification(
                    Failure(PinMismatch(self._pin, presented))
                )
            except Exception:
                # An exception escaping into OpenSSL would be lost; refuse.
                self.log.failure("while checking the server's certificate")
            return False

        return verify


def pinned_client_creator(pin: str) -> IOpenSSLClientConnectionCreator:
    """
    TLS client settings that trust exactly one server certificate.

    @param pin: the certificate's SHA-256 fingerprint, in any form
        L{normalise_pin} accepts.
    @return: a connection creator for L{twisted.internet.endpoints.
        wrapClientTLS}: TLS 1.2 or newer; the handshake fails, with a
        L{PinMismatch} as the connection's loss reason, unless the server's
        certificate has that fingerprint.
    @raise ValueError: C{pin} is not a SHA-256 fingerprint.
    """
    return _PinnedClientCreator(normalise_pin(pin))
