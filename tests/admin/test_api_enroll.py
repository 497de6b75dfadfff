"""
The admin API's enrollment resources (C{/v1/enroll}, C{/v1/windows},
C{/v1/cancel}) driven with twisted.web's DummyRequest: validation, status
codes and the shape of the answers.
"""


from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import libxcrypt
from suto_server.locations import LocationError, Locations
from suto_server.rules.enrollment import Enrollment
from suto_server.rules.windows import WindowDesk
from suto_server.store.errors import ProfileExists
from suto_server.store.memory import MemoryStore
from tests.support.admin import AdminRequestsMixin
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ReportingPool

ANSWER = {
    "user": "alice",
    "password": "k7m2p-abcde-fghjk-mnpqr",
    "location": "127.0.0.5/32",
    "deadline": "2023-11-14T22:15:00Z",
    "fingerprints": ["AB:CD"],
}
WINDOWS = [
    {
        "user": "alice",
        "location": "127.0.0.5/32",
        "seconds_left": 70.0,
        "attempts": 1,
        "max_attempts": 5,
        "replace": False,
    }
]


class FakeDesk:
    """
    Records what the resources ask of the window desk; C{error} is raised
    by C{open}, C{pending} is what it returns.
    """

    def __init__(self):
        self.opened = []
        self.cancelled = []
        self.operators = []
        self.error = None
        self.pending = defer.Deferred()
        self.open_windows = {"alice"}

    def open(self, user, location, timeout, password, replace, wide, operator):
        if self.error is not None:
            raise self.error
        self.operators.append(operator)
        self.opened.append((user, location, timeout, password, replace, wide))
        return self.pending

    def list(self):
        return WINDOWS

    def cancel(self, user, operator):
        self.operators.append(operator)
        self.cancelled.append(user)
        return user in self.open_windows


