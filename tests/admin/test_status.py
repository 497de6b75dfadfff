# -*- test-case-name: tests.admin.test_status -*-
"""
What C{suto-admin status} shows: the daemon's status answer
(L{suto_server.service.SutoServer.status}) names its listeners' addresses
as C{host:port} and its version, and the command prints both.
"""

import io
import json
import os
import re

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import cli, daemon
from suto_server.core.version import VERSION
from suto_server.settings import Listeners
from tests.support.coroutines import result_of
from tests.support.server import make_server

#: An RFC 3339 UTC time to the second, as every listing shows times.
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class StatusAnswerTests(SynchronousTestCase):
    """
    The status answer holds no Python repr and no POSIX time.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.server = make_server(
            self.reactor,
            listeners=Listeners(metrics=TCP4ServerEndpoint(self.reactor, 9464)),
        )
        self.server.privilegedStartService()

    def test_listener_address(self):
        """
        A listener's address is C{host:port}, not an C{IPv4Address} repr.
        """
        [metrics] = result_of(self, self.server.status())["listeners"]
        self.assertEqual(metrics, {"name": "metrics", "address": "0.0.0.0:9464"})

    def test_version(self):
        """
        The answer names the daemon's version.
        """
        self.assertEqual(result_of(self, self.server.status())["version"], VERSION)

    def test_last_alert(self):
        """
        The last alert's time is RFC 3339, with no POSIX C{timestamp}
        beside it.
        """
        self.server.audit.record(
            1_700_000_000.5, "enrollment_failed", "alice", "192.0.2.1", "expired"
        )
        last = result_of(self, self.server.status())["last_alert"]
        self.assertNotIn("timestamp", last)
        self.assertEqual(last["time"], "2023-11-14T22:13:20Z")
        self.assertRegex(json.loads(json.dumps(last))["time"], RFC3339)


class StatusCommandTests(SynchronousTestCase):
    """
    C{suto-admin status} prints the daemon's answer, the version included.
    """

    answer = {
        "uptime": 42.0,
        "listeners": [{"name": "metrics", "address": "0.0.0.0:9464"}],
        "certificates": [
            {
                "subject": "CN=suto.example",
                "fingerprint": "AA:BB",
                "not_after": "2030-01-04T00:00:00+00:00",
                "warning": "certificate_expiring",
            },
        ],
        "crls": [
            {
                "listener": "device",
                "issuer": "CN=Hosts CA",
                "next_update": "2030-01-02T12:00:00+00:00",
                "warning": "crl_expiring",
            },
            {
                "listener": "console",
                "issuer": "CN=Operators CA",
                "next_update": None,
                "warning": None,
            },
        ],
        "pending": [],
        "enrollment_windows": 0,
        "connected": 1,
        "offline": 0,
        "blacklisted": 2,
        "last_alert": None,
        "version": "9.8.7",
    }

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        self.patch(daemon, "request", lambda args, method, path, timeout: self.answer)

    def status(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--data", self.data, "status", *argv], stdout=stdout, stderr=stderr
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def test_text(self):
        """
        The text names the version and each listener's C{host:port}.
        """
        code, out, err = self.status()
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[:2], ["up 42s", "version: 9.8.7"])
        self.assertIn("listening: metrics on 0.0.0.0:9464", lines)
        self.assertIsNone(re.search(r"Address\(", out))

    def test_expiry(self):
        """
        The text shows the endpoints blacklisted, and each served
        certificate and loaded CRL with when it runs out and the warning
        raised of it.
        """
        code, out, err = self.status()
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertIn("endpoints: 1 connected, 0 offline, 2 blacklisted", lines)
        self.assertIn(
            "certificate: CN=suto.example (sha256 AA:BB) expires"
            " 2030-01-04T00:00:00+00:00: certificate_expiring",
            lines,
        )
        self.assertIn(
            "crl: CN=Hosts CA on the device listener, next update"
            " 2030-01-02T12:00:00+00:00: crl_expiring",
            lines,
        )
        self.assertIn(
            "crl: CN=Operators CA on the console listener, next update never", lines
        )
