"""
Tests for L{suto_client.tls}: fingerprint pins and the pinned TLS client,
with real handshakes on the loopback interface.  CA trust and client
certificates are tested in L{tests.client.test_ca}.
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, reactor
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from suto_client.tls import PinMismatch, normalise_pin, pinned_client_creator

HEX = "0123456789abcdef" * 4


class NormalisePinTests(SynchronousTestCase):
    def test_forms(self):
        """
        Colon-separated, plain, upper- and lowercase hex, with or without a
        C{sha256:} prefix, all give the same 64 lowercase digits.
        """
        colons = ":".join(HEX[i : i + 2] for i in range(0, 64, 2))
        for text in (
            HEX,
            HEX.upper(),
            colons,
            colons.upper(),
            "sha256:" + HEX,
            "SHA256: " + colons.upper(),
            "  " + HEX + "\n",
        ):
            self.assertEqual(normalise_pin(text), HEX)

    def test_invalid(self):
        """
        Anything but 64 hex digits is a L{ValueError}.
        """
        for text in (
            "",
            HEX[:-1],
            HEX + "0",
            HEX[:-1] + "g",
            "sha1:" + HEX,
            "md5:" + HEX,
            HEX + " " * 300,
            None,
        ):
            self.assertRaises(ValueError, normalise_pin, text)

    def test_creator_interface(self):
        """
        The pinned creator is a client connection creator, and it refuses
        an invalid pin up front.
        """
        self.assertTrue(
            verifyObject(
                IOpenSSLClientConnectionCreator, pinned_client_creator(HEX)
            )
        )
        self.assertRaises(ValueError, pinned_client_creator, "nope")


def self_signed():
    """
    A throwaway ECDSA P-256 key and self-signed certificate, as a SUTO
    server makes by default.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "suto-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


class _Greeter(Protocol):
    def connectionMade(self):
        self.transport.write(b"hello")

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


class _Listener(Protocol):
    def __init__(self):
        self.received = defer.Deferred()
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.received.callback(data)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class PinnedHandshakeTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        key, certificate = self_signed()
        self.fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
        options = CertificateOptions(privateKey=key, certificate=certificate)
        self.server_factory = Factory.forProtocol(_Greeter)
        self.server_factory.lost = defer.Deferred()
        endpoint = SSL4ServerEndpoint(
            reactor, 0, options, interface="127.0.0.1"
        )
        self.port = yield endpoint.listen(self.server_factory)
        self.addCleanup(self.port.stopListening)

    def connect(self, pin):
        endpoint = wrapClientTLS(
            pinned_client_creator(pin),
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port),
        )
        client = _Listener()
        return connectProtocol(endpoint, client).addCallback(lambda _: client)

    @defer.inlineCallbacks
    def test_right_pin(self):
        """
        With the server's own fingerprint pinned, in the colon form, the
        handshake completes and data flows.
        """
        colons = ":".join(
            self.fingerprint[i : i + 2] for i in range(0, 64, 2)
        ).upper()
        client = yield self.connect(colons)
        data = yield client.received
        self.assertEqual(data, b"hello")
        yield client.lost
        yield self.server_factory.lost

    @defer.inlineCallbacks
    def test_wrong_pin(self):
        """
        With another fingerprint pinned, the handshake fails: no data is
        received, and the connection's loss reason is a L{PinMismatch}
        naming both the pinned and the presented fingerprint.
        """
        client = yield self.connect("00" * 32)
        yield client.lost
        reason = client.reason
        self.assertFalse(client.received.called)
        self.assertIsInstance(reason.value, PinMismatch)
        self.assertEqual(
            (reason.value.expected, reason.value.presented),
            ("00" * 32, self.fingerprint),
        )
        self.assertIn("00" * 32, str(reason.value))
        self.assertIn(self.fingerprint, str(reason.value))
        yield self.server_factory.lost


class ReleaseBuffersTests(SynchronousTestCase):
    """
    The agent's connections free their record buffers between records,
    as the server's do.
    """

    def test_pinned_connection(self):
        """
        A connection of the pinned creator comes from a context with
        C{SSL_MODE_RELEASE_BUFFERS}.
        """
        from OpenSSL import SSL
        from OpenSSL._util import lib

        connection = pinned_client_creator(HEX).clientConnectionForTLS(None)
        # pyOpenSSL has no getter for the mode; OpenSSL's SSL_set_mode
        # adding no mode returns the connection's whole mode mask.
        mode = lib.SSL_set_mode(connection._ssl, 0)
        self.assertEqual(mode & SSL.MODE_RELEASE_BUFFERS, SSL.MODE_RELEASE_BUFFERS)
