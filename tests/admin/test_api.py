"""
The admin API's resources, driven with twisted.web's DummyRequest: input
validation, status codes and the shape of the answers.
"""

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin.api import ADMIN_CONNECTIONS, admin_listener, admin_site
from suto_server.admin.httpjson import MAX_BODY
from suto_server.audit.log import AuditLog
from suto_server.rules.authenticator import TargetTooWide, UnknownAccount
from suto_server.rules.rendezvous import Outcome, RequestConflict, Verdict
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from tests.support.admin import FakeAuthenticator, answer, render
from tests.support.http_connections import assert_closed_at_deadline, connect


class AdminAPITests(SynchronousTestCase):
    def setUp(self):
        self.authenticator = FakeAuthenticator()
        self.site = admin_site(
            self.authenticator,
            2020,
            lambda: {"uptime": 1.0, "listeners": [], "pending": []},
            lambda: [{"fingerprint": "AB:CD"}],
        )

    def request(self, method, path, body=None, raw=None):
        return render(self.site, method, path, body, raw)

    def body(self, request):
        return answer(request)

    def test_auth_answers_with_verdict(self):
        """
        POST /v1/auth starts an authentication and answers with the verdict
        once it is in.
        """
        request = self.request("POST", "/v1/auth", {"user": "alice", "target": "127.0.0.1:2999"})
        [(user, targets, timeout)] = self.authenticator.calls
        self.assertEqual((user, str(targets[0]), timeout), ("alice", "127.0.0.1:2999", None))
        self.assertEqual(request.written, [])
        self.authenticator.pending.callback(
            Outcome("alice", Verdict.ACCEPTED, "127.0.0.1", "")
        )
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(
            self.body(request),
            {"user": "alice", "verdict": "accepted", "source": "127.0.0.1", "reason": ""},
        )

    def test_answer_waits_for_audit_record(self):
        """
        A verdict is answered only once the audit records made so far,
        its own among them, are on disk: with the appends pending, the
        request has no answer yet; when they land, it has.
        """
        appends = []

        def append(record):
            appends.append(Deferred())
            return appends[-1]

        audit = AuditLog(MemoryStore(), sinks=[], append=append)
        site = admin_site(self.authenticator, 2020, dict, list, audit=audit)
        request = render(site, "POST", "/v1/auth", {"user": "alice", "target": "127.0.0.1"})
        audit.record(1.0, "authentication_accepted", "alice", "127.0.0.1", "accepted")
        self.authenticator.pending.callback(
            Outcome("alice", Verdict.ACCEPTED, "127.0.0.1", "")
        )
        self.assertEqual(request.written, [])
        appends[0].callback(None)
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(answer(request)["verdict"], "accepted")

    def test_default_hello_port(self):
        """
        A target without a port gets the configured hello port.
        """
        self.request("POST", "/v1/auth", {"user": "alice", "target": "127.0.0.1", "timeout": 3})
        [(_, targets, timeout)] = self.authenticator.calls
        self.assertEqual((targets[0].port, timeout), (2020, 3))

    def test_bad_requests(self):
        """
        Malformed requests get 400 with an explanation and start nothing.
        """
        for body in (
            {"target": "127.0.0.1"},
            {"user": "-rf", "target": "127.0.0.1"},
            {"user": "alice"},
            {"user": "alice", "target": "not-an-address"},
            {"user": "alice", "target": "127.0.0.1", "timeout": -1},
            {"user": "alice", "target": "127.0.0.1", "timeout": True},
            {"user": "alice", "target": "255.255.255.255"},
            ["alice"],
        ):
            request = self.request("POST", "/v1/auth", body)
            self.assertEqual(request.responseCode, 400, body)
            self.assertIn("error", self.body(request))
        for raw in (b"{", b"x" * (MAX_BODY + 1)):
            request = self.request("POST", "/v1/auth", raw=raw)
            self.assertEqual(request.responseCode, 400)
        self.assertEqual(self.authenticator.calls, [])

    def test_unknown_user(self):
        """
        An account without a usable hash is a 404.
        """
        self.authenticator.error = UnknownAccount("no usable password hash for bob")
        request = self.request("POST", "/v1/auth", {"user": "bob", "target": "127.0.0.1"})
        self.assertEqual(request.responseCode, 404)

    def test_conflict(self):
        """
        A request overlapping a pending one is a 409.
        """
        self.authenticator.error = RequestConflict("busy")
        request = self.request("POST", "/v1/auth", {"user": "bob", "target": "127.0.0.1"})
        self.assertEqual(request.responseCode, 409)

    def test_store_unreadable(self):
        """
        A store that cannot say whether the account has a hash is a 503:
        try again.
        """
        self.authenticator.error = StoreError("the database went away")
        request = self.request("POST", "/v1/auth", {"user": "bob", "target": "127.0.0.1"})
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_refusal_logged(self):
        """
        An authentication refused before any hello went out says so in
        the log, after the request's own line, with the reason it was
        answered with.
        """
        for error in (
            UnknownAccount("no usable password hash for bob"),
            RequestConflict("busy"),
            TargetTooWide("too wide"),
            StoreError("the database went away"),
        ):
            self.authenticator.error = error
            with capturedLogs() as logged:
                request = self.request(
                    "POST", "/v1/auth", {"user": "bob", "target": "127.0.0.1"}
                )
            lines = [formatEvent(event) for event in logged]
            self.assertEqual(
                lines,
                [
                    "admin asked to authenticate bob at 127.0.0.1:2020",
                    "no hello went out for bob at 127.0.0.1:2020: "
                    + answer(request)["error"],
                ],
            )

    def test_hello_failure_logged(self):
        """
        A hello that could not be sent is a warning naming the error.
        """
        self.authenticator.error = OSError(101, "Network is unreachable")
        with capturedLogs() as logged:
            request = self.request(
                "POST", "/v1/auth", {"user": "bob", "target": "127.0.0.1"}
            )
        self.assertEqual(request.responseCode, 503)
        [_, failed] = logged
        self.assertEqual(failed["log_level"], LogLevel.warn)
        self.assertEqual(
            formatEvent(failed),
            "the hello for bob at 127.0.0.1:2020 could not be sent: "
            "[Errno 101] Network is unreachable",
        )

    def test_started_logged_once(self):
        """
        An authentication whose hello went out has the request's line
        alone, whatever its verdict (the phase and the rendezvous log
        verdicts).
        """
        with capturedLogs() as logged:
            request = self.request(
                "POST", "/v1/auth", {"user": "alice", "target": "127.0.0.1"}
            )
            self.authenticator.pending.callback(
                Outcome("alice", Verdict.TIMEOUT, None, "no answer")
            )
        self.assertEqual(answer(request)["verdict"], "timeout")
        self.assertEqual(
            [formatEvent(event) for event in logged],
            ["admin asked to authenticate alice at 127.0.0.1:2020"],
        )

    def test_client_gone(self):
        """
        If the admin client hangs up first, the late verdict writes nothing.
        """
        request = self.request("POST", "/v1/auth", {"user": "alice", "target": "127.0.0.1"})
        request.finish()
        written = list(request.written)
        self.authenticator.pending.callback(Outcome("alice", Verdict.TIMEOUT))
        self.assertEqual(request.written, written)

    def test_status(self):
        """
        GET /v1/status returns the status dictionary as JSON.
        """
        request = self.request("GET", "/v1/status")
        self.assertEqual(self.body(request)["uptime"], 1.0)

    def test_reload(self):
        """
        POST /v1/reload reloads the certificates and reports each one.
        """
        request = self.request("POST", "/v1/reload")
        self.assertEqual(self.body(request), {"certificates": [{"fingerprint": "AB:CD"}]})


