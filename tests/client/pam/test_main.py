"""
Tests for L{suto_client.pam.main}: the isolated restart, the command
line, and the whole C{suto-pam} process as C{pam_exec} runs it (with the
C{PAM_*} environment), against the fake verification API.
"""

from __future__ import annotations

import io
import os
import sys

from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_client.pam.main import SAFE_PATH, USAGE, clean_environment, isolate, run
from tests.support.verify_api import FakeVerifyAPI

_PAM = {"PAM_USER": "alice", "PAM_TYPE": "auth", "PAM_SERVICE": "sudo"}


class IsolateTests(SynchronousTestCase):
    def setUp(self):
        self.calls = []

    def execve(self, *arguments):
        self.calls.append(arguments)

    def test_clean_environment(self):
        """
        Only the C{PAM_*} values pam_exec passes survive, with a fixed
        C{PATH} and locale.
        """
        environ = {**_PAM, "PAM_TTY": "/dev/pts/1", "PYTHONPATH": "/tmp/evil",
                   "LD_PRELOAD": "/tmp/evil.so", "OPENSSL_CONF": "/tmp/evil.cnf", "PATH": "/tmp"}
        self.assertEqual(
            clean_environment(environ),
            {**_PAM, "PAM_TTY": "/dev/pts/1", "PATH": SAFE_PATH, "LC_ALL": "C.UTF-8"},
        )

    def test_restarts(self):
        """
        An interpreter started without C{-I} is replaced by C{python -I -m
        suto_client.pam} with the same arguments and a clean environment.
        """
        environ = {**_PAM, "PYTHONPATH": "/tmp/evil"}
        isolate(["suto-pam", "--config", "x.toml"], environ, False, self.execve, "/py")
        self.assertEqual(
            self.calls,
            [("/py", ["/py", "-I", "-m", "suto_client.pam", "--config", "x.toml"], clean_environment(environ))],
        )

    def test_already_isolated(self):
        """
        An isolated interpreter goes on, its environment cleaned in place.
        """
        environ = {**_PAM, "OPENSSL_CONF": "/tmp/evil.cnf"}
        isolate(["suto-pam"], environ, True, self.execve, "/py")
        self.assertEqual(self.calls, [])
        self.assertEqual(environ, clean_environment(_PAM))


class CommandLineTests(SynchronousTestCase):
    def test_user_needs_check(self):
        """
        C{--user} without C{--check} is a usage error.
        """
        errors = io.StringIO()
        self.assertEqual(run(["--user", "alice"], _PAM, io.StringIO(), errors, None), USAGE)
        self.assertEqual(errors.getvalue(), "suto-pam: --user goes with --check\n")

    def test_unknown_option(self):
        """
        An unknown option is a usage error.
        """
        errors = io.StringIO()
        self.assertEqual(run(["--pasword", "x"], _PAM, io.StringIO(), errors, None), USAGE)
        self.assertIn("unrecognized arguments: --pasword x", errors.getvalue())


class ProcessTests(TestCase):
    """
    The installed console script, run as pam_exec runs it.
    """

    def setUp(self):
        self.api = FakeVerifyAPI(self.mktemp())
        self.script = os.path.join(os.path.dirname(sys.executable), "suto-pam")
        return self.api.start(self)

    def helper(self, environ, *arguments):
        return getProcessOutputAndValue(
            self.script, ["--config", self.api.config_file(), *arguments], env=environ, reactor=reactor
        )

    async def test_accepted(self):
        """
        An accepted user gets exit status 0, and nothing on the terminal.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        out, err, status = await self.helper({**_PAM, "PYTHONWARNINGS": "error"})
        self.assertEqual((out, err, status), (b"", b"", 0))

    async def test_rejected(self):
        """
        A rejected user gets exit status 1.
        """
        out, err, status = await self.helper(_PAM)
        self.assertEqual((out, err, status), (b"", b"", 1))

    async def test_outside_auth(self):
        """
        Outside the auth stack the helper denies without asking.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        status = (await self.helper({**_PAM, "PAM_TYPE": "session"}))[2]
        self.assertEqual(status, 1)
        self.assertEqual(self.api.resource.requests, [])

    async def test_no_configuration(self):
        """
        A missing configuration denies.
        """
        out, err, status = await getProcessOutputAndValue(
            self.script, ["--config", "/nonexistent/pam.toml"], env=_PAM, reactor=reactor
        )
        self.assertEqual(status, 1)
