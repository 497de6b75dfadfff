"""
L{suto_server.admin.deployment}: the admin socket C{suto-admin} calls,
read from the daemon's configuration.  The data folder's precedence is
in L{tests.admin.test_cli}.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin.deployment import unix_socket
from suto_server.datafolder import ADMIN_SOCKET
from tests.support.admin import run_admin


class UnixSocketTests(SynchronousTestCase):
    """
    L{unix_socket} reads the path of a C{unix:} endpoint string.
    """

    def test_paths(self):
        """
        The path is the first positional argument or C{address=}, with
        escaped colons; another endpoint, or none, has no path.
        """
        for description, path in (
            ("unix:/run/suto/admin.sock", "/run/suto/admin.sock"),
            ("unix:/run/suto/admin.sock:mode=600:lockfile=1", "/run/suto/admin.sock"),
            ("unix:address=/run/a\\:b.sock:mode=600", "/run/a:b.sock"),
            ("unix:mode=600", None),
            ("tcp:8080:interface=127.0.0.1", None),
            ("", None),
            (None, None),
        ):
            self.assertEqual(unix_socket(description), path, description)


class ConfiguredSocketTests(SynchronousTestCase):
    """
    C{suto-admin} calls the daemon on the admin socket its configuration
    file names, else on the one in the data folder.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        os.mkdir(self.data)
        self.config = self.mktemp()

    def status_error(self, admin_line):
        with open(self.config, "w") as handle:
            handle.write(f'data = "{self.data}"\n{admin_line}')
        code, out, err = run_admin("--config", self.config, "status")
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        return err

    def test_configured(self):
        """
        A C{unix:} C{admin} endpoint in the file is the socket called.
        """
        socket = os.path.abspath(self.mktemp()) + ".sock"
        err = self.status_error(f'admin = "unix:{socket}:mode=600"\n')
        self.assertIn(f"admin socket {socket} did not answer", err)

    def test_default(self):
        """
        Without one, the socket is the data folder's.
        """
        err = self.status_error("")
        self.assertIn(
            f"admin socket {os.path.join(self.data, ADMIN_SOCKET)} did not answer",
            err,
        )
