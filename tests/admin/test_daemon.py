# -*- test-case-name: tests.admin.test_daemon -*-
"""
C{suto-admin auth}'s verdicts and exit statuses, with the admin socket's
call replaced by a recording fake: what the running daemon answers is
tested end to end elsewhere.
"""

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import cli, daemon
from suto_server.admin.client import DaemonUnreachable


class AuthCommandTests(SynchronousTestCase):
    """
    C{suto-admin auth} prints the verdict with its reason and exits with
    the documented status for it.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        self.requests = []
        self.answer = (200, {})
        self.patch(daemon, "call", self.fake_call)

    def fake_call(self, data, method, path, body=None, timeout=30.0):
        self.requests.append((method, path, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def run_auth(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--data", self.data, "auth", "alice", *argv],
            stdout=stdout,
            stderr=stderr,
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def verdict(self, verdict, reason="", source=None):
        self.answer = (
            200,
            {"user": "alice", "verdict": verdict, "source": source, "reason": reason},
        )

    def test_statuses(self):
        """
        Each verdict has its own exit status, and the line names the
        verdict and, unless accepted, its reason.
        """
        for verdict, status, source, reason in (
            ("accepted", 0, "192.0.2.7", ""),
            ("rejected", 1, "192.0.2.7", "wrong response"),
            ("timeout", 3, None, "no device connected in time"),
            ("tls_trust_failure", 4, None, "its TLS handshake failed"),
            ("refused_by_limits", 5, None, "refused by the connection limits"),
            ("cancelled", 6, None, "the server is stopping"),
            ("error", 6, "192.0.2.7", "connection lost"),
        ):
            self.verdict(verdict, reason, source)
            code, out, err = self.run_auth("--target", "192.0.2.7")
            expected = f"alice: {verdict}"
            if source:
                expected += f" from {source}"
            if reason:
                expected += f" ({reason})"
            self.assertEqual((code, out, err), (status, expected + "\n", ""))

    def test_daemon_down(self):
        """
        A daemon that does not answer is a server error: exit 6, one line.
        """
        self.answer = DaemonUnreachable("the daemon's admin socket did not answer")
        code, out, err = self.run_auth("--target", "192.0.2.7")
        self.assertEqual(
            (code, out, err),
            (6, "", "suto-admin: the daemon's admin socket did not answer\n"),
        )

    def test_refused_request(self):
        """
        A request the daemon refuses (unknown account, too wide a target,
        busy addresses) exits 2 with its reason; a failure of the daemon
        exits 6.
        """
        for code, status in ((400, 2), (404, 2), (409, 2), (503, 6)):
            self.answer = (code, {"error": "why"})
            self.assertEqual(
                self.run_auth("--target", "192.0.2.7"),
                (status, "", "suto-admin: why\n"),
            )

    def test_wide(self):
        """
        C{--wide} asks for a target wider than a window may be; without it
        the daemon is not asked for that.
        """
        self.verdict("accepted")
        self.run_auth("--target", "10.0.0.0/8")
        self.run_auth("--target", "10.0.0.0/8", "--wide")
        self.assertEqual(
            [body.get("wide") for _, _, body in self.requests], [None, True]
        )


class ReloadCommandTests(SynchronousTestCase):
    """
    C{suto-admin reload} prints each served certificate and its warning.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        self.answer = {}
        self.patch(daemon, "request", lambda args, *rest: self.answer)

    def test_warning(self):
        """
        A certificate served with a warning is printed, and the warning is
        one line on standard error; the reload succeeded, so exit 0.
        """
        self.answer = {
            "certificates": [
                {"subject": "CN=a", "fingerprint": "AB", "warning": "names no IP"},
                {"subject": "CN=b", "fingerprint": "CD"},
            ]
        }
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--data", self.data, "reload"], stdout=stdout, stderr=stderr
        )
        self.assertEqual(
            (code, stdout.getvalue(), stderr.getvalue()),
            (
                0,
                "serving CN=a sha256 AB\nserving CN=b sha256 CD\n",
                "suto-admin: warning: names no IP\n",
            ),
        )

    def test_other_listeners_named(self):
        """
        The reload of another listener (the verification API, the
        console) is named; one that kept its old files fails the command.
        """
        self.answer = {
            "certificates": [
                {"subject": "CN=a", "fingerprint": "AB"},
                {"listener": "verification API", "subject": "CN=a", "fingerprint": "AB"},
                {"listener": "console", "error": "CRL 1 of 'crl.pem' does not parse"},
            ]
        }
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--data", self.data, "reload"], stdout=stdout, stderr=stderr
        )
        self.assertEqual(
            (code, stdout.getvalue(), stderr.getvalue()),
            (
                1,
                "serving CN=a sha256 AB\nverification API: serving CN=a sha256 AB\n",
                "suto-admin: console: kept the old certificate: CRL 1 of "
                "'crl.pem' does not parse\n",
            ),
        )
