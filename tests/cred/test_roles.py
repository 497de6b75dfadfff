"""
The roles a client certificate holds (L{suto_server.cred.roles}).
"""

from OpenSSL.crypto import X509
from twisted.trial.unittest import SynchronousTestCase

from suto_server.cred.roles import (
    ADMIN,
    VERIFY,
    PolicyError,
    RolePolicy,
    normal_subject,
    parse_subjects,
    parse_units,
    printable,
    shown_subject,
    subject_of,
)
from tests.support.pki import Authority

CA = Authority("Company CA")


def certificate(name, *units):
    return CA.issue(name, client=True, units=units)[1]


class ParsingTests(SynchronousTestCase):
    def test_units(self):
        """
        OU values are comma-separated, spaces around them dropped; an
        empty value is refused, an empty option grants nothing.
        """
        self.assertEqual(parse_units(" hosts, ops "), frozenset({"hosts", "ops"}))
        self.assertEqual(parse_units(""), frozenset())
        self.assertRaises(PolicyError, parse_units, "hosts,,ops")

    def test_subjects(self):
        """
        Subjects are separated by C{;}; one escaped inside a value stays
        in it.
        """
        self.assertEqual(
            parse_subjects(r"CN=a,O=Ex; CN=b\;c"),
            frozenset({"CN=a,O=Ex", r"CN=b\;c"}),
        )
        self.assertEqual(parse_subjects("  "), frozenset())

    def test_bad_subjects(self):
        """
        What is not an RFC 4514 subject, and the empty subject, are
        refused with a message naming the form.
        """
        error = self.assertRaises(PolicyError, normal_subject, "host1")
        self.assertIn("RFC 4514", str(error))
        self.assertRaises(PolicyError, parse_subjects, "CN=a;;CN=b")
        self.assertRaises(PolicyError, normal_subject, "x" * 2000)


class RolesOfTests(SynchronousTestCase):
    policy = RolePolicy.from_options(
        verify_units="suto-hosts",
        admin_units="it-security",
        admin_subjects="CN=operator1",
    )

    def test_by_unit(self):
        """
        A certificate with an OU that grants a role holds it, and only it.
        """
        self.assertEqual(
            self.policy.roles_of(certificate("db1", "suto-hosts")), {VERIFY}
        )
        self.assertEqual(
            self.policy.roles_of(certificate("sec", "it-security", "suto-hosts")),
            {VERIFY, ADMIN},
        )

    def test_by_subject(self):
        """
        A certificate whose whole subject is listed holds the role; one
        whose CN alone matches, inside a longer subject, does not.
        """
        self.assertEqual(self.policy.roles_of(certificate("operator1")), {ADMIN})
        self.assertEqual(
            self.policy.roles_of(certificate("operator1", "guests")), frozenset()
        )

    def test_nothing(self):
        """
        No certificate, a certificate the policy names nowhere, and any
        certificate under the empty policy hold no role.
        """
        self.assertEqual(self.policy.roles_of(None), frozenset())
        self.assertEqual(self.policy.roles_of(certificate("laptop", "staff")), frozenset())
        self.assertEqual(
            RolePolicy().roles_of(certificate("db1", "suto-hosts")), frozenset()
        )
        self.assertFalse(RolePolicy.from_options().grants_any)
        self.assertTrue(self.policy.grants_any)

    def test_subject_of(self):
        """
        The subject for audit records is the RFC 4514 form, the one a
        policy's subjects are written in.
        """
        cert = certificate("db1", "suto-hosts")
        self.assertEqual(subject_of(cert), "OU=suto-hosts,CN=db1")
        policy = RolePolicy.from_options(verify_subjects=subject_of(cert))
        self.assertEqual(policy.roles_of(cert), {VERIFY})


def peer(name, *units):
    """
    A client certificate as a TLS connection gives it (pyOpenSSL).
    """
    return X509.from_cryptography(certificate(name, *units))


class HolderTests(SynchronousTestCase):
    """
    L{RolePolicy.holder_of}: who holds a role on a connection, as the web
    console signs operators in.
    """

    policy = RolePolicy.from_options(
        verify_units="suto-hosts", admin_units="it-admins"
    )

    def test_holder(self):
        """
        A peer certificate holding the role gives its shown subject.
        """
        self.assertEqual(
            self.policy.holder_of(ADMIN, peer("ops1", "it-admins"), 255),
            "OU=it-admins,CN=ops1",
        )

    def test_not_holder(self):
        """
        A certificate holding another role, or none, and no certificate,
        give nobody.
        """
        for certificate_ in [peer("db1", "suto-hosts"), peer("x", "staff"), None]:
            self.assertIsNone(self.policy.holder_of(ADMIN, certificate_, 255))

    def test_shown_bounded(self):
        """
        The subject shown is printable and at most the length asked for:
        the CA, not the operator, chose it.
        """
        cert = certificate("a\nb" + "x" * 40, "it-admins")
        shown = shown_subject(cert, 20)
        self.assertEqual(len(shown), 20)
        self.assertTrue(shown.isprintable())
        self.assertEqual(
            self.policy.holder_of(ADMIN, X509.from_cryptography(cert), 20), shown
        )

    def test_printable(self):
        """
        What a peer chose is shown printable and bounded.
        """
        self.assertEqual(printable("a\nb", 10), "a?b")
        self.assertEqual(printable("x" * 20, 10), "xxxxxxx...")
