"""
Tests for L{suto_server.net.tls}: the settings and files checks in memory, and
what a client actually gets over real sockets on loopback.

Every key and certificate is made for the test with C{cryptography}.  The
test clients do not verify the server's certificate: they compare its
fingerprint, which is what these tests are about.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    quoteStringArgument,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.plugin import IPlugin
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from bench.tls_footprint import handshake, move
from suto_server.net import certificate
from suto_server.net.direct import DirectWriteServer
from suto_server.net.endpoint import SutoTLSParser, server_endpoint
from suto_server.net.listening import OptionEndpoint
from suto_server.net.refusals import IListenerWitness
from suto_server.net.tls import (
    MAX_PEM_BYTES,
    ReloadableServerTLS,
    TLSConfigurationError,
    TLSServerEndpoint,
    watch,
)
from tests.support import pki

NOW = datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    name: str,
    key,
    issuer: x509.Certificate | None = None,
    issuer_key=None,
    *,
    authority: bool = False,
    not_before: datetime.datetime = NOW - datetime.timedelta(hours=1),
    not_after: datetime.datetime = NOW + datetime.timedelta(days=1),
) -> x509.Certificate:
    """
    A certificate for C{key}, self-signed unless C{issuer} and
    C{issuer_key} are given.
    """
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=authority, path_length=None), critical=True
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    )
    if authority:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key if issuer_key is None else issuer_key, hashes.SHA256())


def _key_pem(key, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _fingerprint(cert: x509.Certificate | X509) -> str:
    if isinstance(cert, X509):
        cert = cert.to_cryptography()
    return certificate.fingerprint(cert)


class _Files:
    """
    A folder of PEM files for one test.
    """

    def __init__(self, folder: str) -> None:
        os.makedirs(folder)
        self._folder = folder

    def write(self, name: str, *pems: bytes) -> str:
        path = os.path.join(self._folder, name)
        with open(path, "wb") as handle:
            handle.write(b"".join(pems))
        return path

    def server_identity(
        self, name: str = "server"
    ) -> tuple[str, str, x509.Certificate]:
        """
        Write a fresh self-signed server key and certificate.

        @return: the key's path, the certificate's path, the certificate.
        """
        key = _new_key()
        cert = _certificate(name, key)
        return (
            self.write(f"{name}.key", _key_pem(key)),
            self.write(f"{name}.crt", _cert_pem(cert)),
            cert,
        )


def _ssl_description(key_path: str, cert_path: str, extra: str = "") -> str:
    return (
        f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key_path)}"
        f":certKey={quoteStringArgument(cert_path)}{extra}"
    )


class ReloadableServerTLSTests(SynchronousTestCase):
    """
    L{ReloadableServerTLS} builds hardened contexts from files and refuses
    unusable ones with L{TLSConfigurationError}.
    """

    def setUp(self) -> None:
        self.files = _Files(self.mktemp())
        self.key_path, self.cert_path, self.cert = self.files.server_identity()

    def test_provides_interface(self) -> None:
        """
        It is a server connection creator, as L{TLSMemoryBIOFactory} needs.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, tls))

    def test_hardened_options(self) -> None:
        """
        The context has compression, renegotiation, SSLv3, TLS 1.0 and TLS
        1.1 switched off.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        # Adding no option returns the connection's whole option mask,
        # which it takes from the context it was made from.
        options = tls.serverConnectionForTLS(None).set_options(0)
        for option in (
            SSL.OP_NO_COMPRESSION,
            SSL.OP_NO_RENEGOTIATION,
            SSL.OP_NO_SSLv3,
            SSL.OP_NO_TLSv1,
            SSL.OP_NO_TLSv1_1,
        ):
            self.assertEqual(options & option, option)
        self.assertFalse(options & SSL.OP_NO_TLSv1_3)

    def test_certificate_info(self) -> None:
        """
        C{certificate_info} describes the certificate from the file.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        self.assertEqual(
            tls.certificate_info(), certificate.describe(_cert_pem(self.cert))
        )

    def test_ip_addresses(self) -> None:
        """
        C{ip_addresses} is the certificate's iPAddress subjectAltNames.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        self.assertEqual(
            tls.ip_addresses(), frozenset({ipaddress.ip_address("127.0.0.1")})
        )

    def test_key_and_certificate_in_one_file(self) -> None:
        """
        One file may hold both the certificate and the key, as Twisted's
        C{ssl} endpoint allows.
        """
        key = _new_key()
        cert = _certificate("combined", key)
        path = self.files.write("combined.pem", _cert_pem(cert), _key_pem(key))
        tls = ReloadableServerTLS(path, path)
        self.assertEqual(tls.certificate_info().fingerprint, _fingerprint(cert))

    def test_reload_returns_new_certificate(self) -> None:
        """
        C{reload} re-reads the files and returns the new certificate's
        description, which C{certificate_info} then also gives.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        _, _, renewed = self.files.server_identity()
        info = tls.reload()
        self.assertEqual(info.fingerprint, _fingerprint(renewed))
        self.assertEqual(tls.certificate_info(), info)

    def test_reload_with_bad_key_keeps_old_context(self) -> None:
        """
        A key file that holds no key makes C{reload} raise, and the old
        certificate stays in use.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        self.files.write("server.key", b"-----BEGIN PRIVATE KEY-----\njunk\n")
        error = self.assertRaises(TLSConfigurationError, tls.reload)
        self.assertIn("server.key", str(error))
        self.assertEqual(tls.certificate_info().fingerprint, _fingerprint(self.cert))

    def test_reload_with_mismatched_key_keeps_old_context(self) -> None:
        """
        A renewed certificate whose key was not replaced with it makes
        C{reload} raise, and the old certificate stays in use.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        self.files.write("server.crt", _cert_pem(_certificate("renewed", _new_key())))
        error = self.assertRaises(TLSConfigurationError, tls.reload)
        self.assertIn("does the key belong", str(error))
        self.assertEqual(tls.certificate_info().fingerprint, _fingerprint(self.cert))

    def test_encrypted_key(self) -> None:
        """
        An encrypted key is refused with a message saying so: nobody is
        there to type its passphrase.
        """
        path = self.files.write("locked.key", _key_pem(_new_key(), b"secret"))
        error = self.assertRaises(
            TLSConfigurationError, ReloadableServerTLS, path, self.cert_path
        )
        self.assertIn("encrypted", str(error))

    def test_missing_file(self) -> None:
        """
        A certificate file that does not exist is named in the error.
        """
        missing = os.path.join(self.mktemp(), "absent.crt")
        error = self.assertRaises(
            TLSConfigurationError, ReloadableServerTLS, self.key_path, missing
        )
        self.assertIn("absent.crt", str(error))

    def test_oversized_file(self) -> None:
        """
        A file larger than L{MAX_PEM_BYTES} is refused without parsing it.
        """
        path = self.files.write("huge.crt", b"#" * (MAX_PEM_BYTES + 1))
        error = self.assertRaises(
            TLSConfigurationError, ReloadableServerTLS, self.key_path, path
        )
        self.assertIn("larger than", str(error))

    def test_certificate_file_without_certificate(self) -> None:
        """
        A certificate file holding no certificate is refused.
        """
        path = self.files.write("empty.crt", b"nothing here\n")
        error = self.assertRaises(
            TLSConfigurationError, ReloadableServerTLS, self.key_path, path
        )
        self.assertIn("no PEM certificate", str(error))

    def test_required_client_certificate_needs_authorities(self) -> None:
        """
        Requiring client certificates without naming who signs them is a
        configuration error.
        """
        self.assertRaises(
            TLSConfigurationError,
            ReloadableServerTLS,
            self.key_path,
            self.cert_path,
            require_client_certificate=True,
        )