class EnrollmentResourcesTests(AdminRequestsMixin, SynchronousTestCase):
    """
    The resources over a recording desk.
    """

    def setUp(self):
        self.desk = FakeDesk()
        self.site = self.make_site(self.desk)

    def test_opens(self):
        """
        C{POST /v1/enroll} opens a window through the desk and, once it is
        stored, answers 200 with what the desk answered.
        """
        request = self.enroll(
            timeout=300, password="a-long-password", replace=True, wide=True
        )
        self.assertEqual(
            self.desk.opened,
            [("alice", "127.0.0.5", 300, "a-long-password", True, True)],
        )
        self.assertEqual(request.written, [])
        self.desk.pending.callback(ANSWER)
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(self.body(request), ANSWER)

    def test_defaults(self):
        """
        Without them, the timeout is 120 seconds, the password is generated,
        the window does not replace a profile and is not asked for as wide.
        """
        self.enroll()
        self.assertEqual(
            self.desk.opened, [("alice", "127.0.0.5", 120, None, False, False)]
        )

    def test_bounds_accepted(self):
        """
        The limits themselves are accepted: a 24-hour timeout, an 8- and a
        256-character password.
        """
        self.enroll(timeout=86400, password="x" * 8)
        self.enroll(timeout=0.5, password="x" * 256)
        self.assertEqual(
            [
                (timeout, len(password))
                for _, _, timeout, password, _, _ in self.desk.opened
            ],
            [(86400, 8), (0.5, 256)],
        )

    def test_bad_requests(self):
        """
        A bad user, a missing or empty location, a timeout out of range or
        not a number, a short, long or non-text password, and a replace or
        wide that is not a boolean are answered 400 with an explanation, and
        open nothing.
        """
        for fields in (
            {"user": None},
            {"user": "-rf"},
            {"user": "a b"},
            {"user": 7},
            {"user": "DATA_x"},
            {"location": None},
            {"location": ""},
            {"location": ["127.0.0.5"]},
            {"timeout": 0},
            {"timeout": -1},
            {"timeout": 86401},
            {"timeout": True},
            {"timeout": "60"},
            {"password": "short"},
            {"password": "x" * 257},
            {"password": 12345678},
            {"replace": "yes"},
            {"replace": 1},
            {"wide": "yes"},
            {"wide": 0},
        ):
            body = {"user": "alice", "location": "127.0.0.5"}
            body.update(fields)
            body = {key: value for key, value in body.items() if value is not None}
            request = self.request("POST", "/v1/enroll", body)
            self.assertEqual(request.responseCode, 400, fields)
            self.assertIn("error", self.body(request))
        for raw in (b"{", b"[]", b'"alice"'):
            request = self.request("POST", "/v1/enroll", raw=raw)
            self.assertEqual(request.responseCode, 400, raw)
        self.assertEqual(self.desk.opened, [])

    def test_nested_too_deeply(self):
        """
        A body within the size limit that nests deeper than the JSON
        decoder recurses is a 400 like any other body that is not JSON.
        """
        request = self.request("POST", "/v1/enroll", raw=b"[" * 10000)
        self.assertEqual(request.responseCode, 400)
        self.assertEqual(self.body(request), {"error": "request body is not JSON"})
        self.assertEqual(self.desk.opened, [])

    def test_unknown_location(self):
        """
        A location the desk cannot resolve is a 400 that says so.
        """
        self.desk.error = LocationError("'kitchen' is neither a known location")
        request = self.enroll(location="kitchen")
        self.assertEqual(request.responseCode, 400)
        self.assertEqual(
            self.body(request), {"error": "'kitchen' is neither a known location"}
        )

    def test_profile_exists(self):
        """
        An enrolled user without C{replace} is a 409.
        """
        self.desk.error = ProfileExists("alice is already enrolled")
        request = self.enroll()
        self.assertEqual(request.responseCode, 409)
        self.assertEqual(self.body(request), {"error": "alice is already enrolled"})

    def test_failure(self):
        """
        A window that could not be stored is a 500 that reveals nothing,
        and the failure is logged.
        """
        request = self.enroll()
        self.desk.pending.errback(RuntimeError("disk on fire"))
        self.assertEqual(request.responseCode, 500)
        self.assertEqual(self.body(request), {"error": "internal error"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_client_gone(self):
        """
        If the admin client hangs up first, the late answer writes nothing.
        """
        request = self.enroll()
        request.finish()
        written = list(request.written)
        self.desk.pending.callback(ANSWER)
        self.assertEqual(request.written, written)

    def test_windows(self):
        """
        C{GET /v1/windows} lists the desk's windows.
        """
        request = self.request("GET", "/v1/windows")
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(self.body(request), {"windows": WINDOWS})

    def test_cancel(self):
        """
        C{POST /v1/cancel} closes the user's window: 200 when there was
        one, 404 when there was none.
        """
        request = self.request("POST", "/v1/cancel", {"user": "alice"})
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(self.body(request), {"user": "alice", "cancelled": True})
        request = self.request("POST", "/v1/cancel", {"user": "bob"})
        self.assertEqual(request.responseCode, 404)
        self.assertEqual(self.body(request), {"error": "no open window for bob"})
        self.assertEqual(self.desk.cancelled, ["alice", "bob"])

    def test_operator(self):
        """
        The desk is told that the admin socket asked, for the audit
        records of the window's opening and cancelling.
        """
        self.enroll()
        self.request("POST", "/v1/cancel", {"user": "alice"})
        self.assertEqual(self.desk.operators, ["the admin socket"] * 2)

    def test_cancel_bad_request(self):
        """
        C{POST /v1/cancel} without a valid user is a 400 and cancels
        nothing.
        """
        for body in ({}, {"user": "-rf"}, {"user": 3}):
            request = self.request("POST", "/v1/cancel", body)
            self.assertEqual(request.responseCode, 400, body)
        request = self.request("POST", "/v1/cancel", raw=b"{")
        self.assertEqual(request.responseCode, 400)
        self.assertEqual(self.desk.cancelled, [])

    def test_without_desk(self):
        """
        A server that does not enroll has no enrollment resources.
        """
        site = self.make_site(None)
        for method, path in (
            ("POST", "/v1/enroll"),
            ("GET", "/v1/windows"),
            ("POST", "/v1/cancel"),
        ):
            request = self.request(method, path, {"user": "alice"}, site=site)
            self.assertEqual(request.responseCode, 404, path)


class EnrollResourceWithRulesTests(AdminRequestsMixin, SynchronousTestCase):
    """
    C{POST /v1/enroll} over the real desk and enrollment rules.
    """

    def setUp(self):
        self.store = MemoryStore()
        enrollment = Enrollment(self.store, new_master_key(self), ReportingPool())
        desk = WindowDesk(
            enrollment, Locations(), task.Clock(), RecordingHello(), 2020, list
        )
        self.site = self.make_site(desk)

    def test_opens(self):
        """
        A valid request opens the window and answers with its password.
        """
        request = self.enroll(password="a-long-password")
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(self.body(request)["password"], "a-long-password")
        self.assertIsNotNone(self.store.get_window("alice"))

    def test_too_wide(self):
        """
        A location wider than a window may be is a 400 that says how to
        ask for it; asked for with C{wide}, the window opens.
        """
        request = self.enroll(location="127.0.0.0/8")
        self.assertEqual(request.responseCode, 400)
        self.assertIn("--wide", self.body(request)["error"])
        self.assertIsNone(self.store.get_window("alice"))
        request = self.enroll(location="127.0.0.0/8", wide=True)
        self.assertEqual(request.responseCode, 200)
        self.assertEqual(self.store.get_window("alice").networks, ("127.0.0.0/8",))

    def test_password_with_nul(self):
        """
        A password no crypt(3) can hash (it holds a NUL) is a bad request,
        refused before any work, not an internal error.
        """
        request = self.enroll(password="abc\x00defgh")
        # A hash that fails is logged; clear that, so the status decides.
        self.flushLoggedErrors(libxcrypt.CryptError)
        self.assertEqual(request.responseCode, 400)
        self.assertIsNone(self.store.get_window("alice"))