class AuthBoundsTests(SynchronousTestCase):
    """
    C{POST /v1/auth} passes C{wide} on and answers a too wide target 400.
    """

    def setUp(self):
        self.authenticator = FakeAuthenticator()
        self.site = admin_site(self.authenticator, 2020, dict, list)

    def test_wide_passed_on(self):
        """
        C{"wide": true} reaches the authenticator; absent, it is false.
        """
        render(self.site, "POST", "/v1/auth", {"user": "alice", "target": "10.0.0.0/8"})
        self.assertFalse(self.authenticator.wide)
        render(
            self.site,
            "POST",
            "/v1/auth",
            {"user": "alice", "target": "10.0.0.0/8", "wide": True},
        )
        self.assertTrue(self.authenticator.wide)

    def test_too_wide(self):
        """
        The authenticator's L{TargetTooWide} is a 400 with its message; a
        C{wide} that is not a boolean is a 400 too.
        """
        self.authenticator.error = TargetTooWide("10.0.0.0/8 is wider")
        request = render(
            self.site, "POST", "/v1/auth", {"user": "alice", "target": "10.0.0.0/8"}
        )
        self.assertEqual(
            (request.responseCode, answer(request)),
            (400, {"error": "10.0.0.0/8 is wider"}),
        )
        self.authenticator.error = None
        request = render(
            self.site,
            "POST",
            "/v1/auth",
            {"user": "alice", "target": "10.0.0.0/8", "wide": "yes"},
        )
        self.assertEqual(request.responseCode, 400)


class AdminConnectionTests(SynchronousTestCase):
    """
    The admin socket's connections: the request deadline and the
    connection bound of L{suto_server.admin.httpbounds}, on the clock the
    site is given.
    """

    def setUp(self):
        self.clock = Clock()
        site = admin_site(None, 2020, dict, list, clock=self.clock, deadline=3.0)
        self.factory = admin_listener(site, self.clock)
        self.factory.doStart()

    def test_deadline(self):
        """
        A request that has not wholly arrived within the deadline closes
        its connection unanswered, however often it sends a byte.
        """
        assert_closed_at_deadline(self, self.factory, UNIXAddress(None), self.clock, 3.0)

    def test_form_body(self):
        """
        A body sent as a form is not parsed as one (every resource reads
        JSON): a malformed multipart body gets the API's own answer, a 400
        saying the body is not JSON, on a connection that stays open.
        """
        channel, transport = connect(self.factory, UNIXAddress(None))
        body = b"--x\r\ngarbage"
        channel.dataReceived(
            b"POST /v1/auth HTTP/1.1\r\nHost: suto\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertIn(b'{"error": "request body is not JSON"}', transport.value())
        self.assertFalse(transport.disconnecting)

    def test_connections(self):
        """
        The socket holds at most L{ADMIN_CONNECTIONS} connections at
        once; the next is refused until one of them closes.
        """
        address = UNIXAddress(None)
        held = [connect(self.factory, address)[0] for _ in range(ADMIN_CONNECTIONS)]
        self.assertNotIn(None, held)
        self.assertEqual(connect(self.factory, address), (None, None))
        held[0].connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(connect(self.factory, address)[0])