class EndpointStringTests(SynchronousTestCase):
    """
    L{server_endpoint} and the C{suto-tls} endpoint string parser.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.files = _Files(self.mktemp())
        self.key_path, self.cert_path, self.cert = self.files.server_identity()

    def test_parser_interfaces(self) -> None:
        """
        The parser is a plugin for endpoint strings, and what it builds is a
        server endpoint.
        """
        parser = SutoTLSParser()
        self.assertTrue(verifyObject(IPlugin, parser))
        self.assertTrue(verifyObject(IStreamServerEndpointStringParser, parser))
        endpoint = server_endpoint(
            self.reactor, _ssl_description(self.key_path, self.cert_path)
        )
        self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))

    def test_ssl_becomes_suto_tls(self) -> None:
        """
        An C{ssl:} description gets the reloadable TLS endpoint, loaded with
        the certificate it names.
        """
        endpoint = server_endpoint(
            self.reactor, _ssl_description(self.key_path, self.cert_path)
        )
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        self.assertIsInstance(endpoint.tls, ReloadableServerTLS)
        self.assertEqual(
            endpoint.tls.certificate_info().fingerprint, _fingerprint(self.cert)
        )

    def test_suto_tls_found_by_twisted(self) -> None:
        """
        The C{suto-tls} prefix is a dropin that L{serverFromString} finds
        by itself.
        """
        description = _ssl_description(self.key_path, self.cert_path)
        endpoint = serverFromString(self.reactor, "suto-tls" + description[3:])
        self.assertIsInstance(endpoint, TLSServerEndpoint)

    def test_other_descriptions_unchanged(self) -> None:
        """
        A C{tcp:} description is left to Twisted.
        """
        endpoint = server_endpoint(self.reactor, "tcp:0:interface=127.0.0.1")
        self.assertIsInstance(endpoint, TCP4ServerEndpoint)

    def test_bad_arguments(self) -> None:
        """
        Unusable arguments raise L{TLSConfigurationError} naming the
        problem, rather than whatever Python or Twisted would raise.
        """
        key = quoteStringArgument(self.key_path)
        cert = quoteStringArgument(self.cert_path)
        cases = {
            "ssl:": "port",
            f"ssl:abc:privateKey={key}": "port",
            f"ssl:70000:privateKey={key}": "port",
            f"ssl:0:privateKey={key}:backlog=0": "backlog",
            f"ssl:0:certKey={cert}": "privateKey",
            f"ssl:0:privateKey={key}:requireClientCert=maybe": "requireClientCert",
            f"ssl:0:privateKey={key}:sslmethod=TLSv1_METHOD": "sslmethod",
            f"ssl:0:{key}:{cert}:extra": "name the other arguments",
            f"ssl:0:privateKey={key}:interface={'1' * 300}": "interface",
        }
        for description, complaint in cases.items():
            error = self.assertRaises(
                TLSConfigurationError, server_endpoint, self.reactor, description
            )
            self.assertIn(complaint, str(error))


class _Echo(Protocol):
    """
    Sends back whatever arrives.
    """

    def connectionMade(self) -> None:
        self.lost = Deferred()
        self.factory.connections.append(self.lost)

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def connectionLost(self, reason) -> None:
        self.lost.callback(None)


class _EchoFactory(Factory):
    protocol = _Echo

    def __init__(self) -> None:
        self.connections: list[Deferred] = []


class _Client(Protocol):
    """
    Sends a message and waits for its echo.

    @ivar lost: fires when the connection is gone.
    """

    def __init__(self) -> None:
        self.lost = Deferred()
        self._buffer = b""
        self._expected = 0
        self._reply: Deferred | None = None

    def exchange(self, data: bytes) -> Deferred:
        """
        @return: a L{Deferred} firing with the echo of C{data}, or failing
            with the reason the connection was lost first.
        """
        self._reply = Deferred()
        self._expected = len(data)
        self.transport.write(data)
        return self._reply

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if self._reply is not None and len(self._buffer) >= self._expected:
            reply, self._reply = self._reply, None
            echoed, self._buffer = self._buffer, b""
            reply.callback(echoed)

    def connectionLost(self, reason) -> None:
        if self._reply is not None:
            reply, self._reply = self._reply, None
            reply.errback(reason)
        self.lost.callback(None)


@implementer(IOpenSSLClientConnectionCreator)
class _ClientTLS:
    """
    Client TLS from a raw pyOpenSSL context, so a test can offer exactly
    the versions and cipher suites it wants.

    @ivar connection: the last connection made, to ask what was negotiated.
    """

    def __init__(
        self,
        *,
        max_version: int | None = None,
        ciphers: bytes | None = None,
        certificate: x509.Certificate | None = None,
        key=None,
    ) -> None:
        self._context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        self._context.set_verify(SSL.VERIFY_NONE)
        if max_version is not None:
            self._context.set_max_proto_version(max_version)
        if ciphers is not None:
            self._context.set_cipher_list(ciphers)
        if certificate is not None:
            self._context.use_certificate(X509.from_cryptography(certificate))
            self._context.use_privatekey(PKey.from_cryptography_key(key))
        self.connection: SSL.Connection | None = None

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        self.connection = SSL.Connection(self._context, None)
        return self.connection


class _LoopbackTestCase(TestCase):
    """
    Echo servers and TLS clients on real loopback sockets, all closed when
    the test ends.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.files = _Files(self.mktemp())
        self.key_path, self.cert_path, self.cert = self.files.server_identity()

    @inlineCallbacks
    def _listen(self, description: str):
        """
        Listen on C{description} with an echo server until the test ends.

        @return: a L{Deferred} firing with the endpoint and the port.
        """
        endpoint = server_endpoint(self.reactor, description)
        factory = _EchoFactory()
        port = yield endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: gatherResults(factory.connections))
        return endpoint, port

    @inlineCallbacks
    def _connect(self, port, creator: _ClientTLS):
        """
        Connect to C{port} over TLS; the connection is closed when the test
        ends.

        @return: a L{Deferred} firing with the L{_Client}.
        """
        address = port.getHost()
        if isinstance(address, IPv6Address):
            tcp = TCP6ClientEndpoint(self.reactor, address.host, address.port)
        else:
            tcp = TCP4ClientEndpoint(self.reactor, address.host, address.port)
        client = yield connectProtocol(wrapClientTLS(creator, tcp), _Client())
        self.addCleanup(self._close, client)
        return client

    @staticmethod
    def _close(client: _Client) -> Deferred:
        if not client.lost.called:
            client.transport.abortConnection()
        return client.lost

    @inlineCallbacks
    def _echo(self, port, creator: _ClientTLS, data: bytes = b"ping"):
        """
        Connect and exchange one message.

        @return: a L{Deferred} firing with the client, or failing with the
            reason the connection was lost before the echo arrived.
        """
        client = yield self._connect(port, creator)
        echoed = yield client.exchange(data)
        self.assertEqual(echoed, data)
        return client


