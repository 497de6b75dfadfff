"""
The admin API's resources, driven with twisted.web's DummyRequest: input
validation, status codes and the shape of the answers.
"""

import io
import json

from twisted.trial.unittest import SynchronousTestCase
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from suto_server.admin.api import MAX_BODY, admin_site
from suto_server.rules.authenticator import UnknownAccount
from suto_server.rules.rendezvous import Outcome, RequestConflict, Verdict
from tests.support.admin_site import FakeAuthenticator


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
        request = DummyRequest(path.strip("/").split("/"))
        request.method = method
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else b""
        request.content = io.BytesIO(data)
        resource = self.site.resource
        for segment in path.strip("/").split("/"):
            resource = resource.getChildWithDefault(segment.encode(), request)
        result = resource.render(request)
        if result is not server.NOT_DONE_YET:
            request.write(result)
            request.finish()
        return request

    def body(self, request):
        return json.loads(b"".join(request.written))

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
