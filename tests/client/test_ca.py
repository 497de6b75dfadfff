"""
Tests for the agent's CA trust and client certificates
(L{suto_client.tls.authority_client_creator}, L{load_client_identity}),
with real handshakes on loopback: against a plain TLS server, and end to
end through L{suto_client.protocol.authenticate} against a L{SutoServer}
that demands client certificates.

Every CA, key and certificate is made for the test with C{cryptography}.
"""

from __future__ import annotations

import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    quoteStringArgument,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from suto_client.classic_machine import Outcome
from suto_client.protocol import AuthResult, authenticate
from suto_client.state import Account
from suto_client.tls import (
    MAX_PEM_BYTES,
    CertificateRejected,
    ClientTLSError,
    authority_client_creator,
    load_client_identity,
    pinned_client_creator,
)
from suto_server.core import schemes
from suto_server.net.endpoint import server_endpoint
from suto_server.rules.rendezvous import Verdict
from suto_server.settings import Listeners, Network, Timing
from suto_server.store.memory import MemoryStore
from tests.support.pki import DAY, HOUR, LOOPBACK, NOW, Authority, Files, subject
from tests.support.server import make_server

PASSWORD = "alice's secret"


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def listen_description(key_path: str, cert_path: str, extra: str = "") -> str:
    return (
        f"ssl:0:interface={LOOPBACK}:privateKey={quoteStringArgument(key_path)}"
        f":certKey={quoteStringArgument(cert_path)}{extra}"
    )


class _Greeter(Protocol):
    def connectionMade(self):
        self.transport.write(b"hello")