class LoopbackTests(_LoopbackTestCase):
    """
    What clients get from a C{ssl:} listener over real loopback sockets.
    """

    @inlineCallbacks
    def test_tls13_by_default(self) -> None:
        """
        A client offering every version gets TLS 1.3 and the server's
        certificate.
        """
        _, port = yield self._listen(_ssl_description(self.key_path, self.cert_path))
        creator = _ClientTLS()
        client = yield self._echo(port, creator)
        self.assertEqual(creator.connection.get_protocol_version_name(), "TLSv1.3")
        self.assertEqual(
            _fingerprint(client.transport.getPeerCertificate()),
            _fingerprint(self.cert),
        )

    @inlineCallbacks
    def test_direct_writes(self) -> None:
        """
        The listener's connections send each TLS record in the turn it is
        written (L{suto_server.net.direct}), and the exchange works over
        them, a large echo included.
        """
        _, port = yield self._listen(_ssl_description(self.key_path, self.cert_path))
        self.assertIs(port.transport, DirectWriteServer)
        yield self._echo(port, _ClientTLS(), b"x" * 300_000)

    @inlineCallbacks
    def test_tls11_refused(self) -> None:
        """
        A client that offers at most TLS 1.1 (and any cipher suite at all)
        gets no connection.  If the local OpenSSL will not even offer 1.1
        the handshake fails on the client's side, which is refused too.
        """
        _, port = yield self._listen(_ssl_description(self.key_path, self.cert_path))
        creator = _ClientTLS(
            max_version=SSL.TLS1_1_VERSION, ciphers=b"ALL:@SECLEVEL=0"
        )
        error = yield self.assertFailure(self._echo(port, creator), SSL.Error)
        self.assertTrue(
            "alert protocol version" in str(error)
            or "no protocols available" in str(error),
            str(error),
        )

    @inlineCallbacks
    def test_tls12_modern_cipher(self) -> None:
        """
        A TLS 1.2 client offering a modern suite (ECDHE, AES-GCM) connects
        with it.
        """
        _, port = yield self._listen(_ssl_description(self.key_path, self.cert_path))
        creator = _ClientTLS(
            max_version=SSL.TLS1_2_VERSION, ciphers=b"ECDHE-ECDSA-AES128-GCM-SHA256"
        )
        yield self._echo(port, creator)
        self.assertEqual(creator.connection.get_protocol_version_name(), "TLSv1.2")
        self.assertEqual(
            creator.connection.get_cipher_name(), "ECDHE-ECDSA-AES128-GCM-SHA256"
        )

    @inlineCallbacks
    def test_tls12_cbc_cipher_refused(self) -> None:
        """
        A TLS 1.2 client offering only a CBC suite gets no connection,
        although Twisted's default list would accept it.
        """
        _, port = yield self._listen(_ssl_description(self.key_path, self.cert_path))
        creator = _ClientTLS(
            max_version=SSL.TLS1_2_VERSION, ciphers=b"ECDHE-ECDSA-AES128-SHA"
        )
        error = yield self.assertFailure(self._echo(port, creator), SSL.Error)
        self.assertIn("alert handshake failure", str(error))

    @inlineCallbacks
    def test_reload_keeps_live_connection(self) -> None:
        """
        After a reload new connections see the new certificate, while a
        connection made before it keeps the old one and still exchanges
        data.
        """
        endpoint, port = yield self._listen(
            _ssl_description(self.key_path, self.cert_path)
        )
        before = yield self._echo(port, _ClientTLS())
        _, _, renewed = self.files.server_identity()
        endpoint.tls.reload()
        after = yield self._echo(port, _ClientTLS())
        self.assertEqual(
            _fingerprint(after.transport.getPeerCertificate()), _fingerprint(renewed)
        )
        echoed = yield before.exchange(b"still here")
        self.assertEqual(echoed, b"still here")
        self.assertEqual(
            _fingerprint(before.transport.getPeerCertificate()),
            _fingerprint(self.cert),
        )

    @inlineCallbacks
    def test_failed_reload_keeps_serving(self) -> None:
        """
        After a reload with a broken key file has raised, new connections
        still get the old certificate.
        """
        endpoint, port = yield self._listen(
            _ssl_description(self.key_path, self.cert_path)
        )
        self.files.write("server.key", b"not a key")
        self.assertRaises(TLSConfigurationError, endpoint.tls.reload)
        client = yield self._echo(port, _ClientTLS())
        self.assertEqual(
            _fingerprint(client.transport.getPeerCertificate()),
            _fingerprint(self.cert),
        )

    @inlineCallbacks
    def test_chain_sent(self) -> None:
        """
        The certificates of C{extraCertChain} follow the server's own.
        """
        authority_key = _new_key()
        authority = _certificate("Example CA", authority_key, authority=True)
        key = _new_key()
        own = _certificate("server", key, authority, authority_key)
        _, port = yield self._listen(
            _ssl_description(
                self.files.write("issued.key", _key_pem(key)),
                self.files.write("issued.crt", _cert_pem(own)),
                ":extraCertChain="
                + quoteStringArgument(
                    self.files.write("chain.pem", _cert_pem(authority))
                ),
            )
        )
        creator = _ClientTLS()
        yield self._echo(port, creator)
        self.assertEqual(
            [_fingerprint(each) for each in creator.connection.get_peer_cert_chain()],
            [_fingerprint(own), _fingerprint(authority)],
        )

    @inlineCallbacks
    def test_ipv6_interface(self) -> None:
        """
        An IPv6 literal as the interface listens on IPv6.
        """
        _, port = yield self._listen(
            _ssl_description(self.key_path, self.cert_path).replace(
                "interface=127.0.0.1", "interface=\\:\\:1"
            )
        )
        self.assertIsInstance(port.getHost(), IPv6Address)
        yield self._echo(port, _ClientTLS())


