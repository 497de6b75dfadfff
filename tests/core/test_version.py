"""
Tests for L{suto_server.core.version}: the installed version, its fallback
without package metadata, and the build description the metrics label.
"""

import io
import platform
from importlib.metadata import version as installed_version

from OpenSSL import SSL
from twisted.copyright import version as twisted_version
from twisted.trial.unittest import SynchronousTestCase

from suto_client import cli as client_cli
from suto_server.admin import cli as admin_cli
from suto_server.core import version


class VersionTests(SynchronousTestCase):
    def test_installed(self):
        """
        L{version.VERSION} is the version of the installed C{suto}
        distribution, as its package metadata records it.
        """
        self.assertEqual(version.VERSION, installed_version("suto"))

    def test_without_metadata(self):
        """
        Without package metadata (a checkout that was never installed) the
        version is L{version.UNKNOWN}, not an error.
        """
        self.assertEqual(
            version._installed("suto-distribution-that-is-not-installed"),
            version.UNKNOWN,
        )
        self.assertEqual(version.UNKNOWN, "0+unknown")


class BuildInfoTests(SynchronousTestCase):
    def test_fields(self):
        """
        The build description names SUTO's version and those of Python,
        Twisted and the OpenSSL pyOpenSSL uses (its name and version,
        without the build date).
        """
        openssl = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii")
        self.assertEqual(
            version.build_info(),
            {
                "version": version.VERSION,
                "python": platform.python_version(),
                "twisted": twisted_version,
                "openssl": " ".join(openssl.split()[:2]),
            },
        )

    def test_short(self):
        """
        Every value is one short line, fit for a Prometheus label.
        """
        for name, value in version.build_info().items():
            with self.subTest(name):
                self.assertTrue(value)
                self.assertNotIn("\n", value)
                self.assertLessEqual(len(value.split()), 2)


class VersionOptionTests(SynchronousTestCase):
    """
    C{suto-admin --version} and C{suto-client --version} print the
    program's name and L{version.VERSION} and exit 0, without a command.
    """

    def check(self, main, program):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(["--version"], stdout=stdout, stderr=stderr)
        self.assertEqual(
            (code, stdout.getvalue(), stderr.getvalue()),
            (0, f"{program} {version.VERSION}\n", ""),
        )

    def test_admin(self):
        self.check(admin_cli.main, "suto-admin")

    def test_client(self):
        self.check(client_cli.main, "suto-client")
