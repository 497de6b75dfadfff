"""
Tests for L{suto_client.pam.login}: the decision for one user, against
the fake verification API, with the offline policy; and a decision that
fails in a way nobody foresaw.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import syslog
import tomllib

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

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


_BROKEN = """
from suto_client.pam import login

def broken(path):
    raise RuntimeError("a bug")

login.load = broken
status = login.authenticate(
    "pam.toml", {"PAM_USER": "alice", "PAM_TYPE": "auth", "PAM_SERVICE": "sudo"},
    lambda priority, text: print(priority, text),
)
print("status", status)
"""


class FailClosedTests(SynchronousTestCase):
    def test_unexpected_exception(self):
        """
        An exception nobody foresaw (here a bug in reading the
        configuration) is a denial logged with what it was, not a
        traceback.  (A process of its own: the decision arms the real
        backstops.)
        """
        child = subprocess.run(
            [sys.executable, "-I", "-c", _BROKEN], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(child.stderr, "")
        self.assertEqual(
            child.stdout,
            f"{syslog.LOG_WARNING} denied user=alice service=sudo verdict=error: "
            "unexpected failure: RuntimeError('a bug')\nstatus 1\n",
        )
