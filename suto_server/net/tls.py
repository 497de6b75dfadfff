# -*- test-case-name: tests.net.test_tls,tests.net.test_direct -*-
"""
The server's TLS listener: hardened settings, and a certificate that can be
replaced while the server runs.

Operators describe the listener with an ordinary Twisted endpoint string,
read by L{suto_server.net.endpoint}, which builds the endpoints here.

L{ReloadableServerTLS} keeps one OpenSSL context and makes every new
connection from whichever context is current.  An OpenSSL connection holds a
reference to the context it was made from, so L{ReloadableServerTLS.reload}
builds a complete new context from the files first and only then swaps it
in: connections accepted afterwards present the new certificate, connections
already open keep theirs, and a bad file leaves the old context in place.

What a listener does with the connections its protocol factory refuses,
and whom it tells about them, is L{suto_server.net.refusals}.
"""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from twisted.internet.interfaces import (
    IOpenSSLServerConnectionCreator,
    IStreamServerEndpoint,
)
from twisted.internet.ssl import (
    AcceptableCiphers,
    CertificateOptions,
    TLSVersion,
)
from twisted.logger import Logger
from zope.interface import implementer

# MAX_PEM_BYTES belongs to this module's interface too: its files are read
# under that cap.
from suto_server.core.pem import MAX_PEM_BYTES, load_certificates, load_private_key
from suto_server.net import certificate
from suto_server.net.bio_release import ReleasingConnection
from suto_server.net.direct import direct_writes
from suto_server.net.refusals import UNWATCHED, IListenerWitness, RefusingTLSFactory
from suto_server.net.revocation import check_revocation, load_crls

#: Cipher suites for TLS 1.2: ephemeral elliptic-curve key exchange with
#: an AEAD cipher only.  Twisted's default list also admits static-RSA key
#: exchange and CBC suites, which no TLS 1.2 client of today needs.  TLS 1.3
#: suites are all AEAD and forward-secret; OpenSSL's defaults for them stay.
MODERN_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(
    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
)

class TLSConfigurationError(ValueError):
    """
    The TLS listener's description or one of its files is unusable.  The
    message names the argument or file and what is wrong with it, never any
    key material.
    """


