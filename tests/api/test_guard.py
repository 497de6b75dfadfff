"""
The role check and the audit of every request on the verification API's
listener (L{suto_server.api.guard}), over the real site.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource

from suto_server.admin.httpjson import write_json
from suto_server.api.guard import ApiRoot
from suto_server.api.site import ApiSite
from suto_server.audit.log import AuditLog
from suto_server.cred.roles import RolePolicy
from suto_server.store.memory import MemoryStore
from tests.support.api import CALLER_ADDRESS, answer, caller, connect, request

POLICY = RolePolicy.from_options(
    verify_units="suto-hosts", admin_subjects="OU=it,CN=operator1"
)


class Answers(resource.Resource):
    """
    A leaf answering every method with C{body}.
    """

    isLeaf = True

    def __init__(self, body):
        super().__init__()
        self._body = body

    def render(self, request):
        return write_json(request, 200, self._body)


def admin_root():
    """
    A stand-in for the admin API's root: C{/v1/status} answers.
    """
    root, v1 = resource.Resource(), resource.Resource()
    root.putChild(b"v1", v1)
    v1.putChild(b"status", Answers({"ok": True}))
    return root


class GuardTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.store = MemoryStore()
        verify = Answers({"verified": True})
        self.site = ApiSite(
            ApiRoot(POLICY, verify, admin_root(), AuditLog(self.store), self.clock),
            self.clock,
        )

    def ask(self, certificate, method, path):
        transport = connect(self.site, certificate)
        request(transport, method, path)
        return answer(transport)

    def events(self):
        return [
            (e.event, e.source, e.reason) for e in self.store.audit_events()
        ]

    def test_verify_role(self):
        """
        A host holding the verify role reaches C{/v1/verify}; the admin
        API is refused to it with 403 and the refusal is audited with
        its subject.
        """
        host = caller("db1", "suto-hosts")
        self.assertEqual(self.ask(host, "POST", "/v1/verify"), (200, {"verified": True}))
        status, body = self.ask(host, "GET", "/v1/status")
        self.assertEqual(status, 403)
        self.assertIn("admin role", body["error"])
        self.assertEqual(
            self.events(),
            [
                (
                    "api_refused",
                    "OU=suto-hosts,CN=db1",
                    f"GET /v1/status from {CALLER_ADDRESS}: lacks the admin role",
                )
            ],
        )

    def test_admin_role(self):
        """
        An operator holding the admin role reaches the admin resources,
        each request audited; it may not ask for verdicts.
        """
        operator = caller("operator1", "it")
        self.assertEqual(self.ask(operator, "GET", "/v1/status"), (200, {"ok": True}))
        self.assertEqual(self.ask(operator, "POST", "/v1/verify")[0], 403)
        self.assertEqual(
            [event for event, _, _ in self.events()],
            ["api_admin_request", "api_refused"],
        )
        self.assertEqual(self.events()[0][1], "OU=it,CN=operator1")

    def test_no_role(self):
        """
        A certificate the policy grants nothing, and a connection without
        one, are refused everywhere.
        """
        for certificate in [caller("laptop", "staff"), None]:
            for path in ["/v1/verify", "/v1/status", "/"]:
                self.assertEqual(self.ask(certificate, "GET", path)[0], 403)
        self.assertEqual(
            {event for event, _, _ in self.events()}, {"api_refused"}
        )