class MutualTLSTests(_LoopbackTestCase):
    """
    With C{caCerts} and C{requireClientCert=yes} only clients with a
    current certificate from that authority connect; with C{caCerts} alone
    a client may also present no certificate.
    """

    def setUp(self) -> None:
        super().setUp()
        self.authority_key = _new_key()
        self.authority = _certificate(
            "Client CA", self.authority_key, authority=True
        )
        self.authorities = quoteStringArgument(
            self.files.write("clients.pem", _cert_pem(self.authority))
        )

    def _client(self, issuer=None, issuer_key=None, **validity) -> _ClientTLS:
        """
        Client settings with a certificate from C{issuer}, by default the
        configured authority.
        """
        key = _new_key()
        cert = _certificate(
            "device",
            key,
            issuer or self.authority,
            issuer_key or self.authority_key,
            **validity,
        )
        return _ClientTLS(certificate=cert, key=key)

    @inlineCallbacks
    def _try(self, creator: _ClientTLS, require: str = "yes"):
        """
        Start the listener, then connect and exchange one message.

        @param require: the listener's C{requireClientCert}.
        """
        _, port = yield self._listen(
            _ssl_description(
                self.key_path,
                self.cert_path,
                f":caCerts={self.authorities}:requireClientCert={require}",
            )
        )
        yield self._echo(port, creator)

    @inlineCallbacks
    def _refused(self, creator: _ClientTLS, alert: str, require: str = "yes"):
        """
        Check that the server ends the handshake with C{alert}.
        """
        error = yield self.assertFailure(self._try(creator, require), SSL.Error)
        self.assertIn(alert, str(error))

    @inlineCallbacks
    def test_signed_client_accepted(self) -> None:
        """
        A client certificate signed by the configured authority connects.
        """
        yield self._try(self._client())

    def test_no_client_certificate_refused(self) -> None:
        """
        A client without a certificate gets no connection.
        """
        return self._refused(_ClientTLS(), "alert certificate required")

    def test_foreign_authority_refused(self) -> None:
        """
        A client certificate from another authority gets no connection.
        """
        other_key = _new_key()
        other = _certificate("Other CA", other_key, authority=True)
        return self._refused(self._client(other, other_key), "alert unknown ca")

    def test_expired_client_certificate_refused(self) -> None:
        """
        An expired client certificate from the configured authority gets no
        connection.
        """
        expired = self._client(
            not_before=NOW - datetime.timedelta(days=30),
            not_after=NOW - datetime.timedelta(days=1),
        )
        return self._refused(expired, "alert certificate expired")

    @inlineCallbacks
    def test_optional_client_certificate(self) -> None:
        """
        Without C{requireClientCert=yes} a client with no certificate
        connects, and so does one with a certificate from the authority.
        """
        yield self._try(_ClientTLS(), require="no")
        yield self._try(self._client(), require="no")

    def test_optional_client_certificate_still_verified(self) -> None:
        """
        Without C{requireClientCert=yes} a certificate from another
        authority is still refused.
        """
        other_key = _new_key()
        other = _certificate("Other CA", other_key, authority=True)
        return self._refused(
            self._client(other, other_key), "alert unknown ca", require="no"
        )


