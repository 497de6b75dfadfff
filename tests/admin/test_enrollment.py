# -*- test-case-name: tests.admin.test_enrollment -*-
"""
C{suto-admin enroll}'s output, with the admin socket's request replaced by
a fake: the windows themselves are tested end to end elsewhere.
"""

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import cli, enrollment


class EnrollCommandTests(SynchronousTestCase):
    """
    C{suto-admin enroll} prints the daemon's answer and its warnings.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        self.answer = {
            "user": "bob",
            "password": "one-time",
            "location": "192.0.2.7/32",
            "deadline": "2026-12-05T10:00:00Z",
            "fingerprints": ["AB:CD"],
            "warnings": [],
        }
        self.patch(enrollment, "request", lambda args, *rest: self.answer)

    def run_enroll(self):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--data", self.data, "enroll", "bob", "--location", "192.0.2.7"],
            stdout=stdout,
            stderr=stderr,
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def test_no_warning(self):
        """
        Without warnings, standard error stays empty.
        """
        code, out, err = self.run_enroll()
        self.assertEqual((code, err), (0, ""))
        self.assertIn("one-time password for bob: one-time", out)

    def test_warnings(self):
        """
        Each warning is one line on standard error; the window is open, so
        the command still succeeds and prints the password.
        """
        self.answer["warnings"] = ["bob has no account", "another"]
        code, out, err = self.run_enroll()
        self.assertEqual(
            (code, err),
            (
                0,
                "suto-admin: warning: bob has no account\n"
                "suto-admin: warning: another\n",
            ),
        )
        self.assertIn("one-time password for bob: one-time", out)
