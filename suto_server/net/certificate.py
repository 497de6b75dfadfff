# -*- test-case-name: tests.net.test_certificate -*-
"""
The server's TLS identity when the operator brings none: an ECDSA P-256
key and a self-signed certificate, made once in the data folder.

Clients trust it by pinning its SHA-256 fingerprint (printed at start and
by C{suto-admin cert}), so the certificate needs no CA; an operator with a
company CA configures its own certificate instead and nothing here runs.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from suto_server.core.atomicfile import write_atomically

KEY_FILE = "server.key"
CERT_FILE = "server.crt"

#: Lifetime of a generated certificate.
VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class CertificateInfo:
    """
    What an operator needs to know about a certificate: never key material.
    """

    subject: str
    fingerprint: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    def to_json(self) -> dict:
        """
        @return: the certificate as operators' answers show it: its
            C{subject}, C{fingerprint} and C{not_after} (ISO 8601).
        """
        return {
            "subject": self.subject,
            "fingerprint": self.fingerprint,
            "not_after": self.not_after.isoformat(),
        }


def fingerprint(certificate: x509.Certificate) -> str:
    """
    The SHA-256 digest of the DER certificate as colon-separated upper-case
    hex, the form C{openssl x509 -fingerprint -sha256} prints.
    """
    digest = certificate.fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def describe(pem: bytes) -> CertificateInfo:
    """
    Summarise the first certificate in C{pem}.
    """
    certificate = x509.load_pem_x509_certificate(pem)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string(),
        fingerprint=fingerprint(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def ensure_self_signed(
    directory: str, hostname: str, now: datetime.datetime
) -> tuple[str, str, bool]:
    """
    Make C{server.key} (mode 0600) and C{server.crt} in C{directory} unless
    both exist already.

    @param now: the certificate's start of validity, passed in so tests
        control it.
    @return: the key path, the certificate path, and whether they were
        created now.
    """
    key_path = os.path.join(directory, KEY_FILE)
    cert_path = os.path.join(directory, CERT_FILE)
    if os.path.exists(key_path) and os.path.exists(cert_path):
        return key_path, cert_path, False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt_names = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt_names += [
        x509.IPAddress(ipaddress.ip_address(loopback))
        for loopback in ("127.0.0.1", "::1")
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    # The key goes first: a crash between the two writes leaves no
    # certificate, so the next start makes a fresh pair.
    write_atomically(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_atomically(
        cert_path, certificate.public_bytes(serialization.Encoding.PEM)
    )
    return key_path, cert_path, True
