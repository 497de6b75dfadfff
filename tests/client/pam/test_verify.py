"""
Tests for L{suto_client.pam.verify}: one verification against a fake of
the server's API on loopback (L{tests.support.verify_api}), each way it
can end, and its deadline on a L{MemoryReactorClock}.
"""

from __future__ import annotations

import socket
import tomllib

from twisted.internet import reactor
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import TestCase

from suto_client.pam.config import parse
from suto_client.pam.verdict import Decision
from suto_client.pam.verify import trust, verify
from tests.support.pki import Authority
from tests.support.verify_api import FakeVerifyAPI


def _config(api: FakeVerifyAPI, **settings):
    return parse(tomllib.loads(api.config_text(**settings)), "pam.toml")


class VerifyTests(TestCase):
    def setUp(self):
        self.api = FakeVerifyAPI(self.mktemp())
        return self.api.start(self)

    def ask(self, user="alice", **settings):
        return verify(reactor, _config(self.api, **settings), user)

    async def test_accepted(self):
        """
        HTTP 200 with the verdict C{accepted} for the same user lets the
        user in; the request names the user and a deadline a second short
        of the helper's own.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        decision = await self.ask()
        self.assertEqual(decision, Decision(True, "accepted", "the device said accepted"))
        self.assertEqual(self.api.resource.requests, [{"user": "alice", "deadline": 4.0}])

    async def test_pinned(self):
        """
        A server trusted by its certificate's pin is asked the same way.
        """
        self.api.resource.answers["alice"] = (200, "accepted")
        decision = await self.ask(ca=None, pin=self.api.pin)
        self.assertTrue(decision.accepted)

    async def test_every_other_verdict_denies(self):
        """
        Each verdict but C{accepted} is a denial of that kind.
        """
        for verdict in ("rejected", "no_device", "device_offline", "blacklisted", "rate_limited", "error"):
            self.api.resource.answers["alice"] = (200, verdict)
            decision = await self.ask()
            self.assertEqual(
                decision, Decision(False, verdict, f"{verdict}: the device said {verdict}")
            )

    async def test_role_missing(self):
        """
        HTTP 403 (the host's certificate lacks the verify role) denies and
        says so.
        """
        self.api.resource.forbidden = "no verify role"
        decision = await self.ask()
        self.assertEqual(decision.verdict, "http")
        self.assertIn("HTTP 403", decision.reason)
        self.assertIn("lacks the verify role): no verify role", decision.reason)

    async def test_oversized_answer(self):
        """
        An answer longer than the cap is a denial, not read to its end.
        """
        self.api.resource.answers["alice"] = (200, b" " * 100_000)
        decision = await self.ask()
        self.assertEqual(decision.verdict, "answer")
        self.assertIn("larger than 4096 bytes", decision.reason)

    async def test_server_down(self):
        """
        A port nobody listens on is a denial of the kind C{unreachable},
        the only kind the offline policy may override.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        decision = await self.ask(server=f"127.0.0.1:{closed}")
        self.assertEqual(decision.verdict, "unreachable")
        self.assertIn(f"127.0.0.1:{closed}", decision.reason)

    async def test_wrong_pin(self):
        """
        A server whose certificate is not the pinned one is refused during
        the handshake: nothing is asked.
        """
        decision = await self.ask(ca=None, pin="00" * 32)
        self.assertEqual(decision.verdict, "tls")
        self.assertIn("is pinned", decision.reason)
        self.assertEqual(self.api.resource.requests, [])

    async def test_server_from_another_ca(self):
        """
        A server whose certificate does not lead to the configured CA
        bundle is refused.
        """
        other = self.api.files.write("other-ca.pem", Authority("Other CA").certificate)
        decision = await self.ask(ca=other)
        self.assertEqual(decision.verdict, "tls")
        self.assertIn("is refused", decision.reason)

    async def test_host_certificate_refused(self):
        """
        A host certificate from a CA the server does not accept ends the
        connection before any request: a TLS denial.
        """
        certificate, key = self.api.host_files(Authority("Rogue CA"), "rogue")
        decision = await self.ask(certificate=certificate, key=key)
        self.assertIn(decision.verdict, ("tls", "http"))
        self.assertFalse(decision.accepted)
        self.assertEqual(self.api.resource.requests, [])

    async def test_unusable_key(self):
        """
        A key file that does not load is a configuration denial naming
        the file, not its contents.
        """
        broken = self.api.files.write_bytes("broken.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
        decision = await self.ask(key=broken)
        self.assertEqual(decision.verdict, "config")
        self.assertIn(broken, decision.reason)
        self.assertNotIn("AAAA", decision.reason)


class _TCPTransport(StringTransport):
    """
    A transport with the TCP option the web client sets.
    """

    def setTcpNoDelay(self, enabled):
        pass


class DeadlineTests(TestCase):
    def setUp(self):
        api = FakeVerifyAPI(self.mktemp())
        api.port = 4443
        self.clock = MemoryReactorClock()
        self.config = _config(api, deadline=7)
        self.decisions = []
        verify(self.clock, self.config, "alice", trust(self.config)).addCallback(
            self.decisions.append
        )

    def test_never_connected(self):
        """
        A server no TCP connection reaches (its packets dropped) is a
        denial of the kind C{unreachable}, which the offline policy may
        override, once the deadline has passed on the reactor's clock,
        and not before.
        """
        self.assertEqual(len(self.clock.tcpClients), 1)
        self.clock.advance(6.9)
        self.assertEqual(self.decisions, [])
        self.clock.advance(0.2)
        self.assertEqual(
            self.decisions,
            [Decision(False, "unreachable", "cannot reach the server at 127.0.0.1:4443: no connection within 7 s")],
        )

    def test_no_answer(self):
        """
        A server that accepts the connection and never answers is a denial
        of the kind C{deadline} once the deadline has passed.
        """
        host, port, factory, timeout, bind = self.clock.tcpClients[0]
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(_TCPTransport())
        self.clock.advance(6.9)
        self.assertEqual(self.decisions, [])
        self.clock.advance(0.2)
        self.assertEqual(
            self.decisions,
            [Decision(False, "deadline", "no answer from 127.0.0.1:4443 within 7 s")],
        )
