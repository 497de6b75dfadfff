# -*- test-case-name: tests.net.test_tls -*-
"""
Certificate revocation lists for the TLS listeners that take client
certificates: the way an IT department withdraws one host's or one
operator's certificate without re-issuing its whole CA.

A listener given C{crlFile=FILE} (next to C{caCerts=FILE}) reads every CRL
in the file each time its context is built, at start and on every reload,
and refuses the file outright when a CRL:

  - does not parse;
  - is signed by none of the C{caCerts} (a CRL from another CA revokes
    nothing we trust, and most often means the wrong file was named);
  - is past its nextUpdate (its issuer promised a newer one by then; a
    stale list may miss the very revocation the operator just made).

At start a refused file stops the server; on reload it leaves the previous
context, with its previous CRLs, in place, as a bad certificate does.

OpenSSL checks the leaf certificate only (C{X509_V_FLAG_CRL_CHECK}), not
every CA up the chain (C{CRL_CHECK_ALL}): the chain a client presents ends
at a CA the operator chose to list in C{caCerts}, and an intermediate CA is
withdrawn by taking it out of that file and reloading.  Checking the whole
chain would need a current CRL from the root as well, which small offline
roots publish rarely: its expiry would lock every host out at once.

Checking the leaf fails closed.  A client whose issuer has no CRL in the
file is refused ("unable to get certificate CRL"), which is why loading
warns about each CA of C{caCerts} without one; and when a CRL's nextUpdate
passes while the server runs, OpenSSL refuses new handshakes of that CA's
clients ("CRL has expired") until a fresh list is installed and reloaded.
"""

from __future__ import annotations

import datetime
import re

from cryptography import x509
from OpenSSL.crypto import X509StoreFlags
from twisted.logger import Logger

from suto_server.core.pem import read_pem

_CRL_BLOCK = re.compile(
    rb"-----BEGIN X509 CRL-----\r?\n.+?-----END X509 CRL-----", re.DOTALL
)

log = Logger()


def _issuer(
    crl: x509.CertificateRevocationList, authorities: list[x509.Certificate]
) -> x509.Certificate | None:
    """
    @return: the one of C{authorities} that signed C{crl}, or L{None}.
    """
    for authority in authorities:
        if authority.subject != crl.issuer:
            continue
        try:
            if crl.is_signature_valid(authority.public_key()):
                return authority
        except TypeError:
            # A key of a kind that cannot sign a CRL.
            continue
    return None


def load_crls(
    path: str,
    authorities: list[x509.Certificate],
    now: datetime.datetime,
    error: type[Exception],
) -> list[x509.CertificateRevocationList]:
    """
    Read the CRLs in the PEM file at C{path} and check each against the
    CAs whose clients the listener accepts.

    @param authorities: the listener's C{caCerts}.
    @param now: the time the nextUpdate of each CRL is compared with.
    @param error: the exception type to raise.
    @return: every CRL of the file, in file order.
    @raise error: the file is unreadable, holds no CRL, or holds one that
        does not parse, that none of C{authorities} signed, or whose
        nextUpdate has passed.
    """
    blocks = _CRL_BLOCK.findall(read_pem(path, "certificate revocation list", error))
    if not blocks:
        raise error(f"the certificate revocation list file {path!r} holds no PEM CRL")
    crls = []
    for number, block in enumerate(blocks, 1):
        try:
            crl = x509.load_pem_x509_crl(block)
        except ValueError as failure:
            raise error(
                f"CRL {number} of {path!r} does not parse"
            ) from failure
        if _issuer(crl, authorities) is None:
            raise error(
                f"CRL {number} of {path!r} ({crl.issuer.rfc4514_string()}) is "
                f"not signed by any of the client certificate authorities "
                f"(caCerts)"
            )
        next_update = crl.next_update_utc
        if next_update is not None and next_update <= now:
            raise error(
                f"CRL {number} of {path!r} ({crl.issuer.rfc4514_string()}) "
                f"expired at {next_update.isoformat()}: its issuer must publish "
                f"a newer one"
            )
        crls.append(crl)
    issuers = {crl.issuer for crl in crls}
    for authority in authorities:
        if authority.subject not in issuers:
            log.warn(
                "no CRL in {path} is issued by the client certificate authority "
                "{authority}: every client certificate it signed is refused",
                path=path,
                authority=authority.subject.rfc4514_string(),
            )
    return crls


def check_revocation(context, crls: list[x509.CertificateRevocationList]) -> None:
    """
    Make C{context} refuse client certificates that C{crls} revoke (the
    leaf only: see the module's docstring).
    """
    store = context.get_cert_store()
    for crl in crls:
        store.add_crl(crl)
    store.set_flags(X509StoreFlags.CRL_CHECK)