@implementer(IListenerWitness)
class _RecordingWitness:
    """
    Records what a listener tells its witness.
    """

    def __init__(self) -> None:
        self.told: list = []

    def refused(self, host) -> None:
        self.told.append(("refused", host))

    def handshake_failed(self, host, reason) -> None:
        self.told.append(("handshake_failed", host, reason))


@implementer(IStreamServerEndpoint)
class _CapturingTCP:
    """
    A TCP endpoint that keeps the factory it is asked to listen with.
    """

    factory = None

    def listen(self, factory):
        self.factory = factory
        return succeed(None)


class _Refusing(Factory):
    """
    Refuses every connection, as the connection gate may.
    """

    def buildProtocol(self, addr):
        return None


class WitnessTests(SynchronousTestCase):
    """
    A TLS listener tells its L{IListenerWitness} about the connections that
    ended before the protocol behind TLS heard from them, in memory.
    """

    def setUp(self) -> None:
        files = _Files(self.mktemp())
        key_path, cert_path, _ = files.server_identity()
        self.tls = ReloadableServerTLS(key_path, cert_path)
        self.witness = _RecordingWitness()
        self.peer = IPv4Address("TCP", "192.0.2.7", 40000)

    def listening(self, factory):
        """
        @return: the TLS factory a watched endpoint listens with.
        """
        tcp = _CapturingTCP()
        endpoint = TLSServerEndpoint(tcp, self.tls)
        watch([endpoint, object()], self.witness)
        endpoint.listen(factory)
        return tcp.factory

    def test_witness_interface(self) -> None:
        """
        The recording witness provides the interface.
        """
        self.assertTrue(verifyObject(IListenerWitness, self.witness))

    def test_refused(self) -> None:
        """
        A connection the wrapped factory refuses is told as refused, with
        its host, and closed before any TLS.
        """
        self.assertIsNone(self.listening(_Refusing()).buildProtocol(self.peer))
        self.assertEqual(self.witness.told, [("refused", "192.0.2.7")])

    def test_handshake_failed(self) -> None:
        """
        A peer whose TLS handshake fails is told as such, with OpenSSL's
        reason.
        """
        protocol = self.listening(_EchoFactory()).buildProtocol(self.peer)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        [(what, host, reason)] = self.witness.told
        self.assertEqual((what, host), ("handshake_failed", "192.0.2.7"))
        self.assertEqual(reason, "http request")

    def test_untrusted_certificate(self) -> None:
        """
        A device that does not trust the server's certificate gives up on
        the handshake (Twisted's client closes without an alert), which the
        witness hears as a handshake the peer abandoned.
        """
        files = _Files(self.mktemp())
        _, other_path, other = files.server_identity("other")
        client = TLSMemoryBIOFactory(
            optionsForClientTLS(
                "server", trustRoot=Certificate.loadPEM(_cert_pem(other))
            ),
            True,
            Factory.forProtocol(Protocol),
        ).buildProtocol(None)
        server = self.listening(_EchoFactory()).buildProtocol(self.peer)
        pump = iosim.connect(
            server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client)
        )
        pump.flush()
        [(what, host, reason)] = self.witness.told
        self.assertEqual((what, host), ("handshake_failed", "192.0.2.7"))
        self.assertEqual(
            reason, "the peer closed the connection during the handshake"
        )

    def test_silent_peer(self) -> None:
        """
        A peer that goes away without a TLS error (a port scan, say) is not
        a failed handshake.
        """
        protocol = self.listening(_EchoFactory()).buildProtocol(self.peer)
        protocol.makeConnection(StringTransport())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.witness.told, [])

    def test_wrapped_endpoint_watched(self) -> None:
        """
        An endpoint the daemon's options wrap (L{OptionEndpoint}, which
        exposes the wrapped one's C{tls}) is watched all the same.
        """
        tcp = _CapturingTCP()
        wrapped = OptionEndpoint("--api-listen", "ssl:8443", TLSServerEndpoint(tcp, self.tls))
        watch([wrapped], self.witness)
        wrapped.listen(_Refusing())
        self.assertIsNone(tcp.factory.buildProtocol(self.peer))
        self.assertEqual(self.witness.told, [("refused", "192.0.2.7")])

    def test_unwatched(self) -> None:
        """
        An endpoint nobody watches listens and refuses as before.
        """
        tcp = _CapturingTCP()
        TLSServerEndpoint(tcp, self.tls).listen(_Refusing())
        self.assertIsNone(tcp.factory.buildProtocol(self.peer))


