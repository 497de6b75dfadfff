# -*- test-case-name: tests.core.test_version -*-
"""
Which SUTO this is, and what it runs on.

The version is the installed distribution's (C{suto}, from its package
metadata), read once at import: the admin and agent command lines print it
for C{--version}, C{suto-admin status} reports it and the metrics label
C{suto_build_info} with it.  Run from a checkout that was never installed
there is no metadata to read, and the version is L{UNKNOWN}, which says so
rather than guessing from files that may not match the code.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

#: The version reported when SUTO runs without package metadata: a valid
#: PEP 440 version, lower than any release, that reads as unknown.
UNKNOWN = "0+unknown"


def _installed(distribution: str = "suto") -> str:
    """
    @return: the installed version of C{distribution}, or L{UNKNOWN}.
    """
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN


#: This SUTO's version.
VERSION = _installed()


def build_info() -> dict[str, str]:
    """
    What an operator asks first about a misbehaving daemon: SUTO's version
    and those of the Python, Twisted and OpenSSL it runs on.  The OpenSSL
    is the one pyOpenSSL (hence every TLS connection) uses, which need not
    be the one the C{ssl} module was built with.

    @return: C{version}, C{python}, C{twisted} and C{openssl}, each a
        short version string such as C{"3.11.4"} or C{"OpenSSL 3.0.13"}.
    """
    # Imported here: the command lines print the version alone, and
    # pyOpenSSL costs them dozens of modules.
    from OpenSSL import SSL
    from twisted.copyright import version as twisted_version

    openssl = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")
    return {
        "version": VERSION,
        "python": platform.python_version(),
        "twisted": twisted_version,
        "openssl": " ".join(openssl.split()[:2]),
    }
