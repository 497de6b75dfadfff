"""
The verification API end to end over loopback: the daemon as C{twistd
suto} builds it with C{--api-listen}, a device enrolled through it whose
real agent rotates (and proves its key when challenged) and answers
hellos for an account without a profile, and a host asking for verdicts
over HTTPS with a client certificate from the callers' CA.
"""

import http.client
import json
import os
import socket
import ssl
import time

from twisted.internet import defer, threads
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import Account, ClientState
from suto_client.statefile import save_state
from suto_server.core import schemes
from suto_server.net.certificate import CERT_FILE
from suto_server.store.records import BlacklistEntry
from tests.support.daemon import EnrollmentFixture
from tests.support.pki import Authority, Files

#: The password of bob, an account without a profile, verified with the
#: classic challenge at his configured target.
PASSWORD = "bob's secret"


def free_udp_port():
    """
    A UDP port of the loopback address nobody holds right now, for the
    agent's hellos: the daemon must be told it before the agent starts.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


class VerifyApiEndToEndTests(EnrollmentFixture, TestCase):
    """
    C{POST /v1/verify} against a real enrolled device.
    """

    def make_listener(self):
        self.hello_port = free_udp_port()
        self.files = Files(os.path.join(self.data, "pki"))
        self.callers = Authority("SUTO API callers CA")
        callers_ca = self.files.write("callers.pem", self.callers.certificate)
        targets = self.files.write_bytes("verify-targets.txt", b"bob: 127.0.0.1/32\n")
        self.server_arguments = (
            "--hello-port", str(self.hello_port),
            "--api-listen",
            f"ssl:0:interface=127.0.0.1:caCerts={quoteStringArgument(callers_ca)}"
            ":requireClientCert=yes",
            "--verify-ou", "suto-hosts",
            "--admin-ou", "it-admins",
            "--api-per-minute", "6",
            "--verify-targets", targets,
        )
        return super().make_listener()

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.api_port = (yield self.server.listeners[-1].listening).getHost().port
        self.server.store.add_user(
            "bob", schemes.hash_password(PASSWORD, "sha512_crypt", None), time.time()
        )
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        state = os.path.join(self.data, "client.json")
        account = Account(
            user="bob",
            server_host="127.0.0.1",
            server_port=self.port,
            pin=self.pin.replace(":", "").lower(),
            password=PASSWORD,
        )
        save_state(
            state,
            ClientState(accounts={"bob": account}, profiles={"alice": result.profile}),
        )
        # Its first rotation makes its connection the profile's live one.
        self.assertEqual(
            (yield self.start_agent(state, self.hello_port)), RotationOutcome.ROTATED
        )

    def caller(self, name, unit):
        """
        The files of a client certificate for C{name} in C{unit}.
        """
        key, certificate = self.callers.issue(name, client=True, units=(unit,))
        return (
            self.files.write(f"{name}.crt", certificate),
            self.files.write(f"{name}.key", key),
        )

    def ask(self, identity, method, path, body=None):
        """
        One HTTPS request to the API as C{identity}, in a thread (the
        reactor serves it meanwhile), checking the daemon's certificate
        against the one devices pin.

        @return: a L{Deferred} firing with C{(status, JSON body)}.
        """

        def call():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(os.path.join(self.data, CERT_FILE))
            context.load_cert_chain(*identity)
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.api_port, context=context, timeout=40
            )
            try:
                payload = None if body is None else json.dumps(body)
                connection.request(
                    method, path, payload, {"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                return response.status, json.loads(response.read())
            finally:
                connection.close()

        return threads.deferToThread(call)

    @defer.inlineCallbacks
    def test_accepted(self):
        """
        A host with the verify role asks for alice: the agent on her
        profile's live connection proves its current key, and the answer
        is accepted; the request is audited with the host's subject.
        """
        status, body = yield self.ask(
            self.caller("db1", "suto-hosts"), "POST", "/v1/verify", {"user": "alice"}
        )
        self.assertEqual((status, body["verdict"]), (200, "accepted"), body)
        self.assertIn("live connection", body["reason"])
        [event] = yield self.events("verify_accepted")
        self.assertEqual((event.username, event.source), ("alice", "OU=suto-hosts,CN=db1"))

    @defer.inlineCallbacks
    def test_configured_target(self):
        """
        bob has no profile: his device at his configured target proves
        his password with the classic challenge.
        """
        status, body = yield self.ask(
            self.caller("db1", "suto-hosts"), "POST", "/v1/verify", {"user": "bob"}
        )
        self.assertEqual((status, body["verdict"]), (200, "accepted"), body)
        self.assertEqual(len((yield self.events("authentication_accepted"))), 1)

    @defer.inlineCallbacks
    def test_device_stopped(self):
        """
        With the agent stopped, a verification ends within its deadline
        as device_offline: alice's profile has no live connection left,
        and nobody answers the hello for bob.
        """
        yield self.stop_agent()
        started = time.monotonic()
        status, body = yield self.ask(
            self.caller("db1", "suto-hosts"),
            "POST",
            "/v1/verify",
            {"user": "alice", "deadline": 2},
        )
        self.assertEqual((status, body["verdict"]), (200, "device_offline"), body)
        _, body = yield self.ask(
            self.caller("db1", "suto-hosts"),
            "POST",
            "/v1/verify",
            {"user": "bob", "deadline": 2},
        )
        self.assertEqual(body["verdict"], "device_offline", body)
        self.assertLess(time.monotonic() - started, 10)

    @defer.inlineCallbacks
    def test_blacklisted(self):
        """
        A blacklisted profile is answered blacklisted at once, and no
        hello reaches its device.
        """
        self.server.store.add_to_blacklist(
            BlacklistEntry("alice", time.time(), "test", "127.0.0.1", "blacklisted")
        )
        status, body = yield self.ask(
            self.caller("db1", "suto-hosts"), "POST", "/v1/verify", {"user": "alice"}
        )
        self.assertEqual((status, body["verdict"]), (200, "blacklisted"), body)
        self.assertEqual(self.server.rendezvous.pending, ())
        self.assertEqual((yield self.events("authentication_accepted")), [])

    @defer.inlineCallbacks
    def test_roles(self):
        """
        A certificate without the verify role is refused 403; an
        operator's with the admin role reaches the admin API, and not
        the verifications.
        """
        status, _ = yield self.ask(
            self.caller("laptop", "staff"), "POST", "/v1/verify", {"user": "alice"}
        )
        self.assertEqual(status, 403)
        operator = self.caller("operator1", "it-admins")
        status, body = yield self.ask(operator, "GET", "/v1/status")
        self.assertEqual(status, 200)
        self.assertIn("uptime", body)
        status, _ = yield self.ask(operator, "POST", "/v1/verify", {"user": "alice"})
        self.assertEqual(status, 403)

    @defer.inlineCallbacks
    def test_rate_limited(self):
        """
        Past its verifications a minute, a host is answered rate_limited
        without any device being asked; another host is still heard.
        """
        host = self.caller("db1", "suto-hosts")
        verdicts = []
        for _ in range(7):
            _, body = yield self.ask(host, "POST", "/v1/verify", {"user": "nobody"})
            verdicts.append(body["verdict"])
        self.assertEqual(verdicts, ["no_device"] * 6 + ["rate_limited"])
        _, body = yield self.ask(
            self.caller("db2", "suto-hosts"), "POST", "/v1/verify", {"user": "nobody"}
        )
        self.assertEqual(body["verdict"], "no_device")