class SessionTests(SynchronousTestCase):
    """
    The listener keeps no session for a client to resume: the agent opens
    a fresh connection each time, so a session cache would hold memory for
    nothing.  A client that tries to resume anyway gets a full handshake.
    """

    def setUp(self) -> None:
        self.files = _Files(self.mktemp())
        self.key_path, self.cert_path, _ = self.files.server_identity()
        self.client_context = SSL.Context(SSL.TLS_CLIENT_METHOD)

    def connect(self, tls: ReloadableServerTLS, session=None) -> tuple:
        """
        Connect a client to C{tls} in memory, offering C{session} if
        given, and pass a record each way.

        @return: the client connection, which has read the server's
            session tickets, and the server's, which the caller keeps
            open: OpenSSL drops the session of a server connection freed
            without a shutdown from its cache.
        """
        server = tls.serverConnectionForTLS(None)
        server.set_accept_state()
        client = SSL.Connection(self.client_context, None)
        client.set_connect_state()
        if session is not None:
            client.set_session(session)
        handshake(server, client)
        client.send(b"hello")
        move(client, server)
        self.assertEqual(server.recv(100), b"hello")
        server.send(b"welcome")
        move(server, client)
        self.assertEqual(client.recv(100), b"welcome")
        return client, server

    def test_no_session_cache(self) -> None:
        """
        The listener's context caches no session.
        """
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        context = tls.serverConnectionForTLS(None).get_context()
        self.assertEqual(context.get_session_cache_mode(), SSL.SESS_CACHE_OFF)

    def test_resumption_attempt(self) -> None:
        """
        A client offering the session of its previous connection gets a
        full handshake, and a connection that works.
        """
        from OpenSSL._util import lib

        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        client, server = self.connect(tls)
        again, _ = self.connect(tls, client.get_session())
        self.assertEqual(lib.SSL_session_reused(again._ssl), 0)

    def test_resumption_attempt_tls12(self) -> None:
        """
        So does a TLS 1.2 client offering its previous session's id.
        """
        from OpenSSL._util import lib

        self.client_context.set_max_proto_version(SSL.TLS1_2_VERSION)
        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        client, server = self.connect(tls)
        again, _ = self.connect(tls, client.get_session())
        self.assertEqual(again.get_protocol_version_name(), "TLSv1.2")
        self.assertEqual(lib.SSL_session_reused(again._ssl), 0)

    def test_resumption_would_be_seen(self) -> None:
        """
        The same client does resume with a server that caches sessions:
        the test above would see a resumption.
        """
        from OpenSSL._util import lib

        tls = ReloadableServerTLS(self.key_path, self.cert_path)
        tls._context.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        client, server = self.connect(tls)
        again, _ = self.connect(tls, client.get_session())
        self.assertEqual(lib.SSL_session_reused(again._ssl), 1)


