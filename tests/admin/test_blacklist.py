"""
The blacklist as operators see it: the admin API's C{/v1/blacklist} and
C{/v1/unblock} (driven with DummyRequest) over the real reconnection and
enrollment rules, the enrollment window a blacklisted user cannot get, and
C{suto-admin blacklist} / C{suto-admin unblock} against a real admin
socket.
"""


from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.admin.api import admin_site
from suto_server.audit.log import AuditLog
from suto_server.locations import Locations
from suto_server.rules.enrollment import Enrollment
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rotation import Rotation
from suto_server.rules.windows import WindowDesk
from suto_server.store.calls import LocalCalls
from suto_server.store.memory import MemoryStore
from suto_server.store.records import BlacklistEntry
from tests.support.admin import AdminCommandMixin, AdminRequestsMixin, FakeAuthenticator
from tests.support.folders import socket_folder
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ReportingPool
from tests.support.rotation import NOW, enroll

REASON = "the reconnection from 10.9.0.4 did not open"


class BlacklistSiteMixin(AdminRequestsMixin):
    """
    An admin site over a L{MemoryStore} with the real reconnection,
    enrollment and window rules on a clock at L{NOW}; C{alice} and
    C{bob} are enrolled and C{alice} is blacklisted.
    """

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        master_key = new_master_key(self)
        audit = AuditLog(self.store)
        calls = LocalCalls(self.store)
        self.reconnection = Reconnection(
            calls, Rotation(calls, master_key, None, audit), audit
        )
        enroll(self.store, master_key, "alice")
        enroll(self.store, master_key, "bob")
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, REASON, "10.9.0.4", "reconnect_failed")
        )
        desk = WindowDesk(
            Enrollment(self.store, master_key, ReportingPool()),
            Locations(),
            self.clock,
            RecordingHello(),
            2020,
            list,
        )
        self.site = admin_site(
            FakeAuthenticator(),
            2020,
            dict,
            list,
            desk,
            reconnection=self.reconnection,
            clock=self.clock,
        )


class BlacklistResourcesTests(BlacklistSiteMixin, SynchronousTestCase):
    """
    C{GET /v1/blacklist} and C{POST /v1/unblock}.
    """

    def test_blacklist(self):
        """
        C{GET /v1/blacklist} answers one row per blacklisted profile.
        """
        request = self.request("GET", "/v1/blacklist")
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(
            self.body(request),
            {
                "blacklist": [
                    {
                        "user": "alice",
                        "time": "2023-11-14T22:13:20Z",
                        "reason": REASON,
                        "source": "10.9.0.4",
                        "alert": "reconnect_failed",
                    }
                ]
            },
        )

    def test_unblock_bad_requests(self):
        """
        A missing, invalid or non-text user, or a body that is not a JSON
        object, is a 400 and lifts nothing.
        """
        for body in ({}, {"user": None}, {"user": "-rf"}, {"user": 7}, {"user": "a b"}):
            request = self.request("POST", "/v1/unblock", body)
            self.assertEqual(request.responseCode, 400, body)
            self.assertIn("error", self.body(request))
        for raw in (b"{", b"[]"):
            request = self.request("POST", "/v1/unblock", raw=raw)
            self.assertEqual(request.responseCode, 400, raw)
        self.assertIsNotNone(self.store.blacklist_entry("alice"))

    def test_unblock_not_blacklisted(self):
        """
        A user who is not blacklisted (enrolled or not) is a 404 that says
        so; the enrolled profile stays.
        """
        for user in ("bob", "carol"):
            request = self.request("POST", "/v1/unblock", {"user": user})
            self.assertEqual(
                (request.responseCode, self.body(request)),
                (404, {"error": f"{user} is not blacklisted"}),
            )
        self.assertIsNotNone(self.store.get_profile("bob"))

    def test_unblock(self):
        """
        Unblocking answers 200, lifts the entry and removes the profile,
        so a window for the user then opens without C{replace}.
        """
        request = self.request("POST", "/v1/unblock", {"user": "alice"})
        self.assertEqual(
            (request.responseCode, self.body(request)),
            (200, {"user": "alice", "unblocked": True}),
        )
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        request = self.enroll(password="a-long-password")
        self.assertEqual(request.responseCode, 200)
        self.assertIsNotNone(self.store.get_window("alice"))

    def test_enroll_blacklisted(self):
        """
        Opening a window for a blacklisted user, even with C{replace}, is a
        409 that says how to lift it; no window opens.
        """
        for replace in (False, True):
            request = self.enroll(password="a-long-password", replace=replace)
            self.assertEqual(request.responseCode, 409)
            self.assertEqual(
                self.body(request),
                {
                    "error": "alice is blacklisted; lift it with 'suto-admin "
                    "unblock alice' first, which removes the profile"
                },
            )
        self.assertIsNone(self.store.get_window("alice"))

    def test_without_reconnection(self):
        """
        A site built without the reconnection rules serves neither
        resource.
        """
        site = admin_site(None, 2020, dict, list)
        for method, path in (("GET", "/v1/blacklist"), ("POST", "/v1/unblock")):
            request = self.request(method, path, {"user": "alice"}, site=site)
            self.assertEqual(request.responseCode, 404, path)


class BlacklistCommandTests(AdminCommandMixin, BlacklistSiteMixin, TestCase):
    """
    C{suto-admin blacklist} and C{suto-admin unblock} against the admin
    API on a real UNIX socket.
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.data = socket_folder(self, "suto-bl-")
        yield self.listen_admin(self.site)

    @defer.inlineCallbacks
    def test_blacklist(self):
        """
        C{suto-admin blacklist} prints one line per profile: user, time,
        alert, source and reason.
        """
        result = yield self.run_admin("blacklist")
        self.assertEqual(
            result,
            (
                0,
                "USER\tTIME\tALERT\tSOURCE\tREASON\n"
                f"alice\t2023-11-14T22:13:20Z\treconnect_failed\tfrom 10.9.0.4"
                f"\t{REASON}\n",
                "",
            ),
        )

    @defer.inlineCallbacks
    def test_unblock(self):
        """
        C{suto-admin unblock USER} says the profile went and the device
        must enroll again; the blacklist is then empty.
        """
        result = yield self.run_admin("unblock", "alice")
        self.assertEqual(
            result,
            (
                0,
                "lifted the blacklist entry of alice and removed its profile: "
                "enroll the device again (suto-admin enroll)\n",
                "",
            ),
        )
        self.assertEqual(
            (yield self.run_admin("blacklist")),
            (0, "USER\tTIME\tALERT\tSOURCE\tREASON\n", ""),
        )

    @defer.inlineCallbacks
    def test_unblock_not_blacklisted(self):
        """
        Unblocking a user who is not blacklisted says so and exits 1.
        """
        code, out, err = yield self.run_admin("unblock", "bob")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("bob is not blacklisted", err)
