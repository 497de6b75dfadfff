# -*- test-case-name: tests.client.test_ca,tests.client.test_tls -*-
"""
TLS to a SUTO server, trusted either by a pinned fingerprint or through a
certificate authority, optionally presenting a client certificate.

A SUTO server makes its own self-signed certificate unless its operator
brings one, so by default no certificate authority vouches for it: instead
the agent is told the SHA-256 fingerprint of the server's certificate when
the account is added, and a handshake succeeds only if the certificate the
server presents has exactly that fingerprint.  Chain and name checks would
add nothing to that and would refuse every self-signed certificate, so
they are not made.

An operator who serves a certificate from a company CA gives the agent the
CA bundle instead.  Then the chain must lead to a certificate of that
bundle and be valid today, and the server's own certificate must be issued
for the address the agent connects to, checked by C{service_identity} as
for any TLS client (an IP address must appear as an C{iPAddress}
subjectAltName).

Either way the check runs inside OpenSSL's verification, so a refused
server never completes the handshake, and the failure handed to the
connection (L{PinMismatch}, L{CertificateRejected}) names the fingerprint
of the certificate the server presented.  There is deliberately no way to
connect after a refusal.

When the server demands a client certificate (mutual TLS), both kinds of
connection present the one L{load_client_identity} reads.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL.crypto import X509
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

# MAX_PEM_BYTES belongs to this module's interface too: its files are read
# under that cap.
from suto_server.core.pem import MAX_PEM_BYTES, load_certificates, load_private_key

_PIN_PREFIX = re.compile(r"^sha-?256:\s*", re.IGNORECASE)
_PIN = re.compile(r"^[0-9a-f]{64}$")

#: The kinds of private key a TLS client certificate can be used with.
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)

#: Why OpenSSL refused a chain, for the X509_V_ERR_* codes a misconfigured
#: server or a foreign one causes; C{{what}} names the certificate.
_VERIFY_ERRORS = {
    2: "the issuer of {what} is not in the CA bundle",
    7: "the signature of {what} is invalid",
    9: "{what} is not valid yet",
    10: "{what} has expired",
    18: "{what} is self-signed and not in the CA bundle",
    19: "the chain ends in a self-signed certificate not in the CA bundle",
    20: "no certificate in the CA bundle issued {what}",
    21: "no certificate in the CA bundle issued {what}",
    24: "{what} is not a CA certificate but issued another",
    26: "{what} is not meant for this use",
}


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


class CertificateRejected(Exception):
    """
    The server's certificate failed the check against the CA bundle: its
    chain does not lead to the bundle, a certificate of the chain is
    expired or not valid yet, or it is not issued for the server's address.

    @ivar presented: the SHA-256 fingerprint of the server's own
        certificate, in the form L{normalise_pin} returns.
    @ivar reason: what is wrong with it, in words.
    """

    def __init__(self, presented: str, reason: str) -> None:
        super().__init__(presented, reason)
        self.presented = presented
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"the server's certificate (SHA-256 fingerprint "
            f"{self.presented}) is refused: {self.reason}"
        )


class ClientTLSError(ValueError):
    """
    A CA bundle, client certificate or client key configured for an
    account is unusable.  The message names the file and what is wrong
    with it, never any key material.
    """


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


@dataclass(frozen=True)
class ClientIdentity:
    """
    The certificate (with its chain) and key the agent presents to a server
    that demands one.

    @ivar certificate: the agent's own certificate.
    @ivar chain: further certificates sent after it, issuer first.
    @ivar key: the certificate's private key; kept out of C{repr}.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes = field(repr=False)