class ReleaseBuffersTests(SynchronousTestCase):
    """
    The listener's connections let OpenSSL free their record buffers while
    idle, so a fleet of idle agents does not hold 25 to 29 KB of buffers
    each.  L{CertificateOptions} sets the mode today; these tests keep it
    set whatever builds the context tomorrow.
    """

    def setUp(self) -> None:
        from twisted.internet.testing import MemoryReactor

        self.files = _Files(self.mktemp())
        key_path, cert_path, _ = self.files.server_identity()
        self.endpoint = server_endpoint(
            MemoryReactor(), _ssl_description(key_path, cert_path)
        )

    def assert_releases_buffers(self) -> None:
        from OpenSSL._util import lib

        connection = self.endpoint.tls.serverConnectionForTLS(None)
        # pyOpenSSL has no getter for the mode and refuses to touch a
        # context that made a connection; OpenSSL's SSL_set_mode adding no
        # mode returns the connection's whole mode mask, which it takes
        # from the context it was made from.
        mode = lib.SSL_set_mode(connection._ssl, 0)
        self.assertEqual(mode & SSL.MODE_RELEASE_BUFFERS, SSL.MODE_RELEASE_BUFFERS)

    def test_listener_context(self) -> None:
        """
        The connections of a listener built from an C{ssl:} description
        come from a context with C{SSL_MODE_RELEASE_BUFFERS}.
        """
        self.assert_releases_buffers()

    def test_reloaded_context(self) -> None:
        """
        So do those made after the certificate is reloaded.
        """
        self.files.server_identity()
        self.endpoint.tls.reload()
        self.assert_releases_buffers()


