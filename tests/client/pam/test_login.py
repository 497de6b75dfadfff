"""
Tests for L{suto_client.pam.login.decide}: the decision for one user,
against the fake verification API, with the offline policy.
"""

from __future__ import annotations

import os
import socket
import tomllib

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from suto_client.pam.config import parse
from suto_client.pam.login import decide
from tests.support.verify_api import FakeVerifyAPI


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DecideTests(TestCase):
    def setUp(self):
        self.api = FakeVerifyAPI(self.mktemp())
        self.stamps = os.path.abspath(self.mktemp())
        return self.api.start(self)

    def decide(self, user, now=1000.0, **settings):
        settings.setdefault(
            "offline", {"enabled": True, "users": ["alice"], "grace": 3600, "stamps": self.stamps}
        )
        config = parse(tomllib.loads(self.api.config_text(**settings)), "pam.toml")
        return decide(reactor, config, user, lambda: now)

    async def test_not_covered(self):
        """
        A user the configuration does not name is denied without asking
        the server.
        """
        decision = await self.decide("root")
        self.assertEqual(decision.verdict, "not_covered")
        self.assertFalse(decision.accepted)
        self.assertEqual(self.api.resource.requests, [])

    async def test_group_member(self):
        """
        A member of the configured group is asked about.
        """
        self.api.resource.answers["root"] = (200, "accepted")
        decision = await self.decide("root", users=[], group="root")
        self.assertTrue(decision.accepted)

    async def test_offline_after_acceptance(self):
        """
        An acceptance is recorded; when the server is then unreachable,
        the same user is let in offline within the grace, and not after.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        self.assertTrue((await self.decide("alice")).accepted)
        down = f"127.0.0.1:{_closed_port()}"
        offline = await self.decide("alice", now=2000.0, server=down)
        self.assertEqual((offline.accepted, offline.verdict), (True, "offline"))
        late = await self.decide("alice", now=5000.0, server=down)
        self.assertEqual((late.accepted, late.verdict), (False, "unreachable"))

    async def test_offline_never_overrides_a_verdict(self):
        """
        After an acceptance, a server that answers C{blacklisted} is
        obeyed.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        await self.decide("alice")
        self.api.resource.answers["alice"] = (200, "blacklisted")
        decision = await self.decide("alice", now=1001.0)
        self.assertEqual((decision.accepted, decision.verdict), (False, "blacklisted"))