class _Listener(Protocol):
    def __init__(self):
        self.received = defer.Deferred()
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        if not self.received.called:
            self.received.callback(data)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class AuthorityHandshakeTests(TestCase):
    """
    The CA-trusting client against a plain TLS server on loopback.
    """

    def setUp(self):
        self.files = Files(self.mktemp())
        self.authority = Authority("SUTO Test CA")
        self.bundle = self.files.write("ca.pem", self.authority.certificate)

    @defer.inlineCallbacks
    def serve(self, key, *chain):
        """
        Listen on loopback with C{key} and the certificate C{chain}.
        """
        key_path = self.files.write("server.key", key)
        cert_path = self.files.write("server.crt", *chain)
        port = yield server_endpoint(
            reactor, listen_description(key_path, cert_path)
        ).listen(Factory.forProtocol(_Greeter))
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def connect(self, port, creator):
        client = _Listener()
        yield connectProtocol(
            wrapClientTLS(creator, TCP4ClientEndpoint(reactor, LOOPBACK, port)),
            client,
        )
        yield client.lost
        return client

    @defer.inlineCallbacks
    def assert_refused(self, port, presented, reason, host=LOOPBACK):
        """
        Connecting to C{port} trusting the bundle for C{host} fails before
        any data arrives, with a L{CertificateRejected} naming the
        presented fingerprint and the expected reason.
        """
        client = yield self.connect(
            port, authority_client_creator(host, self.bundle)
        )
        self.assertFalse(client.received.called)
        rejected = client.reason.value
        self.assertIsInstance(rejected, CertificateRejected)
        self.assertEqual(
            (rejected.presented, rejected.reason), (fingerprint(presented), reason)
        )
        self.assertIn(fingerprint(presented), str(rejected))
        self.assertIn(reason, str(rejected))

    def test_creator_interface(self):
        """
        The CA-trusting creator is a client connection creator.
        """
        self.assertTrue(
            verifyObject(
                IOpenSSLClientConnectionCreator,
                authority_client_creator(LOOPBACK, self.bundle),
            )
        )

    @defer.inlineCallbacks
    def test_ip_address_accepted(self):
        """
        A certificate the bundle's CA issued for the server's IP address
        is accepted, and data flows.
        """
        port = yield self.serve(*self.authority.issue("suto", addresses=(LOOPBACK,)))
        client = yield self.connect(
            port, authority_client_creator(LOOPBACK, self.bundle)
        )
        self.assertEqual(self.successResultOf(client.received), b"hello")

    @defer.inlineCallbacks
    def test_dns_name_accepted(self):
        """
        Given a DNS name, the certificate must be issued for that name.
        """
        port = yield self.serve(*self.authority.issue("suto", dns_names=("suto.example",)))
        client = yield self.connect(
            port, authority_client_creator("suto.example", self.bundle)
        )
        self.assertEqual(self.successResultOf(client.received), b"hello")

    @defer.inlineCallbacks
    def test_intermediate_accepted(self):
        """
        A server that sends its certificate with an intermediate CA is
        accepted when the bundle holds only the root.
        """
        intermediate = Authority("SUTO Issuing CA", issuer=self.authority)
        key, own = intermediate.issue("suto", addresses=(LOOPBACK,))
        port = yield self.serve(key, own, intermediate.certificate)
        client = yield self.connect(
            port, authority_client_creator(LOOPBACK, self.bundle)
        )
        self.assertEqual(self.successResultOf(client.received), b"hello")

    @defer.inlineCallbacks
    def test_wrong_address_refused(self):
        """
        A certificate issued by the CA, but for another address, is
        refused.
        """
        key, own = self.authority.issue("suto", addresses=("192.0.2.7",))
        port = yield self.serve(key, own)
        yield self.assert_refused(port, own, "it is not issued for 127.0.0.1")

    @defer.inlineCallbacks
    def test_wrong_dns_name_refused(self):
        """
        A certificate for another DNS name is refused.
        """
        key, own = self.authority.issue("suto", dns_names=("other.example",))
        port = yield self.serve(key, own)
        yield self.assert_refused(
            port, own, "it is not issued for suto.example", host="suto.example"
        )

    @defer.inlineCallbacks
    def test_common_name_alone_refused(self):
        """
        An address in the common name only does not count: certificates
        name their server in subjectAltNames.
        """
        key, own = self.authority.issue(LOOPBACK)
        port = yield self.serve(key, own)
        yield self.assert_refused(
            port, own, "it names no subjectAltName to match 127.0.0.1 against"
        )

    @defer.inlineCallbacks
    def test_expired_refused(self):
        """
        An expired certificate is refused, saying so.
        """
        key, own = self.authority.issue(
            "suto",
            addresses=(LOOPBACK,),
            not_before=NOW - 3 * DAY,
            not_after=NOW - DAY,
        )
        port = yield self.serve(key, own)
        yield self.assert_refused(port, own, "it has expired")

    @defer.inlineCallbacks
    def test_not_yet_valid_refused(self):
        """
        A certificate whose validity has not started is refused.
        """
        key, own = self.authority.issue(
            "suto",
            addresses=(LOOPBACK,),
            not_before=NOW + DAY,
            not_after=NOW + 3 * DAY,
        )
        port = yield self.serve(key, own)
        yield self.assert_refused(port, own, "it is not valid yet")

    @defer.inlineCallbacks
    def test_expired_intermediate_refused(self):
        """
        An expired intermediate CA makes the chain unacceptable; the
        message still names the server's own certificate.
        """
        intermediate = Authority(
            "SUTO Issuing CA", issuer=self.authority, not_after=NOW - HOUR / 2
        )
        key, own = intermediate.issue("suto", addresses=(LOOPBACK,))
        port = yield self.serve(key, own, intermediate.certificate)
        yield self.assert_refused(
            port, own, "the chain certificate at depth 1 has expired"
        )

    @defer.inlineCallbacks
    def test_foreign_authority_refused(self):
        """
        A certificate from a CA outside the bundle is refused.
        """
        key, own = Authority("Elsewhere CA").issue("suto", addresses=(LOOPBACK,))
        port = yield self.serve(key, own)
        yield self.assert_refused(
            port, own, "no certificate in the CA bundle issued it"
        )

    @defer.inlineCallbacks
    def test_self_signed_refused(self):
        """
        A self-signed certificate (what a server makes by default, trusted
        by pin) is refused under CA trust.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        own = (
            x509.CertificateBuilder()
            .subject_name(subject("suto"))
            .issuer_name(subject("suto"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - HOUR)
            .not_valid_after(NOW + DAY)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        port = yield self.serve(key, own)
        yield self.assert_refused(
            port, own, "it is self-signed and not in the CA bundle"
        )


class FilesTests(SynchronousTestCase):
    """
    Unusable CA bundles, client certificates and keys are refused with a
    L{ClientTLSError} that names the file.
    """

    def setUp(self):
        self.files = Files(self.mktemp())
        authority = Authority("SUTO Clients CA")
        self.key, self.certificate = authority.issue("alice", client=True)
        self.cert_path = self.files.write("client.crt", self.certificate)
        self.key_path = self.files.write("client.key", self.key)

    def test_bundle(self):
        """
        A missing, empty, non-PEM or oversized CA bundle is refused.
        """
        paths = [
            os.path.join(self.files.directory, "missing.pem"),
            self.files.write_bytes("empty.pem", b""),
            self.files.write_bytes("junk.pem", b"not a certificate\n"),
            self.files.write_bytes("huge.pem", b" " * (MAX_PEM_BYTES + 1)),
        ]
        for path in paths:
            error = self.assertRaises(
                ClientTLSError, authority_client_creator, LOOPBACK, path
            )
            self.assertIn(path, str(error))

    def test_identity_loaded(self):
        """
        A certificate with its own key loads; the chain after it is kept,
        and the key stays out of the identity's C{repr}.
        """
        authority = Authority("SUTO Clients CA")
        chained = self.files.write(
            "chained.crt", self.certificate, authority.certificate
        )
        identity = load_client_identity(chained, self.key_path)
        self.assertEqual(identity.certificate, self.certificate)
        self.assertEqual(identity.chain, (authority.certificate,))
        self.assertNotIn("key", repr(identity))

    def test_key_of_another_certificate(self):
        """
        A key that does not belong to the certificate is refused.
        """
        other = self.files.write("other.key", ec.generate_private_key(ec.SECP256R1()))
        error = self.assertRaises(
            ClientTLSError, load_client_identity, self.cert_path, other
        )
        self.assertIn(other, str(error))

    def test_encrypted_key(self):
        """
        An encrypted key is refused: the agent has nobody to type its
        passphrase.
        """
        encrypted = self.files.write_bytes(
            "encrypted.key",
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
        )
        error = self.assertRaises(
            ClientTLSError, load_client_identity, self.cert_path, encrypted
        )
        self.assertIn("encrypted", str(error))

    def test_unusable_files(self):
        """
        A missing certificate, a certificate file holding a key, and a key
        file holding a certificate are refused.
        """
        missing = os.path.join(self.files.directory, "missing.crt")
        for certificate, key, named in (
            (missing, self.key_path, missing),
            (self.key_path, self.key_path, self.key_path),
            (self.cert_path, self.cert_path, self.cert_path),
        ):
            error = self.assertRaises(
                ClientTLSError, load_client_identity, certificate, key
            )
            self.assertIn(named, str(error))


class MutualTLSEndToEndTests(TestCase):
    """
    L{authenticate} against a L{SutoServer} whose listener demands a
    client certificate signed by the clients' CA
    (C{caCerts=...:requireClientCert=yes}).
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.files = Files(self.mktemp())
        self.server_authority = Authority("SUTO Servers CA")
        self.client_authority = Authority("SUTO Clients CA")
        self.bundle = self.files.write("ca.pem", self.server_authority.certificate)
        key, self.server_certificate = self.server_authority.issue(
            "suto", addresses=(LOOPBACK,)
        )
        client_key, client_certificate = self.client_authority.issue(
            "alice", client=True
        )
        self.client_cert = self.files.write("client.crt", client_certificate)
        self.client_key = self.files.write("client.key", client_key)
        store = MemoryStore()
        store.add_user("alice", schemes.hash_password(PASSWORD), 0.0)
        clients = self.files.write("clients-ca.pem", self.client_authority.certificate)
        self.server = make_server(
            reactor,
            store=store,
            listeners=Listeners(
                devices=(
                    server_endpoint(
                        reactor,
                        listen_description(
                            self.files.write("server.key", key),
                            self.files.write("server.crt", self.server_certificate),
                            f":caCerts={quoteStringArgument(clients)}"
                            f":requireClientCert=yes",
                        ),
                    ),
                )
            ),
            network=Network(hello_interface=LOOPBACK),
            timing=Timing(auth_timeout=20),
        )
        self.server.startService()
        self.addCleanup(self.server.stopService)
        [listening] = self.server.listeners
        port = yield listening.listening
        self.port = port.getHost().port
        self.request = self.server.rendezvous.open("alice", [LOOPBACK])
        self.addCleanup(
            self.server.rendezvous.finish, self.request, Verdict.CANCELLED
        )

    def account(self, **fields) -> Account:
        defaults = dict(
            user="alice",
            server_host=LOOPBACK,
            server_port=self.port,
            ca=self.bundle,
            client_cert=self.client_cert,
            client_key=self.client_key,
            password=PASSWORD,
        )
        defaults.update(fields)
        return Account(**defaults)

    @defer.inlineCallbacks
    def assert_accepted(self, account):
        result = yield authenticate(reactor, account)
        self.assertEqual(result.outcome, Outcome.ACCEPTED)
        outcome = yield self.request.done
        self.assertEqual(
            (outcome.verdict, outcome.source), (Verdict.ACCEPTED, LOOPBACK)
        )

    @defer.inlineCallbacks
    def assert_not_accepted(self, account) -> AuthResult:
        """
        The agent reports an error, and the server's request stays
        unanswered: no exchange ever reached it.
        """
        result = yield authenticate(reactor, account)
        self.assertEqual(result.outcome, Outcome.ERROR)
        self.assertFalse(self.request.done.called)
        return result

    def test_ca_trust_with_client_certificate(self):
        """
        Trusting the server through the CA bundle and presenting a client
        certificate the server's CA list accepts, the agent authenticates.
        """
        return self.assert_accepted(self.account())

    def test_pin_with_client_certificate(self):
        """
        The pinned connection presents the client certificate too.
        """
        return self.assert_accepted(
            self.account(ca=None, pin=fingerprint(self.server_certificate))
        )

    @defer.inlineCallbacks
    def test_no_client_certificate_refused(self):
        """
        Without a client certificate the server refuses the handshake,
        and the agent passes on the server's reason.
        """
        result = yield self.assert_not_accepted(
            self.account(client_cert=None, client_key=None)
        )
        self.assertTrue(result.reason.startswith("TLS handshake failed: "))
        self.assertIn("certificate required", result.reason)

    @defer.inlineCallbacks
    def test_foreign_client_certificate_refused(self):
        """
        A client certificate from a CA the server does not accept is
        refused.
        """
        key, certificate = Authority("Elsewhere CA").issue("alice", client=True)
        result = yield self.assert_not_accepted(
            self.account(
                client_cert=self.files.write("foreign.crt", certificate),
                client_key=self.files.write("foreign.key", key),
            )
        )
        self.assertTrue(result.reason.startswith("TLS handshake failed: "))
        self.assertIn("unknown ca", result.reason)

    @defer.inlineCallbacks
    def test_untrusted_server_refused(self):
        """
        A server whose certificate the account's bundle does not vouch for
        gets no exchange, and the agent's reason names the certificate's
        fingerprint and what is wrong.
        """
        other = self.files.write("other-ca.pem", Authority("Elsewhere CA").certificate)
        result = yield self.assert_not_accepted(self.account(ca=other))
        self.assertIn(fingerprint(self.server_certificate), result.reason)
        self.assertIn("no certificate in the CA bundle issued it", result.reason)

    @defer.inlineCallbacks
    def test_unusable_client_key(self):
        """
        An account whose client key cannot be read does not connect; the
        reason names the file.
        """
        missing = os.path.join(self.files.directory, "missing.key")
        result = yield authenticate(reactor, self.account(client_key=missing))
        self.assertEqual(result.outcome, Outcome.ERROR)
        self.assertIn(missing, result.reason)
        self.assertFalse(self.request.done.called)

    @defer.inlineCallbacks
    def test_pinned_creator_presents_identity(self):
        """
        L{pinned_client_creator} given an identity completes a handshake
        the server demands a certificate for.
        """
        creator = pinned_client_creator(
            fingerprint(self.server_certificate),
            load_client_identity(self.client_cert, self.client_key),
        )
        client = _Listener()
        yield connectProtocol(
            wrapClientTLS(creator, TCP4ClientEndpoint(reactor, LOOPBACK, self.port)),
            client,
        )
        # The framed server greets nobody; the client speaks first.
        client.transport.write(b"SUTO_VERSION_2\r\n")
        reply = yield client.received
        self.assertEqual(reply, b"SUTO_VERSION_2\r\n")
        yield client.lost