class RevocationTests(_LoopbackTestCase):
    """
    With C{crlFile} next to C{caCerts} the client certificates the CRLs
    revoke are refused during the handshake, and a CRL the listener cannot
    trust is refused at start and on reload.
    """

    def setUp(self) -> None:
        super().setUp()
        self.authority = pki.Authority("Client CA")
        self.pki_files = pki.Files(self.mktemp())
        self.authorities = self.pki_files.write("clients.pem", self.authority.certificate)
        self.host_key, self.host = self.authority.issue("host", client=True)
        _, self.other_host = self.authority.issue("other host", client=True)

    def _crl(self, *crls) -> str:
        return self.pki_files.write_bytes("revoked.pem", pki.crl_pem(*crls))

    def _description(self, crl_path: str | None = None) -> str:
        crl = "" if crl_path is None else f":crlFile={quoteStringArgument(crl_path)}"
        return _ssl_description(
            self.key_path,
            self.cert_path,
            f":caCerts={quoteStringArgument(self.authorities)}"
            f":requireClientCert=yes{crl}",
        )

    def _host(self) -> _ClientTLS:
        return _ClientTLS(certificate=self.host, key=self.host_key)

    @inlineCallbacks
    def _revoked(self, port):
        """
        Check that the host's handshake ends with the server's alert that
        its certificate is revoked.
        """
        error = yield self.assertFailure(self._echo(port, self._host()), SSL.Error)
        self.assertIn("alert certificate revoked", str(error))

    @inlineCallbacks
    def test_good_certificate_accepted(self) -> None:
        """
        A certificate the CRL does not list connects.
        """
        _, port = yield self._listen(
            self._description(self._crl(self.authority.revocations(self.other_host)))
        )
        yield self._echo(port, self._host())

    @inlineCallbacks
    def test_revoked_certificate_refused(self) -> None:
        """
        A certificate the CRL lists gets no connection, while another from
        the same authority still connects.
        """
        _, port = yield self._listen(
            self._description(self._crl(self.authority.revocations(self.host)))
        )
        yield self._revoked(port)
        other_key, other = self.authority.issue("third host", client=True)
        yield self._echo(port, _ClientTLS(certificate=other, key=other_key))

    @inlineCallbacks
    def test_several_authorities(self) -> None:
        """
        One file holds the CRLs of every authority of C{caCerts}; each
        revokes its own certificates.
        """
        second = pki.Authority("Second CA")
        self.authorities = self.pki_files.write(
            "both.pem", self.authority.certificate, second.certificate
        )
        second_key, second_host = second.issue("second host", client=True)
        _, port = yield self._listen(
            self._description(
                self._crl(
                    self.authority.revocations(), second.revocations(second_host)
                )
            )
        )
        yield self._echo(port, self._host())
        error = yield self.assertFailure(
            self._echo(port, _ClientTLS(certificate=second_host, key=second_key)),
            SSL.Error,
        )
        self.assertIn("alert certificate revoked", str(error))

    @inlineCallbacks
    def test_authority_without_crl_fails_closed(self) -> None:
        """
        A client whose authority has no CRL in the file is refused: a
        missing list is not read as "nothing revoked".
        """
        second = pki.Authority("Second CA")
        self.authorities = self.pki_files.write(
            "both.pem", self.authority.certificate, second.certificate
        )
        second_key, second_host = second.issue("second host", client=True)
        _, port = yield self._listen(self._description(self._crl(self.authority.revocations())))
        yield self.assertFailure(
            self._echo(port, _ClientTLS(certificate=second_host, key=second_key)),
            SSL.Error,
        )

    def test_crl_of_another_authority_refused(self) -> None:
        """
        A CRL that none of C{caCerts} signed stops the listener from
        starting, even when it names the same issuer.
        """
        impostor = pki.Authority("Client CA")
        error = self.assertRaises(
            TLSConfigurationError,
            server_endpoint,
            self.reactor,
            self._description(self._crl(impostor.revocations(self.host))),
        )
        self.assertIn("not signed by any of the client certificate", str(error))

    def test_expired_crl_refused(self) -> None:
        """
        A CRL whose nextUpdate has passed stops the listener from starting.
        """
        stale = self.authority.revocations(
            last_update=pki.NOW - 2 * pki.DAY, next_update=pki.NOW - pki.HOUR
        )
        error = self.assertRaises(
            TLSConfigurationError,
            server_endpoint,
            self.reactor,
            self._description(self._crl(stale)),
        )
        self.assertIn("expired at", str(error))

    def test_crl_expiry_read_on_injected_clock(self) -> None:
        """
        The nextUpdate is compared with the listener's clock.
        """
        clock = Clock()
        clock.advance((pki.NOW + 2 * pki.DAY).timestamp())
        self.assertRaises(
            TLSConfigurationError,
            server_endpoint,
            clock,
            self._description(self._crl(self.authority.revocations())),
        )

    @inlineCallbacks
    def test_crl_expiring_while_serving_fails_closed(self) -> None:
        """
        Once a loaded CRL's nextUpdate passes, the authority's clients are
        refused until a fresh CRL is reloaded.
        """
        endpoint, port = yield self._listen(
            self._description(self._crl(self.authority.revocations()))
        )
        # OpenSSL reads the wall clock; move the context's verification
        # time past the nextUpdate instead.
        context = endpoint.tls.serverConnectionForTLS(None).get_context()
        context.get_cert_store().set_time(
            (pki.NOW + 2 * pki.DAY).replace(tzinfo=None)
        )
        error = yield self.assertFailure(self._echo(port, self._host()), SSL.Error)
        self.assertIn("alert certificate expired", str(error))
        endpoint.tls.reload()
        yield self._echo(port, self._host())

    def test_unparseable_crl_refused(self) -> None:
        """
        A CRL that does not parse stops the listener from starting.
        """
        broken = self.pki_files.write_bytes(
            "broken.pem",
            b"-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n",
        )
        error = self.assertRaises(
            TLSConfigurationError, server_endpoint, self.reactor, self._description(broken)
        )
        self.assertIn("does not parse", str(error))

    def test_file_without_crl_refused(self) -> None:
        """
        A file holding no CRL at all (a certificate, say) is refused.
        """
        error = self.assertRaises(
            TLSConfigurationError,
            server_endpoint,
            self.reactor,
            self._description(self.authorities),
        )
        self.assertIn("holds no PEM CRL", str(error))

    def test_crl_needs_authorities(self) -> None:
        """
        C{crlFile} without C{caCerts} is refused.
        """
        description = _ssl_description(
            self.key_path,
            self.cert_path,
            f":crlFile={quoteStringArgument(self._crl(self.authority.revocations()))}",
        )
        error = self.assertRaises(
            TLSConfigurationError, server_endpoint, self.reactor, description
        )
        self.assertIn("(caCerts)", str(error))

    @inlineCallbacks
    def test_reload_picks_up_revocation(self) -> None:
        """
        A revocation written to the CRL file takes effect on reload, without
        a restart; a reload whose CRL is unusable keeps the CRLs in use.
        """
        crl_path = self._crl(self.authority.revocations())
        endpoint, port = yield self._listen(self._description(crl_path))
        yield self._echo(port, self._host())
        self._crl(self.authority.revocations(self.host))
        endpoint.tls.reload()
        yield self._revoked(port)
        self._crl(pki.Authority("Client CA").revocations())
        self.assertRaises(TLSConfigurationError, endpoint.tls.reload)
        yield self._revoked(port)
