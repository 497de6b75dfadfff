"""
Tests for L{suto_client.pam.check}: C{suto-pam --check} prints each step
and stops at the first failure, with its exit status.
"""

from __future__ import annotations

import io
import os
import socket

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from suto_client.pam.check import BAD_CONFIG, BAD_SERVER, NOT_ACCEPTED, PASSED, steps
from tests.support.pki import Authority
from tests.support.verify_api import FakeVerifyAPI


class CheckTests(TestCase):
    def setUp(self):
        self.api = FakeVerifyAPI(self.mktemp())
        return self.api.start(self)

    async def check(self, user=None, **settings):
        out = io.StringIO()
        status = await steps(reactor, self.api.config_file(**settings), user, out)
        return status, out.getvalue().splitlines()

    def assertSteps(self, lines, expected):
        self.assertEqual([line.split(":")[0].split() for line in lines], [each.split() for each in expected])

    async def test_passes(self):
        """
        A good configuration and a reachable server pass three steps; the
        server was sent an empty request only.
        """
        status, lines = await self.check()
        self.assertEqual(status, PASSED)
        self.assertSteps(lines, ["ok configuration", "ok host certificate", "ok server"])
        self.assertIn("TLS both ways", lines[2])
        owners = "its files are root's alone" if os.geteuid() == 0 else "file ownership not checked"
        self.assertIn(owners, lines[0])
        self.assertEqual(self.api.resource.requests, [{}])

    async def test_user_accepted(self):
        """
        With C{--user}, a real verification is made and its verdict shown.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        status, lines = await self.check("alice")
        self.assertEqual(status, PASSED)
        self.assertEqual(lines[3], "ok     verify: alice: accepted: the device said accepted")

    async def test_user_rejected(self):
        """
        A user the server does not accept fails the last step.
        """
        status, lines = await self.check("alice")
        self.assertEqual(status, NOT_ACCEPTED)
        self.assertEqual(lines[3], "FAILED verify: alice: rejected: rejected: the device said rejected")

    async def test_user_not_covered(self):
        """
        A user the configuration does not name is reported as denied,
        without asking the server.
        """
        status, lines = await self.check("root")
        self.assertEqual(status, NOT_ACCEPTED)
        self.assertSteps(lines, ["ok configuration", "ok host certificate", "ok server", "FAILED user"])
        self.assertEqual(self.api.resource.requests, [{}])

    async def test_bad_configuration(self):
        """
        A configuration error stops the check at the first step.
        """
        status, lines = await self.check(deadline=0)
        self.assertEqual(status, BAD_CONFIG)
        self.assertSteps(lines, ["FAILED configuration"])

    async def test_key_not_the_certificate(self):
        """
        A key that does not belong to the certificate fails the second step.
        """
        _, other_key = self.api.host_files(self.api.hosts, "other")
        status, lines = await self.check(key=other_key)
        self.assertEqual(status, BAD_CONFIG)
        self.assertSteps(lines, ["ok configuration", "FAILED host certificate"])
        self.assertIn("does not belong to the client certificate", lines[1])

    async def test_server_down(self):
        """
        A server nobody answers for fails the third step.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        status, lines = await self.check(server=f"127.0.0.1:{closed}")
        self.assertEqual(status, BAD_SERVER)
        self.assertSteps(lines, ["ok configuration", "ok host certificate", "FAILED server"])

    async def test_role_missing(self):
        """
        A server refusing the host (HTTP 403) fails the third step.
        """
        self.api.resource.forbidden = "this host lacks the verify role"
        status, lines = await self.check()
        self.assertEqual(status, BAD_SERVER)
        self.assertIn("HTTP 403", lines[2])

    async def test_host_from_another_ca(self):
        """
        A host certificate the server does not accept fails the third step.
        """
        certificate, key = self.api.host_files(Authority("Rogue CA"), "rogue")
        status, lines = await self.check(certificate=certificate, key=key)
        self.assertEqual(status, BAD_SERVER)
        self.assertTrue(lines[2].startswith("FAILED server"))
