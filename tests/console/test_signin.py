# -*- test-case-name: tests.console.test_signin -*-
"""
The console's ways of signing in: one-time login links and client
certificates.
"""

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from suto_server.console.signin import (
    LINK_LIFETIME,
    MOST_LINKS,
    CertificateSignIn,
    IOperatorSignIn,
    LoginLinks,
    is_loopback,
)


class LoginLinksTests(SynchronousTestCase):
    """
    L{LoginLinks}: single-use, short-lived tokens kept as hashes.
    """

    def setUp(self):
        self.clock = Clock()
        self.links = LoginLinks(self.clock)

    def test_once(self):
        """
        A token gives its operator once, then nothing.
        """
        token = self.links.issue("root")
        self.assertEqual(self.links.redeem(token), "root")
        self.assertIsNone(self.links.redeem(token))

    def test_expires(self):
        """
        A token is worth nothing after its lifetime.
        """
        token = self.links.issue("root")
        self.clock.advance(LINK_LIFETIME)
        self.assertIsNone(self.links.redeem(token))
        self.assertEqual(len(self.links), 0)

    def test_unknown(self):
        """
        A made-up token, or one differing by a character, is refused.
        """
        token = self.links.issue("root")
        self.assertIsNone(self.links.redeem("nope"))
        self.assertIsNone(
            self.links.redeem(token[:-1] + ("A" if token[-1] != "A" else "B"))
        )
        self.assertEqual(self.links.redeem(token), "root")

    def test_kept_as_hashes(self):
        """
        No token is kept as it was given.
        """
        token = self.links.issue("root")
        self.assertNotIn(token, repr(vars(self.links)))
        self.assertNotIn(token.encode(), b"".join(self.links._links))

    def test_bounded(self):
        """
        Past L{MOST_LINKS} outstanding tokens, the oldest is forgotten.
        """
        first = self.links.issue("root")
        for _ in range(MOST_LINKS):
            self.links.issue("root")
        self.assertEqual(len(self.links), MOST_LINKS)
        self.assertIsNone(self.links.redeem(first))

    def test_unguessable(self):
        """
        Tokens differ and carry at least 256 bits (43 base64 characters).
        """
        tokens = {self.links.issue("root") for _ in range(10)}
        self.assertEqual(len(tokens), 10)
        self.assertTrue(all(len(t) >= 43 for t in tokens))


class LoopbackTests(SynchronousTestCase):
    """
    L{is_loopback}.
    """

    def test_addresses(self):
        """
        127.0.0.0/8, ::1 and IPv4-mapped loopback are loopback; others,
        and what is no address, are not.
        """
        yes = [
            IPv4Address("TCP", "127.0.0.1", 1),
            IPv4Address("TCP", "127.3.2.1", 1),
            IPv6Address("TCP", "::1", 1),
            IPv6Address("TCP", "::ffff:127.0.0.1", 1),
        ]
        no = [
            IPv4Address("TCP", "10.0.0.1", 1),
            IPv6Address("TCP", "2001:db8::1", 1),
            IPv4Address("TCP", "0.0.0.0", 1),
            object(),
        ]
        self.assertEqual([is_loopback(a) for a in yes], [True] * 4)
        self.assertEqual([is_loopback(a) for a in no], [False] * 4)


@implementer(ISSLTransport)
class FakeTLS:
    def __init__(self, certificate):
        self.certificate = certificate

    def getPeerCertificate(self):
        return self.certificate


class FakeChannel:
    def __init__(self, transport):
        self.transport = transport


class FakeRequest:
    def __init__(self, transport):
        self.channel = FakeChannel(transport)


class CertificateSignInTests(SynchronousTestCase):
    """
    L{CertificateSignIn} asks the role policy about the peer certificate.
    """

    def setUp(self):
        self.asked = []

        def admin_subject(certificate):
            self.asked.append(certificate)
            return "CN=it-alice" if certificate == "admin-cert" else None

        self.sign_in = CertificateSignIn(admin_subject)

    def test_interface(self):
        verifyObject(IOperatorSignIn, self.sign_in)

    def test_admin(self):
        """
        A certificate the policy gives the admin role signs in as its
        subject.
        """
        self.assertEqual(
            self.sign_in.operator_of(FakeRequest(FakeTLS("admin-cert"))),
            "CN=it-alice (client certificate)",
        )

    def test_others(self):
        """
        No certificate, a certificate without the role, or no TLS at all
        signs nobody in; without TLS the policy is not even asked.
        """
        self.assertIsNone(self.sign_in.operator_of(FakeRequest(FakeTLS(None))))
        self.assertIsNone(self.sign_in.operator_of(FakeRequest(FakeTLS("user-cert"))))
        self.assertIsNone(self.sign_in.operator_of(FakeRequest(object())))
        self.assertEqual(self.asked, ["user-cert"])