def _load_private_key(path: str) -> PKey:
    """
    @return: the unencrypted private key in the PEM file at C{path}.
    @raise TLSConfigurationError: the file holds no usable key.
    """
    key = load_private_key(
        path, "private key", TLSConfigurationError, needed_by="the server"
    )
    try:
        return PKey.from_cryptography_key(key)
    except TypeError as error:
        raise TLSConfigurationError(
            f"the private key file {path!r} holds a kind of key TLS "
            f"cannot use"
        ) from error


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS:
    """
    Server TLS settings whose certificate can be replaced without a restart.

    Every context it builds accepts TLS 1.2 and 1.3 only (OpenSSL picks
    1.3 whenever the client offers it), the cipher suites of
    L{MODERN_CIPHERS}, no compression and no renegotiation.  Its
    connections free their record buffers whenever no record is in flight
    (C{SSL_MODE_RELEASE_BUFFERS}, which L{CertificateOptions} sets on every
    context it makes): a fleet of agents holds its connections idle for
    minutes between rotations, and the buffers would cost each one 25 to
    29 KB (bench/RESULTS.md).  Nor do they keep the buffers of their
    memory BIOs past the handshake (L{ReleasingConnection}).

    No session is kept for resumption: the agent opens a fresh
    connection each time, and L{CertificateOptions} turns the session
    cache off and TLS session tickets with it (C{OP_NO_TICKET}).  In TLS
    1.3 OpenSSL still sends two stateful tickets after each handshake,
    naming sessions no cache holds, so a client presenting one gets a
    full handshake; sending none would take C{SSL_CTX_set_num_tickets},
    which neither pyOpenSSL nor C{cryptography} binds.

    @ivar witness: the L{IListenerWitness} of the listener these settings
        serve (see L{watch}).  It lives here, not on the endpoint, because
        the settings are what every wrapper of the endpoint exposes (as
        C{tls}).
    """

    log = Logger()
    witness: IListenerWitness = UNWATCHED

    def __init__(
        self,
        private_key: str,
        certificate_path: str,
        *,
        extra_chain: str | None = None,
        client_cas: str | None = None,
        require_client_certificate: bool = False,
        crl_file: str | None = None,
        clock=None,
    ) -> None:
        """
        Load the files and build the first context.

        @param private_key: path of the PEM private key (unencrypted).
        @param certificate_path: path of the PEM certificate; if the file
            holds more than one, the first is the server's own and the rest
            are sent as its chain.
        @param extra_chain: path of more PEM certificates to send after the
            server's own, for clients that trust only the root of its chain.
        @param client_cas: path of the PEM certificates of the authorities
            whose client certificates are accepted; a client that presents
            a certificate must present one they signed.
        @param require_client_certificate: refuse clients that present no
            certificate.  Needs C{client_cas}.
        @param crl_file: path of the PEM CRLs of C{client_cas}: a client
            certificate they revoke is refused during the handshake
            (L{suto_server.net.revocation}).  Needs C{client_cas}.
        @param clock: the L{IReactorTime} the CRLs' nextUpdate is compared
            with; the global reactor if not given.
        @raise TLSConfigurationError: the arguments contradict each other or
            a file is unusable.
        """
        if require_client_certificate and client_cas is None:
            raise TLSConfigurationError(
                "requiring a client certificate needs the certificates of "
                "the authorities that sign them (caCerts)"
            )
        if crl_file is not None and client_cas is None:
            raise TLSConfigurationError(
                "a certificate revocation list (crlFile) needs the "
                "certificates of the authorities that issue it (caCerts)"
            )
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self._crl_file = crl_file
        self._private_key = private_key
        self._certificate_path = certificate_path
        self._extra_chain = extra_chain
        self._client_cas = client_cas
        self._require_client_certificate = require_client_certificate
        self._context, self._revocation_lists = self._build_context()

    def _build_context(self) -> tuple[SSL.Context, tuple]:
        """
        Read every file afresh and build a complete context from them.

        @return: the context and the CRLs it checks client certificates
            against (none without C{crlFile}).

        @raise TLSConfigurationError: a file is unusable, or OpenSSL refuses
            the key with the certificate (usually: the key does not belong
            to it).
        """
        key = _load_private_key(self._private_key)
        own, *chain = load_certificates(
            self._certificate_path, "certificate", TLSConfigurationError
        )
        if self._extra_chain is not None:
            chain += load_certificates(
                self._extra_chain, "certificate chain", TLSConfigurationError
            )
        client_verification = {}
        crls = None
        if self._client_cas is not None:
            authorities = load_certificates(
                self._client_cas,
                "client certificate authority",
                TLSConfigurationError,
            )
            client_verification = dict(
                verify=True,
                caCerts=[X509.from_cryptography(each) for each in authorities],
                requireCertificate=self._require_client_certificate,
            )
            crls = self._crls(authorities)
        options = CertificateOptions(
            privateKey=key,
            certificate=X509.from_cryptography(own),
            extraCertChain=[X509.from_cryptography(link) for link in chain],
            raiseMinimumTo=TLSVersion.TLSv1_2,
            acceptableCiphers=MODERN_CIPHERS,
            **client_verification,
        )
        try:
            context = options.getContext()
        except SSL.Error as error:
            raise TLSConfigurationError(
                f"OpenSSL refuses the private key {self._private_key!r} with "
                f"the certificate {self._certificate_path!r} (does the key "
                f"belong to the certificate?): {error}"
            ) from error
        context.set_options(SSL.OP_NO_RENEGOTIATION)
        if crls is not None:
            check_revocation(context, crls)
        return context, tuple(crls or ())

    def _crls(self, authorities: list) -> list | None:
        """
        @return: the CRLs of C{crlFile}, checked against C{authorities}, or
            L{None} when the listener has no C{crlFile}.
        """
        if self._crl_file is None:
            return None
        now = datetime.datetime.fromtimestamp(
            self._clock.seconds(), datetime.timezone.utc
        )
        return load_crls(self._crl_file, authorities, now, TLSConfigurationError)

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """
        Make a connection from the current context, one that frees the
        buffers its handshake grew when the handshake completes
        (L{ReleasingConnection}).
        """
        return ReleasingConnection(self._context, None)

    def reload(self) -> certificate.CertificateInfo:
        """
        Re-read the files and use them for every connection accepted from
        now on; connections already open keep the context they were made
        from.

        Call it in the reactor thread: a signal handler should hand it over
        with C{reactor.callFromThread}, as Twisted does for C{SIGINT}.

        @return: a description of the certificate now in use.
        @raise TLSConfigurationError: a file is unusable; the previous
            certificate stays in use.
        """
        self._context, self._revocation_lists = self._build_context()
        info = self.certificate_info()
        self.log.info(
            "TLS certificate reloaded: {subject}, SHA-256 fingerprint "
            "{fingerprint}, valid until {not_after}",
            subject=info.subject,
            fingerprint=info.fingerprint,
            not_after=info.not_after.isoformat(),
        )
        return info

    def certificate_info(self) -> certificate.CertificateInfo:
        """
        @return: subject, fingerprint and validity of the certificate that
            new connections are shown.
        """
        return certificate.describe(
            self._own().public_bytes(serialization.Encoding.PEM)
        )

    def revocation_lists(self) -> tuple:
        """
        @return: the CRLs (C{x509.CertificateRevocationList}) new
            connections' client certificates are checked against, in the
            order of C{crlFile}; none without one.
        """
        return self._revocation_lists

    def ip_addresses(self) -> frozenset:
        """
        @return: the IP addresses the certificate new connections are shown
            is issued for (its C{iPAddress} subjectAltNames), the only ones
            a device that trusts it through a CA, not a pin, accepts it at.
        """
        try:
            names = self._own().extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            )
        except x509.ExtensionNotFound:
            return frozenset()
        return frozenset(names.value.get_values_for_type(x509.IPAddress))

    def _own(self) -> x509.Certificate:
        """
        @return: the server's own certificate in the current context.
        """
        own = SSL.Connection(self._context, None).get_certificate()
        return own.to_cryptography()


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """
    TLS over a TCP server endpoint.

    @ivar tls: the settings every accepted connection is made with; call
        its C{reload} to take up a renewed certificate.
    @ivar interface: the address the listener binds, C{""} for every one.
    """

    def __init__(
        self, tcp: IStreamServerEndpoint, tls: ReloadableServerTLS, interface=""
    ):
        self._tcp = tcp
        self.tls = tls
        self.interface = interface

    def listen(self, protocolFactory):
        """
        Listen on the TCP endpoint, running TLS before C{protocolFactory}'s
        protocols, over transports that send each TLS record in the turn
        it is written (L{direct_writes}).
        """
        listening = self._tcp.listen(
            RefusingTLSFactory(self.tls, False, protocolFactory, self.tls.witness)
        )
        return listening.addCallback(direct_writes)


def watch(endpoints, witness: IListenerWitness) -> None:
    """
    Make C{witness} the witness of those of C{endpoints} that are TLS
    listeners, before they listen: those whose C{tls} is a
    L{ReloadableServerTLS}, whether a L{TLSServerEndpoint} or a wrapper of
    one (L{suto_server.net.listening.OptionEndpoint}).
    """
    for endpoint in endpoints:
        tls = getattr(endpoint, "tls", None)
        if isinstance(tls, ReloadableServerTLS):
            tls.witness = witness


def bound_address(interface: str):
    """
    @return: the single IP address C{interface} binds, or L{None} when it
        binds every address (or names none).
    """
    try:
        address = ipaddress.ip_address(interface)
    except ValueError:
        return None
    return None if address.is_unspecified else address
