"""
End to end over real loopback sockets: a renewed certificate written over
the served files and reloaded with C{suto-admin reload} is what new
connections get, while a connection opened before the reload keeps its
certificate and finishes its exchange.
"""

import datetime
import io
import os
import shutil

from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    quoteStringArgument,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from suto_client.classic_machine import Outcome
from suto_client.protocol import (
    ClassicClientProtocol,
    client_endpoint,
    derive_response,
)
from suto_client.state import Account
from suto_client.tls import (
    PinMismatch,
    certificate_pin,
    normalise_pin,
    pinned_client_creator,
)
from suto_server.admin import cli as admin
from suto_server.core import schemes, wire
from suto_server.net import certificate
from suto_server.net.endpoint import server_endpoint
from suto_server.rules.rendezvous import Verdict
from suto_server.settings import Listeners, Network, Timing
from suto_server.store.memory import MemoryStore
from tests.support.folders import socket_folder
from tests.support.server import make_server

LOOPBACK = "127.0.0.1"
PASSWORD = "alice's secret"


def _pin_of(path: str) -> str:
    with open(path, "rb") as handle:
        return normalise_pin(certificate.describe(handle.read()).fingerprint)


@implementer(IHandshakeListener)
class _Probe(Protocol):
    """
    Completes a TLS handshake, records the fingerprint of the certificate
    the server presented, and hangs up.
    """

    def __init__(self):
        self.handshake = defer.Deferred()
        self.lost = defer.Deferred()

    def handshakeCompleted(self):
        self.handshake.callback(
            certificate_pin(self.transport.getPeerCertificate())
        )
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class ReloadEndToEndTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.data = socket_folder(self, "suto-reload-")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key, self.cert, _ = certificate.ensure_self_signed(
            self.data, "suto-old", now
        )
        self.old_pin = _pin_of(self.cert)
        renewal = os.path.join(self.data, "renewal")
        os.mkdir(renewal, 0o700)
        self.new_key, self.new_cert, _ = certificate.ensure_self_signed(
            renewal, "suto-new", now
        )
        self.new_pin = _pin_of(self.new_cert)
        store = MemoryStore()
        store.add_user("alice", schemes.hash_password(PASSWORD), 0.0)
        self.server = make_server(
            reactor,
            store=store,
            listeners=Listeners(
                devices=(
                    server_endpoint(
                        reactor,
                        f"ssl:0:interface={LOOPBACK}"
                        f":privateKey={quoteStringArgument(self.key)}"
                        f":certKey={quoteStringArgument(self.cert)}",
                    ),
                ),
                admin=serverFromString(
                    reactor,
                    f"unix:{quoteStringArgument(os.path.join(self.data, 'admin.sock'))}"
                    f":mode=600",
                ),
            ),
            network=Network(hello_interface=LOOPBACK),
            timing=Timing(auth_timeout=30),
        )
        self.server.startService()
        self.addCleanup(self.server.stopService)
        tls, _ = yield defer.gatherResults(
            [service.listening for service in self.server.listeners]
        )
        self.port = tls.getHost().port

    def renew(self):
        """
        Write the renewed key and certificate over the served files, as a
        renewal hook does, and have C{suto-admin reload} take them up.

        @return: a L{Deferred} firing with the command's exit status and
            output.
        """
        shutil.copyfile(self.new_key, self.key)
        shutil.copyfile(self.new_cert, self.cert)
        stdout, stderr = io.StringIO(), io.StringIO()
        running = threads.deferToThread(
            admin.main,
            ["--data", self.data, "reload"],
            stdout=stdout,
            stderr=stderr,
        )
        return running.addCallback(
            lambda code: (code, stdout.getvalue(), stderr.getvalue())
        )

    def probe(self, pin: str):
        """
        Open a new TLS connection to the server trusting only C{pin}.
        """
        probe = _Probe()
        endpoint = wrapClientTLS(
            pinned_client_creator(pin),
            TCP4ClientEndpoint(reactor, LOOPBACK, self.port),
        )
        return connectProtocol(endpoint, probe).addCallback(lambda _: probe)

    @defer.inlineCallbacks
    def test_live_exchange_survives_reload(self):
        """
        An agent connection opened before the reload, paused mid-exchange
        while the certificate is renewed, still presents the old
        certificate and completes the challenge afterwards; a connection
        opened after the reload is shown the new certificate.
        """
        request = self.server.rendezvous.open("alice", [LOOPBACK])
        account = Account(
            user="alice",
            server_host=LOOPBACK,
            server_port=self.port,
            pin=self.old_pin,
            password=PASSWORD,
        )
        salts_arrived = defer.Deferred()
        resume = defer.Deferred()

        def derive(account, salt, rsalt):
            salts_arrived.callback(None)
            return resume.addCallback(
                lambda _: threads.deferToThread(
                    derive_response, account, salt, rsalt
                )
            )

        old = ClassicClientProtocol(
            account, wire.Framing.FRAMED, reactor, 30.0, derive
        )
        yield connectProtocol(client_endpoint(reactor, account, 10.0), old)
        yield salts_arrived
        self.assertEqual(
            certificate_pin(old.transport.getPeerCertificate()), self.old_pin
        )

        code, out, err = yield self.renew()
        self.assertEqual((code, err), (0, ""))
        self.assertIn(self.new_pin, out.replace(":", "").lower())

        new = yield self.probe(self.new_pin)
        presented = yield new.handshake
        self.assertEqual(presented, self.new_pin)
        yield new.lost

        self.assertEqual(
            certificate_pin(old.transport.getPeerCertificate()), self.old_pin
        )
        resume.callback(None)
        result = yield old.finished
        self.assertEqual(result.outcome, Outcome.ACCEPTED)
        outcome = yield request.done
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_old_pin_refused_after_reload(self):
        """
        After the reload, an agent still pinning the old certificate is
        refused, and told the fingerprint of the new one.
        """
        code, _, _ = yield self.renew()
        self.assertEqual(code, 0)
        probe = yield self.probe(self.old_pin)
        yield probe.lost
        self.assertFalse(probe.handshake.called)
        mismatch = probe.reason.value
        self.assertIsInstance(mismatch, PinMismatch)
        self.assertEqual(
            (mismatch.expected, mismatch.presented),
            (self.old_pin, self.new_pin),
        )

    @defer.inlineCallbacks
    def test_reload_audited(self):
        """
        A reload goes to the audit log with the fingerprint now served; a
        reload whose files cannot be used goes there as failed.
        """
        code, _, _ = yield self.renew()
        self.assertEqual(code, 0)
        with open(self.key, "w") as handle:
            handle.write("not a key\n")
        failed = self.server.reload_certificates()
        self.assertIn("error", failed[0])
        events = [
            (e.event, e.reason)
            for e in self.server.store.audit_events()
            if e.event.startswith("certificate_")
        ]
        self.assertEqual(
            [event for event, _ in events],
            ["certificate_reloaded", "certificate_reload_failed"],
        )
        with open(self.new_cert, "rb") as handle:
            served = certificate.describe(handle.read()).fingerprint
        self.assertTrue(
            events[0][1].startswith(f"now serving sha256 {served}, valid until "),
            events[0][1],
        )