def load_client_identity(certificate_path: str, key_path: str) -> ClientIdentity:
    """
    Read the client certificate and its key, and check that they belong
    together.

    @param certificate_path: PEM file of the client certificate; more
        certificates after the first are sent as its chain.
    @param key_path: PEM file of its private key, unencrypted: the agent
        runs unattended, with nobody to type a passphrase.
    @raise ClientTLSError: a file is unusable, or the key is not the
        certificate's.
    """
    own, *chain = load_certificates(
        certificate_path, "client certificate", ClientTLSError
    )
    key = load_private_key(
        key_path, "client key", ClientTLSError, needed_by="the agent"
    )
    if not isinstance(key, _SIGNING_KEYS):
        raise ClientTLSError(
            f"the client key file {key_path!r} holds a kind of key TLS "
            f"cannot use"
        )
    if _public_der(key.public_key()) != _public_der(own.public_key()):
        raise ClientTLSError(
            f"the client key {key_path!r} does not belong to the client "
            f"certificate {certificate_path!r}"
        )
    return ClientIdentity(own, tuple(chain), key)


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(
        Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _client_context(identity: ClientIdentity | None) -> SSL.Context:
    """
    A client context for TLS 1.2 or newer that presents C{identity} when
    the server asks for a certificate.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    # The rotation connection idles between rotations: free its record
    # buffers meanwhile, as the server's contexts do.
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    if identity is not None:
        context.use_certificate(identity.certificate)
        for link in identity.chain:
            context.add_extra_chain_cert(link)
        context.use_privatekey(identity.key)
    return context


#: Judges one step of the server certificate's verification.  Called with
#: OpenSSL's arguments (connection, certificate, error number, depth,
#: whether OpenSSL found it good); returns L{None} to let the step pass,
#: or the exception to fail the handshake with.
_Check = Callable[[SSL.Connection, X509, int, int, int], "Exception | None"]


@implementer(IOpenSSLClientConnectionCreator)
class _CheckingClientCreator:
    """
    Makes client connections whose server certificate a check judges.
    """

    log = Logger()

    def __init__(
        self,
        context: SSL.Context,
        check: _Check,
        server_name: bytes | None = None,
    ) -> None:
        """
        @param server_name: sent as the TLS server name (SNI), so a server
            with several certificates picks the right one.
        """
        self._context = context
        self._check = check
        self._server_name = server_name

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if self._server_name is not None:
            connection.set_tlsext_host_name(self._server_name)
        connection.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
            self._verifier(tlsProtocol),
        )
        return connection

    def _verifier(self, tls_protocol):
        """
        The verification callback for one connection.  OpenSSL calls it
        for each certificate of the chain, possibly more than once; a
        refusal hands the connection the check's exception, so the
        application sees why rather than a bare "certificate verify
        failed".
        """

        def verify(connection, certificate, error, depth, ok) -> bool:
            try:
                refusal = self._check(connection, certificate, error, depth, ok)
            except Exception:
                # An exception escaping into OpenSSL would be lost; refuse.
                self.log.failure("while checking the server's certificate")
                return False
            if refusal is None:
                return True
            tls_protocol.failVerification(Failure(refusal))
            return False

        return verify


def pinned_client_creator(
    pin: str, identity: ClientIdentity | None = None
) -> IOpenSSLClientConnectionCreator:
    """
    TLS client settings that trust exactly one server certificate.

    @param pin: the certificate's SHA-256 fingerprint, in any form
        L{normalise_pin} accepts.
    @param identity: the client certificate to present, if any.
    @return: a connection creator for L{twisted.internet.endpoints.
        wrapClientTLS}: TLS 1.2 or newer; the handshake fails, with a
        L{PinMismatch} as the connection's loss reason, unless the server's
        certificate has that fingerprint.
    @raise ValueError: C{pin} is not a SHA-256 fingerprint.
    """
    expected = normalise_pin(pin)

    def check(connection, certificate, error, depth, ok):
        # Only the server's own certificate (depth 0) decides.
        if depth != 0:
            return None
        presented = certificate_pin(certificate)
        if hmac.compare_digest(presented, expected):
            return None
        return PinMismatch(expected, presented)

    return _CheckingClientCreator(_client_context(identity), check)


def authority_client_creator(
    host: str, bundle_path: str, identity: ClientIdentity | None = None
) -> IOpenSSLClientConnectionCreator:
    """
    TLS client settings that trust the certificates a CA bundle vouches
    for, and only for C{host}.

    @param host: the server's IP address, or its DNS name; the server's
        certificate must carry it as a subjectAltName.
    @param bundle_path: PEM file of the trusted CA certificates.
    @param identity: the client certificate to present, if any.
    @return: a connection creator for L{twisted.internet.endpoints.
        wrapClientTLS}: TLS 1.2 or newer; the handshake fails, with a
        L{CertificateRejected} as the connection's loss reason, unless the
        server's chain leads to the bundle, is valid now, and its own
        certificate is issued for C{host}.
    @raise ClientTLSError: the bundle is unusable.
    """
    context = _client_context(identity)
    store = context.get_cert_store()
    for authority in load_certificates(
        bundle_path, "CA bundle", ClientTLSError
    ):
        store.add_cert(X509.from_cryptography(authority))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        verify_name = verify_certificate_hostname
        server_name = host.encode("idna")
    else:
        verify_name = verify_certificate_ip_address
        server_name = None

    def check(connection, certificate, error, depth, ok):
        if not ok:
            return CertificateRejected(
                certificate_pin(
                    certificate
                    if depth == 0
                    else connection.get_peer_cert_chain()[0]
                ),
                _verify_reason(error, depth),
            )
        if depth != 0:
            return None
        try:
            verify_name(certificate.to_cryptography(), host)
        except VerificationError:
            reason = f"it is not issued for {host}"
        except CertificateError:
            reason = f"it names no subjectAltName to match {host} against"
        else:
            return None
        return CertificateRejected(certificate_pin(certificate), reason)

    return _CheckingClientCreator(context, check, server_name)


def _verify_reason(error: int, depth: int) -> str:
    """
    Say in words why OpenSSL refused the certificate at C{depth} of the
    server's chain.
    """
    what = "it" if depth == 0 else f"the chain certificate at depth {depth}"
    template = _VERIFY_ERRORS.get(error)
    if template is None:
        return f"OpenSSL refused {what} (X509_V_ERR {error})"
    return template.format(what=what)
