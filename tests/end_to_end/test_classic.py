"""
End to end over real loopback sockets: the assembled server (TLS listener,
legacy listener, admin socket, hello sender) against the endpoint agent,
the operator's command line, and a raw SUTO 1.3.2 client.
"""

import datetime
import io
import os
import socket
import time

from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.classic_machine import Outcome
from suto_client.state import Account, ClientState
from suto_client.statefile import load_state, save_state
from suto_server import tap
from suto_server.admin import cli as admin
from suto_server.core import schemes
from suto_server.net import certificate
from suto_server.net.discovery import parse_targets
from suto_server.rules.rendezvous import Verdict
from suto_server.settings import Listeners, Network, Timing
from suto_server.store.sqlite import SQLiteStore
from tests.support.admin import AdminCommandMixin
from tests.support.daemon import EnrollmentFixture
from tests.support.folders import socket_folder
from tests.support.server import make_server
from tests.support.shadow import line

PASSWORDS = {"alice": "alice's secret", "yves": "yescrypt pw", "bob": "bcrypt pw"}
SCHEMES = {"alice": ("sha512_crypt", None), "yves": ("yescrypt", None), "bob": ("bcrypt", 4)}


class EndToEndTests(AdminCommandMixin, TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.data = socket_folder(self, "suto-e2e-")
        self.store = store = SQLiteStore.open(os.path.join(self.data, "suto.db"))
        for user, (scheme, rounds) in SCHEMES.items():
            store.add_user(
                user, schemes.hash_password(PASSWORDS[user], scheme, rounds), time.time()
            )
        key, cert, _ = certificate.ensure_self_signed(
            self.data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert, "rb") as handle:
            self.pin = certificate.describe(handle.read()).fingerprint
        self.server = make_server(
            reactor,
            store=store,
            listeners=Listeners(
                devices=(
                    serverFromString(
                        reactor,
                        f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
                        f":certKey={quoteStringArgument(cert)}",
                    ),
                ),
                legacy=serverFromString(reactor, "tcp:0:interface=127.0.0.1"),
                admin=serverFromString(
                    reactor,
                    f"unix:{quoteStringArgument(os.path.join(self.data, 'admin.sock'))}:mode=600",
                ),
            ),
            network=Network(hostname="suto-test"),
            timing=Timing(auth_timeout=10),
        )
        self.server.startService()
        self.addCleanup(self.server.stopService)
        tls, legacy, admin_port = yield defer.gatherResults(
            [service.listening for service in self.server.listeners]
        )
        self.tls_port = tls.getHost().port
        self.legacy_port = legacy.getHost().port

        self.state_path = os.path.join(self.data, "client.json")
        self.write_accounts()
        self.agent = Agent(
            reactor, self.state_path, hello_endpoint_port=0, hello_interface="127.0.0.1"
        )
        self.agent_results = defer.DeferredQueue()
        self.agent.add_observer(lambda user, result: self.agent_results.put((user, result)))
        self.agent.startService()
        self.addCleanup(self.agent.stopService)

    def write_accounts(self, **overrides):
        accounts = {}
        for user in PASSWORDS:
            fields = dict(
                user=user,
                server_host="127.0.0.1",
                server_port=self.tls_port,
                pin=self.pin.replace(":", "").lower(),
                password=PASSWORDS[user],
            )
            fields.update(overrides.get(user, {}))
            accounts[user] = Account(**fields)
        save_state(self.state_path, ClientState(accounts=accounts))

    def authenticate(self, user):
        targets = parse_targets(f"127.0.0.1:{self.agent.hello_port}")
        return self.started(user, targets)

    def started(self, user, targets, **kwargs):
        """
        Start authenticating C{user} at C{targets}, as the admin API does.
        """
        return defer.Deferred.fromCoroutine(
            self.server.authenticator.authenticate(user, targets, **kwargs)
        )

    @defer.inlineCallbacks
    def test_sha512_then_cached_salt(self):
        """
        A sha512-crypt account authenticates; the agent then keeps only
        crypt(password, salt), and the next authentication (the RSALT
        path) succeeds with it.
        """
        outcome = yield self.authenticate("alice")
        self.assertEqual((outcome.verdict, outcome.source), (Verdict.ACCEPTED, "127.0.0.1"))
        user, result = yield self.agent_results.get()
        self.assertEqual((user, result.outcome), ("alice", Outcome.ACCEPTED))
        account = load_state(self.state_path).accounts["alice"]
        self.assertIsNone(account.password)
        self.assertTrue(account.salted_hash.startswith("$6$"))
        outcome = yield self.authenticate("alice")
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_yescrypt(self):
        """
        A yescrypt account (the default on current distributions)
        authenticates.
        """
        outcome = yield self.authenticate("yves")
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_bcrypt(self):
        """
        A bcrypt account authenticates.
        """
        outcome = yield self.authenticate("bob")
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_wrong_password(self):
        """
        A device holding the wrong password is rejected, both sides say
        so, and the audit log records it.
        """
        self.write_accounts(alice={"password": "guess"})
        outcome = yield self.authenticate("alice")
        self.assertEqual(outcome.verdict, Verdict.REJECTED)
        user, result = yield self.agent_results.get()
        self.assertEqual((user, result.outcome), ("alice", Outcome.REJECTED))
        self.assertEqual(load_state(self.state_path).accounts["alice"].password, "guess")
        [audited] = [
            e for e in self.store.audit_events() if e.event.startswith("authentication")
        ]
        self.assertEqual(
            (audited.event, audited.username, audited.source),
            ("authentication_rejected", "alice", "127.0.0.1"),
        )

    @defer.inlineCallbacks
    def test_wrong_pin(self):
        """
        A server whose certificate does not match the pinned fingerprint
        gets no final hash: the agent aborts the handshake, so no request
        ever arrives and the server's request times out.
        """
        self.write_accounts(alice={"pin": "00" * 32})
        targets = parse_targets(f"127.0.0.1:{self.agent.hello_port}")
        outcome = yield self.started("alice", targets, timeout=2)
        self.assertEqual(outcome.verdict, Verdict.TIMEOUT)
        user, result = yield self.agent_results.get()
        self.assertEqual((user, result.outcome), ("alice", Outcome.ERROR))
        self.assertIn(
            self.pin.replace(":", "").lower(), result.reason.replace(":", "").lower()
        )

    @defer.inlineCallbacks
    def test_suto_admin_auth(self):
        """
        C{suto-admin auth} asks the running daemon over its admin socket and
        exits 0 with one line when the device proves the password.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = yield threads.deferToThread(
            admin.main,
            [
                "--data", self.data, "auth", "alice",
                "--target", f"127.0.0.1:{self.agent.hello_port}", "--timeout", "10",
            ],
            stdout=stdout,
            stderr=stderr,
        )
        self.assertEqual((code, stdout.getvalue(), stderr.getvalue()), (0, "alice: accepted from 127.0.0.1\n", ""))

    @defer.inlineCallbacks
    def test_suto_admin_auth_fails(self):
        """
        C{suto-admin auth} exits 3 when nobody answers in time.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = yield threads.deferToThread(
            admin.main,
            ["--data", self.data, "auth", "alice", "--target", "127.0.0.1:9", "--timeout", "0.5"],
            stdout=stdout,
            stderr=stderr,
        )
        self.assertEqual(code, 3)
        self.assertEqual(stdout.getvalue(), "alice: timeout (no device connected in time)\n")

    @defer.inlineCallbacks
    def test_suto_admin_auth_wrong_answer(self):
        """
        C{suto-admin auth} exits 1 with one line naming the verdict and the
        device when the device answers with the wrong password (the server
        sends it AUTH_0).
        """
        self.write_accounts(alice={"password": "guess"})
        result = yield self.run_admin(
            "auth", "alice", "--target", f"127.0.0.1:{self.agent.hello_port}",
            "--timeout", "10",
        )
        self.assertEqual(
            result, (1, "alice: rejected from 127.0.0.1 (wrong response)\n", "")
        )
        user, agent_result = yield self.agent_results.get()
        self.assertEqual((user, agent_result.outcome), ("alice", Outcome.REJECTED))

    def legacy_exchange(self, request, password, salt=None):
        """
        Authenticate alice over a raw socket to the legacy listener, as a
        SUTO 1.3.2 client would: C{request}, then the final hash from
        C{password} and the salts (the reply's, or C{salt} with the reply's
        RSALT).  The hello goes to the discard port, so the agent (which
        also holds alice) does not race the raw socket to the server.

        @return: a L{Deferred} firing with the reply, the verdict, what
            followed the verdict (C{b""} once the server closed) and the
            server's outcome.
        """
        pending = defer.Deferred.fromCoroutine(
            self.server.authenticator.authenticate("alice", parse_targets("127.0.0.1:9"))
        )
        d = threads.deferToThread(
            legacy_conversation, self.legacy_port, request, password, salt
        )
        return defer.gatherResults([d, pending]).addCallback(
            lambda results: (*results[0], results[1])
        )

    @defer.inlineCallbacks
    def test_legacy_bytes(self):
        """
        A raw socket speaking exactly what a SUTO 1.3.2 client sends gets
        exactly the 1.3.2 replies: a 50-byte SALTA, an 11-byte verdict.
        """
        stored_salt = schemes.salt_of(self.store.hash_for("alice"))
        salta, verdict, closed, outcome = yield self.legacy_exchange(
            b"SUTO_C_GET_SALTA", PASSWORDS["alice"]
        )
        salt, rsalt = salta[len(b"SUTO_SALTA_"):].decode().split("_")
        self.assertEqual(len(salta), 50)
        self.assertEqual(salt, stored_salt)
        self.assertRegex(rsalt, r"^\$6\$[A-Za-z0-9./]{16}$")
        self.assertEqual((verdict, len(verdict), closed), (b"SUTO_AUTH_1", 11, b""))
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_legacy_cached_salt_bytes(self):
        """
        The cached-salt path of a 1.3.2 client (it already knows the salt):
        SUTO_C_GET_RSALT gets exactly C{SUTO_RSALT_} and a 19-character
        RSALT, 30 bytes, and the final hash over it is accepted.
        """
        stored_salt = schemes.salt_of(self.store.hash_for("alice"))
        reply, verdict, closed, outcome = yield self.legacy_exchange(
            b"SUTO_C_GET_RSALT", PASSWORDS["alice"], stored_salt
        )
        self.assertEqual(len(reply), 30)
        self.assertRegex(reply, rb"^SUTO_RSALT_\$6\$[A-Za-z0-9./]{16}$")
        self.assertEqual((verdict, closed), (b"SUTO_AUTH_1", b""))
        self.assertEqual(outcome.verdict, Verdict.ACCEPTED)

    @defer.inlineCallbacks
    def test_legacy_wrong_hash_bytes(self):
        """
        A wrong final hash gets exactly C{SUTO_AUTH_0}, 11 bytes, and then
        the server closes the connection; the request is rejected.
        """
        _, verdict, closed, outcome = yield self.legacy_exchange(
            b"SUTO_C_GET_SALTA", "not alice's secret"
        )
        self.assertEqual((verdict, len(verdict), closed), (b"SUTO_AUTH_0", 11, b""))
        self.assertEqual(outcome.verdict, Verdict.REJECTED)


class LegacyListenerTests(EnrollmentFixture, TestCase):
    """
    The daemon as C{twistd suto} builds it, with the legacy listener on and
    a shadow file: what a SUTO 1.3.2 client may and may not do there.
    """

    def setUp(self):
        self.shadow = os.path.abspath(self.mktemp())
        with open(self.shadow, "w", encoding="utf-8") as stream:
            stream.write(
                line("carol", schemes.hash_password("carol's secret", "sha512_crypt"))
            )
        self.server_arguments = (
            "--hello-port", "9",
            "--legacy-listen", "tcp:0:interface=127.0.0.1",
            "--shadow", self.shadow,
        )
        return EnrollmentFixture.setUp(self)

    @defer.inlineCallbacks
    def legacy_port(self):
        [legacy] = [
            service
            for service in self.server.listeners
            if service.name == "SUTO 1.3.2 legacy listener"
        ]
        port = yield legacy.listening
        return port.getHost().port

    @defer.inlineCallbacks
    def test_shadow_user_authenticates(self):
        """
        A user known only to the C{--shadow} file authenticates end to
        end: the daemon offers the shadow hash's salt and accepts the
        final hash over it.
        """
        pending = defer.Deferred.fromCoroutine(
            self.server.authenticator.authenticate("carol", parse_targets("127.0.0.1:9"))
        )
        salta, verdict, closed = yield threads.deferToThread(
            legacy_conversation,
            (yield self.legacy_port()),
            b"SUTO_C_GET_SALTA",
            "carol's secret",
        )
        self.assertTrue(salta.startswith(b"SUTO_SALTA_$6$"))
        self.assertEqual((verdict, closed), (b"SUTO_AUTH_1", b""))
        outcome = yield pending
        self.assertEqual((outcome.user, outcome.verdict), ("carol", Verdict.ACCEPTED))

    def test_unusable_shadow_file(self):
        """
        A C{--shadow} file the daemon cannot use stops it at start with one
        line naming the file and the line at fault.
        """
        with open(self.shadow, "w", encoding="utf-8") as stream:
            stream.write("carol\n")
        options = tap.Options()
        # A folder of its own: the fixture's server holds self.data.
        options.parseOptions(["--data", self.mktemp(), "--shadow", self.shadow])
        error = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertEqual(
            error.code,
            f"suto: cannot start: --shadow {self.shadow} line 1: expected 2 to 9 "
            "colon-separated fields",
        )

    @defer.inlineCallbacks
    def test_refuses_enrollment_and_rotation(self):
        """
        Enrollment and rotation messages on the legacy listener, with an
        enrollment window open for the user, end the connection with
        nothing sent back (a 1.3.2 peer reads any bytes as a reply): no
        SALTA, no attempt counted on the window, no enrollment event.
        """
        yield self.open_window()
        port = yield self.legacy_port()
        for message in (b"SUTO_C_ENROLL_alice", b"SUTO_C_ROTATE_" + b"0" * 32):
            received = yield threads.deferToThread(read_until_closed, port, message)
            self.assertEqual(received, b"", message)
        code, out, _ = yield self.admin("windows")
        self.assertEqual(code, 0)
        self.assertIn("0/5 failed", out)
        yield self.server.audit.flushed()
        events = [event.event for event in self.server.store.audit_events()]
        self.assertNotIn("enrollment_failed", events)

    @defer.inlineCallbacks
    def test_enrollment_while_authentication_waits(self):
        """
        With an authentication waiting for the device, the legacy listener
        speaks the classic challenge at once, so an enrollment request is
        a wrong message in it: exactly SUTO_AUTH_0, then the connection
        closes, and the authentication ends in error.
        """
        yield self.open_window("carol")
        pending = defer.Deferred.fromCoroutine(
            self.server.authenticator.authenticate("carol", parse_targets("127.0.0.1:9"))
        )
        received = yield threads.deferToThread(
            read_until_closed, (yield self.legacy_port()), b"SUTO_C_ENROLL_carol"
        )
        self.assertEqual(received, b"SUTO_AUTH_0")
        outcome = yield pending
        self.assertEqual(outcome.verdict, Verdict.ERROR)
        self.assertIsNone(self.server.store.get_profile("carol"))

    @defer.inlineCallbacks
    def test_warns_at_start(self):
        """
        A daemon started with the legacy listener logs one warning that it
        is plaintext and serves only the classic salted challenge.
        """
        yield self.server.stopService()
        with capturedLogs() as events:
            starting = self.start_server()
        yield starting
        warnings = [
            formatEvent(event)
            for event in events
            if event["log_level"] is LogLevel.warn and "legacy" in formatEvent(event)
        ]
        self.assertEqual(
            warnings,
            [
                "the SUTO 1.3.2 legacy listener is on: it is plaintext and "
                "serves only the classic salted challenge"
            ],
        )


def read_until_closed(port, data):
    """
    Send C{data} to the legacy listener on loopback C{port} and read until
    it closes the connection.  Blocks: run it in a thread.

    @return: every byte the listener sent.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        while chunk := sock.recv(200):
            received += chunk
    return received


def legacy_conversation(port, request, password, salt=None):
    """
    Send C{request} to the legacy listener on C{port}, then the final hash
    of C{password} over the salts: the reply's SALTA, or C{salt} and the
    reply's RSALT.  Blocks: run it in a thread.

    @return: the reply, the verdict, and what the next read returned.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(200)
        fields = reply.decode().split("_", 2)[2]
        if salt is None:
            salt, rsalt = fields.split("_")
        else:
            rsalt = fields
        final = schemes.client_response(password, salt, rsalt)
        sock.sendall(b"SUTO_CF_HASH_" + final.encode())
        verdict = sock.recv(200)
        closed = sock.recv(200)
    return reply, verdict, closed
