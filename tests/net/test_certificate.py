"""
The self-signed identity made when the operator brings no certificate, and
the summary an operator sees of any certificate.
"""

import datetime
import hashlib
import ipaddress
import os
import re
import shutil
import stat
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from suto_server.net.certificate import (
    CERT_FILE,
    KEY_FILE,
    VALIDITY,
    CertificateInfo,
    describe,
    ensure_self_signed,
    fingerprint,
)

NOW = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

FINGERPRINT = re.compile(r"\A[0-9A-F]{2}(?::[0-9A-F]{2}){31}\Z")


class EnsureSelfSignedTests(SynchronousTestCase):
    """
    L{ensure_self_signed} makes a usable key and certificate once.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.mkdir(self.directory)

    def make(self, hostname="server.example", now=NOW):
        "Run L{ensure_self_signed} in the test's folder."
        return ensure_self_signed(self.directory, hostname, now)

    def load(self, cert_path):
        "The certificate at C{cert_path}."
        with open(cert_path, "rb") as handle:
            return x509.load_pem_x509_certificate(handle.read())

    def test_creates_files(self):
        """
        The first call creates C{server.key} and C{server.crt} in the folder
        and says so.
        """
        key_path, cert_path, created = self.make()
        self.assertTrue(created)
        self.assertEqual(key_path, os.path.join(self.directory, KEY_FILE))
        self.assertEqual(cert_path, os.path.join(self.directory, CERT_FILE))
        self.assertEqual(
            sorted(os.listdir(self.directory)), sorted([KEY_FILE, CERT_FILE])
        )

    def test_key_mode(self):
        """
        The private key is readable by its owner only.
        """
        key_path, _, _ = self.make()
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)

    def test_key_is_p256_and_matches(self):
        """
        The key is an unencrypted ECDSA P-256 key, and the certificate
        carries its public half.
        """
        key_path, cert_path, _ = self.make()
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), None)
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)
        self.assertIsInstance(key.curve, ec.SECP256R1)
        self.assertEqual(
            self.load(cert_path).public_key().public_numbers(),
            key.public_key().public_numbers(),
        )

    def test_self_signed_end_entity(self):
        """
        The certificate names the host, is issued by itself with a valid
        signature, and cannot act as a CA.
        """
        _, cert_path, _ = self.make()
        certificate = self.load(cert_path)
        self.assertEqual(
            certificate.subject.rfc4514_string(), "CN=server.example"
        )
        self.assertEqual(certificate.issuer, certificate.subject)
        certificate.verify_directly_issued_by(certificate)
        constraints = certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        )
        self.assertTrue(constraints.critical)
        self.assertFalse(constraints.value.ca)

    def test_subject_alternative_names(self):
        """
        The certificate is valid for the host name, C{localhost} and the
        loopback addresses.
        """
        _, cert_path, _ = self.make()
        names = (
            self.load(cert_path)
            .extensions.get_extension_for_class(x509.SubjectAlternativeName)
            .value
        )
        self.assertEqual(
            names.get_values_for_type(x509.DNSName),
            ["server.example", "localhost"],
        )
        self.assertEqual(
            names.get_values_for_type(x509.IPAddress),
            [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")],
        )

    def test_validity_from_now(self):
        """
        Validity starts at the injected C{now} (less five minutes for clock
        skew) and lasts L{VALIDITY}.
        """
        _, cert_path, _ = self.make()
        certificate = self.load(cert_path)
        self.assertEqual(
            certificate.not_valid_before_utc,
            NOW - datetime.timedelta(minutes=5),
        )
        self.assertEqual(certificate.not_valid_after_utc, NOW + VALIDITY)
        self.assertEqual(VALIDITY, datetime.timedelta(days=825))

    def test_second_call_reuses(self):
        """
        A second call, even at another time, leaves the pair as it is and
        reports it was not created.
        """
        key_path, cert_path, _ = self.make()
        with open(key_path, "rb") as handle:
            key = handle.read()
        before = fingerprint(self.load(cert_path))
        later = NOW + datetime.timedelta(days=1)
        self.assertEqual(self.make(now=later), (key_path, cert_path, False))
        self.assertEqual(fingerprint(self.load(cert_path)), before)
        with open(key_path, "rb") as handle:
            self.assertEqual(handle.read(), key)

    def test_missing_certificate_regenerates(self):
        """
        A key without its certificate (a crash between the two writes) is
        replaced by a fresh pair.
        """
        key_path, cert_path, _ = self.make()
        before = fingerprint(self.load(cert_path))
        os.remove(cert_path)
        self.assertEqual(self.make(), (key_path, cert_path, True))
        self.assertNotEqual(fingerprint(self.load(cert_path)), before)

    def test_no_temporary_files(self):
        """
        Creating the pair leaves nothing else in the folder.
        """
        self.make()
        self.assertEqual(
            sorted(os.listdir(self.directory)), sorted([CERT_FILE, KEY_FILE])
        )


class FingerprintTests(SynchronousTestCase):
    """
    The fingerprint clients pin.
    """

    def setUp(self):
        directory = self.mktemp()
        os.mkdir(directory)
        _, cert_path, _ = ensure_self_signed(directory, "server.example", NOW)
        with open(cert_path, "rb") as handle:
            self.pem = handle.read()
        self.certificate = x509.load_pem_x509_certificate(self.pem)

    def test_format(self):
        """
        The fingerprint is 32 upper-case hex pairs joined by colons.
        """
        self.assertRegex(fingerprint(self.certificate), FINGERPRINT)

    def test_sha256_of_der(self):
        """
        The fingerprint is the SHA-256 digest of the DER certificate.
        """
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.assertEqual(
            fingerprint(self.certificate).replace(":", "").lower(),
            hashlib.sha256(der).hexdigest(),
        )

    def test_matches_openssl(self):
        """
        The fingerprint is the text C{openssl x509 -fingerprint -sha256}
        prints, so an operator can check it with standard tools.
        """
        if shutil.which("openssl") is None:
            raise SkipTest("openssl is not installed")
        printed = subprocess.run(
            ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
            input=self.pem,
            capture_output=True,
            check=True,
        ).stdout.decode("ascii")
        self.assertEqual(
            printed.strip().partition("=")[2], fingerprint(self.certificate)
        )


class DescribeTests(SynchronousTestCase):
    """
    L{describe} summarises a PEM certificate without key material.
    """

    def setUp(self):
        directory = self.mktemp()
        os.mkdir(directory)
        _, cert_path, _ = ensure_self_signed(directory, "server.example", NOW)
        with open(cert_path, "rb") as handle:
            self.pem = handle.read()

    def test_describe(self):
        """
        The summary gives subject, fingerprint and validity.
        """
        certificate = x509.load_pem_x509_certificate(self.pem)
        self.assertEqual(
            describe(self.pem),
            CertificateInfo(
                subject="CN=server.example",
                fingerprint=fingerprint(certificate),
                not_before=NOW - datetime.timedelta(minutes=5),
                not_after=NOW + VALIDITY,
            ),
        )

    def test_first_of_chain(self):
        """
        For a chain, the summary is of the first certificate: the server's
        own.
        """
        other_directory = self.mktemp()
        os.mkdir(other_directory)
        _, other_path, _ = ensure_self_signed(
            other_directory, "ca.example", NOW
        )
        with open(other_path, "rb") as handle:
            chain = self.pem + handle.read()
        self.assertEqual(describe(chain), describe(self.pem))

    def test_not_a_certificate(self):
        """
        Text that holds no certificate is refused with L{ValueError}.
        """
        self.assertRaises(ValueError, describe, b"not a certificate")
