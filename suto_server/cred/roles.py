# -*- test-case-name: tests.cred.test_roles -*-
"""
What a TLS client certificate may do: the roles of a peer on the
listeners that take client certificates (the verification API, and the
web console, which signs in a certificate holding the C{admin} role).

The listener's TLS already refused every peer without a certificate from
the named CA (C{caCerts=...:requireClientCert=yes}), so a certificate
reaching this module is one that CA issued.  Its roles come from two
sources, both configured, their union granted:

  - the values of its organisational units (OU): the company CA puts
    every host certificate in, say, C{OU=suto-hosts}, and every host so
    certified may ask for verdicts without the server listing hosts one
    by one.  This is the scalable grant, and it trusts the CA to issue
    that OU only to what deserves it;
  - its whole subject, on a list per role: the grant for a few named
    operators (C{admin}), or for a CA whose OU values IT does not
    control, where nothing short of the exact subject should count.

A role nobody configured is granted to nobody: an empty policy refuses
every request.  The subject is also what audit records name the caller
by, in RFC 4514 form (L{subject_of}), made printable and bounded
(L{shown_subject}): the certificate's issuer chose it, not the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL.crypto import X509

from suto_server.core.shown import printable

#: The role that may ask for a verdict (C{POST /v1/verify}).
VERIFY = "verify"

#: The role that may use the admin API (what the admin socket serves).
ADMIN = "admin"

#: Longest OU value or subject taken in a policy: a subject an
#: RFC 5280 certificate can carry fits well within it.
MAX_SUBJECT = 1024

# Subjects in a list are separated by ";" not escaped with a backslash
# (RFC 4514 escapes a ";" inside a value as "\;").
_SUBJECT_SEPARATOR = re.compile(r"(?<!\\);")


class PolicyError(ValueError):
    """
    A role policy's configuration cannot be used; the message says why.
    """


def normal_subject(text: str) -> str:
    """
    @return: the subject C{text} names, written as L{subject_of} writes a
        certificate's (what C{openssl x509 -noout -subject -nameopt
        RFC2253} prints), so that they compare equal.
    @raise PolicyError: C{text} is not an RFC 4514 distinguished name.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_SUBJECT:
        raise PolicyError(f"a subject must be 1 to {MAX_SUBJECT} characters")
    try:
        name = x509.Name.from_rfc4514_string(stripped)
    except ValueError as error:
        raise PolicyError(
            f"{stripped!r} is not a subject in RFC 4514 form "
            f"(CN=host1,OU=hosts,O=Example){': ' if str(error) else ''}{error}"
        ) from None
    if not len(name):
        raise PolicyError("an empty subject names no certificate")
    return name.rfc4514_string()


def parse_subjects(text: str) -> frozenset[str]:
    """
    @param text: subjects in RFC 4514 form separated by C{;}, as the
        C{--verify-subjects} and C{--admin-subjects} options take them (empty for none).
    @return: each subject in L{normal_subject} form.
    @raise PolicyError: one of them is not a subject.
    """
    if not text.strip():
        return frozenset()
    return frozenset(
        normal_subject(part) for part in _SUBJECT_SEPARATOR.split(text)
    )


def parse_units(text: str) -> frozenset[str]:
    """
    @param text: OU values separated by commas (empty for none).
    @raise PolicyError: a value is empty or too long.
    """
    if not text.strip():
        return frozenset()
    units = [part.strip() for part in text.split(",")]
    for unit in units:
        if not unit or len(unit) > MAX_SUBJECT or not unit.isprintable():
            raise PolicyError(
                f"an OU value must be 1 to {MAX_SUBJECT} printable characters"
            )
    return frozenset(units)


def subject_of(certificate: x509.Certificate) -> str:
    """
    @return: the certificate's subject in RFC 4514 form, for audit records
        and for comparing with a policy's subjects.
    """
    return certificate.subject.rfc4514_string()


def shown_subject(certificate: x509.Certificate, most: int) -> str:
    """
    @return: the certificate's subject as audit records and log lines name
        its holder: L{subject_of}, L{printable}, at most C{most}
        characters.
    """
    return printable(subject_of(certificate), most)


def certificate_of(peer: X509 | None) -> x509.Certificate | None:
    """
    @param peer: a TLS connection's peer certificate as pyOpenSSL gives it
        (C{getPeerCertificate()}), or L{None} for a peer without one.
    @return: the same certificate for L{RolePolicy.roles_of}.
    """
    return None if peer is None else peer.to_cryptography()


def units_of(certificate: x509.Certificate) -> frozenset[str]:
    """
    @return: the values of the certificate's organisational units.
    """
    return frozenset(
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(
            NameOID.ORGANIZATIONAL_UNIT_NAME
        )
    )


@dataclass(frozen=True)
class Grant:
    """
    What grants one role.

    @ivar units: the OU values granting it.
    @ivar subjects: the subjects (in L{normal_subject} form) granted it.
    """

    units: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()

    def admits(self, units: frozenset[str], subject: str) -> bool:
        """
        Does a certificate with C{units} and C{subject} hold the role?
        """
        return bool(units & self.units) or subject in self.subjects

    def __bool__(self) -> bool:
        return bool(self.units or self.subjects)


@dataclass(frozen=True)
class RolePolicy:
    """
    Which certificates hold which role: one L{Grant} per role.
    """

    verify: Grant = Grant()
    admin: Grant = Grant()

    @classmethod
    def from_options(
        cls,
        verify_units: str = "",
        admin_units: str = "",
        verify_subjects: str = "",
        admin_subjects: str = "",
    ) -> RolePolicy:
        """
        The policy the C{--verify-ou}, C{--admin-ou}, C{--verify-subjects}
        and C{--admin-subjects} options describe.

        @raise PolicyError: a value does not parse.
        """
        return cls(
            verify=Grant(parse_units(verify_units), parse_subjects(verify_subjects)),
            admin=Grant(parse_units(admin_units), parse_subjects(admin_subjects)),
        )

    @property
    def grants_any(self) -> bool:
        """
        Does any certificate hold any role under this policy?
        """
        return bool(self.verify or self.admin)

    def roles_of(self, certificate: x509.Certificate | None) -> frozenset[str]:
        """
        @return: the roles C{certificate} holds; none for L{None} (a peer
            without a certificate).
        """
        if certificate is None:
            return frozenset()
        units, subject = units_of(certificate), subject_of(certificate)
        grants = {VERIFY: self.verify, ADMIN: self.admin}
        return frozenset(
            role for role, grant in grants.items() if grant.admits(units, subject)
        )

    def holder_of(self, role: str, peer: X509 | None, most: int) -> str | None:
        """
        Who holds C{role} on a TLS connection: what the web console signs
        in with C{ADMIN} (L{suto_server.console.signin.CertificateSignIn}).

        @param peer: the connection's peer certificate (pyOpenSSL), or
            L{None}.
        @param most: the longest subject shown.
        @return: the L{shown_subject} of C{peer} when it holds C{role},
            else L{None}.
        """
        certificate = certificate_of(peer)
        if role not in self.roles_of(certificate):
            return None
        return shown_subject(certificate, most)
