"""
The role check and the audit of every request on the verification API's
listener (L{suto_server.api.guard}), over the real site.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource

from suto_server.admin.api import ConsoleLinkResource
from suto_server.admin.enrollment_resources import UnblockResource
from suto_server.admin.httpjson import write_json
from suto_server.api.guard import SUPPRESSED, ApiRoot
from suto_server.api.site import ApiSite
from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import ALLOWANCE, WINDOW
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

    def test_no_store(self):
        """
        Every answer, a verdict, a refusal, an admin answer or an error of
        Twisted's own, says C{Cache-Control: no-store}: a verdict or an
        admin report kept by a cache on the way could be served again.
        """
        host, operator = caller("db1", "suto-hosts"), caller("operator1", "it")
        for certificate, method, path in [
            (host, "POST", "/v1/verify"),
            (host, "GET", "/v1/status"),
            (operator, "GET", "/v1/status"),
            (operator, "GET", "/v1/nothing"),
            (None, "GET", "/"),
        ]:
            transport = connect(self.site, certificate)
            request(transport, method, path)
            head = transport.value().partition(b"\r\n\r\n")[0].lower()
            self.assertIn(b"\r\ncache-control: no-store", head, (method, path))

    def test_path_tricks(self):
        """
        Only the exact path C{/v1/verify} is the verify role's: a host
        holding only that role is refused every other spelling of it
        (doubled or trailing slashes, percent-encoding, extra segments),
        which the admin role alone would open.
        """
        host = caller("db1", "suto-hosts")
        for path in [
            "//v1/verify",
            "/v1/verify/",
            "/v1//verify",
            "/v1/%76erify",
            "/v1/verify/x",
            "/v1/verify%2F",
            "/./v1/verify",
        ]:
            self.assertEqual(self.ask(host, "POST", path)[0], 403, path)
        self.assertEqual(
            {event for event, _, _ in self.events()}, {"api_refused"}
        )


class RecordingBlacklist:
    """
    The blacklist's rules as the unblock resource uses them, recording
    who asked.
    """

    def __init__(self):
        self.unblocked = []

    def unblock(self, user, now, operator):
        self.unblocked.append((user, operator))
        return True


class OperatorTests(SynchronousTestCase):
    def test_action_names_the_certificate(self):
        """
        An admin action asked over the verification API names the
        caller's certificate as the operator in its audit record, not the
        admin socket: an auditor must see who lifted a blacklist entry.
        """
        clock = task.Clock()
        blacklist = RecordingBlacklist()
        root, v1 = resource.Resource(), resource.Resource()
        root.putChild(b"v1", v1)
        v1.putChild(b"unblock", UnblockResource(blacklist, clock))
        site = ApiSite(
            ApiRoot(POLICY, Answers({}), root, AuditLog(MemoryStore()), clock), clock
        )
        transport = connect(site, caller("operator1", "it"))
        request(transport, "POST", "/v1/unblock", b'{"user": "mallory"}')
        self.assertEqual(answer(transport)[0], 200)
        self.assertEqual(
            blacklist.unblocked,
            [("mallory", "OU=it,CN=operator1 (client certificate)")],
        )

    def test_console_link_names_the_certificate(self):
        """
        A console login link asked for over the verification API is for
        the caller's certificate, whatever operator the body claims: the
        console's audit records must name who really asked.
        """
        clock = task.Clock()
        asked = []
        root, v1 = resource.Resource(), resource.Resource()
        root.putChild(b"v1", v1)
        v1.putChild(
            b"console-link",
            ConsoleLinkResource(lambda operator: asked.append(operator) or {}),
        )
        site = ApiSite(
            ApiRoot(POLICY, Answers({}), root, AuditLog(MemoryStore()), clock), clock
        )
        transport = connect(site, caller("operator1", "it"))
        request(transport, "POST", "/v1/console-link", b'{"operator": "root"}')
        self.assertEqual(answer(transport)[0], 200)
        self.assertEqual(asked, ["OU=it,CN=operator1 (client certificate)"])


class RefusalFloodTests(SynchronousTestCase):
    def test_refused_flood(self):
        """
        A certificate without any role sending request after request
        writes at most L{ALLOWANCE} records and one suppressed a window.
        """
        clock = task.Clock()
        store = MemoryStore()
        root = ApiRoot(
            RolePolicy(), resource.Resource(), resource.Resource(), AuditLog(store), clock
        )
        site = ApiSite(root, clock)
        laptop = caller("laptop", "staff")
        for _ in range(ALLOWANCE * 5):
            request(connect(site, laptop), "GET", "/v1/status")
        events = [e.event for e in store.audit_events()]
        self.assertEqual(events, ["api_refused"] * ALLOWANCE + [SUPPRESSED])
        clock.advance(WINDOW)
        request(connect(site, laptop), "GET", "/v1/status")
        self.assertEqual(len(store.audit_events()), ALLOWANCE + 2)
