"""
Throwaway certificate authorities, and PEM files to hand them over in.

The agent's CA trust, its command line and the mutual-TLS end-to-end tests
need real CAs, keys, certificates and revocation lists; they are made here with
C{cryptography} for each test, valid from an hour before L{NOW} to a day
after.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
#: The address the certificates of servers on loopback name.
LOOPBACK = "127.0.0.1"


def subject(common_name: str) -> x509.Name:
    """
    The distinguished name of C{common_name} alone.
    """
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """
    A throwaway certificate authority.
    """

    def __init__(
        self,
        name: str,
        issuer: Authority | None = None,
        not_after: datetime.datetime = NOW + DAY,
    ) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        signer = self if issuer is None else issuer
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject(name))
            .issuer_name(subject(name) if issuer is None else issuer.certificate.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - HOUR)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None), critical=True
            )
            .sign(signer.key if issuer is not None else self.key, hashes.SHA256())
        )

    def issue(
        self,
        name: str,
        *,
        addresses: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        not_before: datetime.datetime = NOW - HOUR,
        not_after: datetime.datetime = NOW + DAY,
        client: bool = False,
        units: tuple[str, ...] = (),
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """
        A key and a certificate this authority signed for it, naming the
        given addresses and DNS names as subjectAltNames (if any), its
        subject C{name} with the organisational units C{units}.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        *subject(name),
                        *(
                            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit)
                            for unit in units
                        ),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        alt_names = [
            x509.IPAddress(ipaddress.ip_address(address)) for address in addresses
        ] + [x509.DNSName(dns_name) for dns_name in dns_names]
        if alt_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alt_names), critical=False
            )
        return key, builder.sign(self.key, hashes.SHA256())

    def revocations(
        self,
        *revoked: x509.Certificate,
        last_update: datetime.datetime = NOW - HOUR,
        next_update: datetime.datetime = NOW + DAY,
    ) -> x509.CertificateRevocationList:
        """
        A CRL this authority signed, revoking the certificates C{revoked}
        (which it issued), current from C{last_update} to C{next_update}.
        """
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(last_update)
            .next_update(next_update)
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(last_update)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())


def crl_pem(*crls: x509.CertificateRevocationList) -> bytes:
    """
    The CRLs C{crls} in one PEM file's bytes, for L{Files.write_bytes}.
    """
    return b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in crls)


class Files:
    """
    PEM files in a fresh directory.
    """

    def __init__(self, directory: str) -> None:
        os.makedirs(directory)
        self.directory = directory

    def write(self, name: str, *objects) -> str:
        """
        Write certificates and unencrypted keys to C{name}, in order.
        """
        pem = b""
        for each in objects:
            if isinstance(each, x509.Certificate):
                pem += each.public_bytes(serialization.Encoding.PEM)
            else:
                pem += each.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
        return self.write_bytes(name, pem)

    def write_bytes(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path
