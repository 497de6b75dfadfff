# -*- test-case-name: tests.net.test_tls,tests.client.test_ca -*-
"""
Reading the PEM files an operator points SUTO at: certificates, chains, CA
bundles and private keys, for the server's listener and the agent alike.

Every file is read with a hard cap (L{MAX_PEM_BYTES}), so a path naming a
device or a huge file cannot exhaust memory.  Each function raises the
caller's own configuration error, so the server and the agent keep their
typed errors; the message names the file and what it should hold, never
any of its contents.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

#: Largest key, certificate or CA bundle file read.  Real ones are a few
#: kilobytes; a long chain or a system-wide CA bundle stays far below this.
MAX_PEM_BYTES = 1024 * 1024


def read_pem(path: str, what: str, error: type[Exception]) -> bytes:
    """
    Read a PEM file, refusing anything larger than L{MAX_PEM_BYTES}.

    @param what: what the file should hold, for the error message.
    @param error: the exception type to raise.
    @raise error: the file cannot be read or is too large.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read(MAX_PEM_BYTES + 1)
    except OSError as failure:
        raise error(
            f"cannot read the {what} file {path!r}: {failure.strerror}"
        ) from failure
    if len(content) > MAX_PEM_BYTES:
        raise error(
            f"the {what} file {path!r} is larger than {MAX_PEM_BYTES} bytes"
        )
    return content


def load_certificates(
    path: str, what: str, error: type[Exception]
) -> list[x509.Certificate]:
    """
    @param what: what the file should hold, for the error message.
    @param error: the exception type to raise.
    @return: every certificate in the PEM file at C{path}, in file order.
    @raise error: the file is unreadable or holds no certificate.
    """
    pem = read_pem(path, what, error)
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as failure:
        raise error(
            f"the {what} file {path!r} holds no PEM certificate"
        ) from failure


def load_private_key(
    path: str, what: str, error: type[Exception], *, needed_by: str
) -> PrivateKeyTypes:
    """
    Read an unencrypted private key.  Both the server and the agent start
    and reload unattended, with nobody to type a passphrase, so an
    encrypted key is refused with a message saying so.

    @param what: what the file should hold, for the error message.
    @param error: the exception type to raise.
    @param needed_by: who needs the key unencrypted, for the message
        about an encrypted one (C{"the server"}, C{"the agent"}).
    @return: the key, of whatever kind the file holds.
    @raise error: the file is unreadable, encrypted, or holds no usable
        key.
    """
    pem = read_pem(path, what, error)
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError as failure:
        # Raised for an encrypted key.
        raise error(
            f"the {what} file {path!r} is encrypted; "
            f"{needed_by} needs an unencrypted key"
        ) from failure
    except (ValueError, UnsupportedAlgorithm) as failure:
        raise error(
            f"the {what} file {path!r} holds no usable PEM private key"
        ) from failure
