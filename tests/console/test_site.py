# -*- test-case-name: tests.console.test_site -*-
"""
The console's site over real HTTP in memory: sign-in, sessions, the
guard's headers and checks, each page, and the actions, which reach the
same operations as the admin API with the signed-in operator.
"""

from __future__ import annotations

import re

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import ALLOWANCE
from suto_server.console.guard import MAX_FORM
from suto_server.console.site import IDLE_TIMEOUT, Console
from suto_server.store.memory import MemoryStore
from suto_server.store.records import AuditEvent
from tests.support.console_browser import Browser

OPENED = {
    "user": "alice",
    "password": "one-time-pw-1234",
    "location": "127.0.0.5/32",
    "deadline": "2026-01-01T00:10:00Z",
    "fingerprints": ["AB:CD"],
    "warnings": [],
}


class RecordingDesk:
    """
    A window desk recording what it is asked, with the operator.
    """

    def __init__(self):
        self.calls = []
        self.open_windows = []

    def open(self, user, location, timeout, password, replace, wide, operator):
        self.calls.append(("open", user, location, timeout, replace, wide, operator))
        self.open_windows.append(
            {
                "user": user,
                "location": location,
                "seconds_left": timeout,
                "attempts": 0,
                "max_attempts": 3,
                "replace": replace,
            }
        )
        return defer.succeed(dict(OPENED, user=user))

    def list(self):
        return list(self.open_windows)

    def cancel(self, user, operator):
        self.calls.append(("cancel", user, operator))
        return any(w["user"] == user for w in self.open_windows)


class RecordingBlacklist:
    """
    The blacklist's rules as the console uses them, recording unblocks.
    """

    def __init__(self):
        self.entries = {
            "mallory": {
                "user": "mallory",
                "time": "2026-01-01T00:00:00Z",
                "reason": "copied",
                "source": "10.0.0.9",
                "alert": "clone_suspected",
            }
        }
        self.unblocked = []

    def blacklist_report(self):
        return list(self.entries.values())

    def unblock(self, user, now, operator):
        self.unblocked.append((user, now, operator))
        return self.entries.pop(user, None) is not None


def client_row(user, state="connected", key_age=10.0):
    return {
        "user": user,
        "address": "127.0.0.9",
        "location": None,
        "state": state,
        "offline_since": None,
        "last_seen": "2026-01-01T00:00:00Z",
        "last_rotation": None,
        "key_id": "k1",
        "generation": 3,
        "key_age": key_age,
    }


class ConsoleSiteTests(SynchronousTestCase):
    """
    The site with recording desk and blacklist, a real audit log on the
    in-memory store, and a clock.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.store = MemoryStore()
        self.audit = AuditLog(self.store, [], clock=self.clock)
        self.desk = RecordingDesk()
        self.blacklist = RecordingBlacklist()
        self.console = Console(
            self.clock,
            status=lambda: succeed(
                {
                    "listeners": [{"name": "console", "address": "127.0.0.1:1"}],
                    "certificates": [
                        {
                            "subject": "CN=suto.example",
                            "fingerprint": "AA:BB",
                            "not_after": "2030-01-04T00:00:00+00:00",
                            "warning": None,
                        }
                    ],
                    "crls": [
                        {
                            "listener": "verification API",
                            "issuer": "CN=Hosts CA",
                            "next_update": "2030-01-02T12:00:00+00:00",
                            "warning": "crl_expiring",
                        }
                    ],
                    "connected": 1,
                    "offline": 0,
                    "blacklisted": 1,
                    "enrollment_windows": 0,
                }
            ),
            counts=self.counts,
            rotations=lambda: 0,
            clients=lambda: succeed(
                [client_row(f"user{i:03}", key_age=i) for i in range(120)]
            ),
            client=lambda user: succeed(
                client_row(user) if user.startswith("user") else None
            ),
            connected=lambda: ["user001"],
            history=lambda user: succeed({"user": user, "moves": [], "alerts": []}),
            audit=self.audit,
            desk=self.desk,
            reconnection=self.blacklist,
        )
        self.browser = Browser(self.console.site())

    def counts(self):
        """
        The store's counts, as the daemon's C{counts} answers them;
        L{counted} says how many times they were read.
        """
        self.counted += 1
        return succeed({"connected": 1, "offline": 0, "blacklisted": 1, "windows": 0})

    counted = 0

    def sign_in(self, browser=None):
        browser = browser or self.browser
        token = self.console.links.issue("root (console link)")
        return browser.get(f"/signin?token={token}")

    def test_headers(self):
        """
        Every answer, even a refusal, carries the strict policy, no
        sniffing, no referrer and no caching.
        """
        answer = self.browser.get("/")
        self.assertEqual(answer.code, 401)
        self.assertEqual(
            answer.header(b"content-security-policy"),
            b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
            b"base-uri 'none'",
        )
        self.assertEqual(answer.header(b"x-content-type-options"), b"nosniff")
        self.assertEqual(answer.header(b"referrer-policy"), b"no-referrer")
        self.assertEqual(answer.header(b"cache-control"), b"no-store")
        self.assertIn("suto-admin", answer.text)

    def test_sign_in(self):
        """
        A login link starts a session (an HttpOnly, SameSite=Strict
        cookie without Secure on plain HTTP) and sends the browser to the
        overview; the link works once.
        """
        token = self.console.links.issue("root (console link)")
        answer = self.browser.get(f"/signin?token={token}")
        self.assertEqual(answer.code, 303)
        self.assertEqual(answer.header(b"location"), b"/")
        cookie = answer.header(b"set-cookie")
        self.assertIn(b"HttpOnly", cookie)
        self.assertIn(b"SameSite=Strict", cookie)
        self.assertNotIn(b"Secure", cookie)
        page = self.browser.get("/")
        self.assertEqual(page.code, 200)
        self.assertIn("root (console link)", page.text)
        self.assertEqual(
            Browser(self.console.site()).get(f"/signin?token={token}").code, 403
        )

    def test_sign_in_again(self):
        """
        Signing in again ends the session the browser held: the new
        session's id replaces the old, which names nothing any more.
        """
        self.sign_in()
        old = self.browser.cookie
        self.sign_in()
        self.assertNotEqual(self.browser.cookie, old)
        self.assertEqual(self.browser.get("/").code, 200)
        self.browser.cookie = old
        self.assertEqual(self.browser.get("/").code, 401)
        self.assertEqual(len(self.console.sessions), 1)

    def test_refused_links_audited(self):
        """
        A login link refused (unknown, used, or not on loopback) is
        audited with the browser's address, never the token offered; a
        browser trying link after link writes at most the refusal
        allowance of records a minute, and one saying the rest went
        unrecorded.
        """
        self.browser.get("/signin?token=guess")
        Browser(self.console.site(), peer="192.0.2.7").get("/signin?token=guess")
        events = [(e.event, e.reason) for e in self.store.audit_events()]
        self.assertEqual(
            [event for event, _ in events], ["console_sign_in_refused"] * 2
        )
        self.assertIn("from 127.0.0.1", events[0][1])
        self.assertIn("from 192.0.2.7", events[1][1])
        self.assertNotIn("guess", repr(events))
        for _ in range(ALLOWANCE * 2):
            self.browser.get("/signin?token=guess")
        events = [e.event for e in self.store.audit_events()]
        self.assertEqual(
            events,
            ["console_sign_in_refused"] * (ALLOWANCE + 1)
            + ["console_refusals_suppressed"],
        )

    def test_link_not_from_loopback(self):
        """
        A login link is refused from a peer that is not on loopback, and
        is not consumed by the attempt.
        """
        token = self.console.links.issue("root")
        remote = Browser(self.console.site(), peer="192.0.2.7")
        self.assertEqual(remote.get(f"/signin?token={token}").code, 403)
        self.assertEqual(self.browser.get(f"/signin?token={token}").code, 303)

    def test_session_expires(self):
        """
        A session unused for the idle time is gone.
        """
        self.sign_in()
        self.clock.advance(15 * 60)
        self.assertEqual(self.browser.get("/").code, 401)

    def test_pages(self):
        """
        Every page answers 200 once signed in, with the main landmark and
        navigation, no inline script or style, and a label for every
        visible input.
        """
        self.sign_in()
        for path in (
            "/",
            "/endpoints",
            "/profile?user=user001",
            "/windows",
            "/blacklist",
            "/blacklist/unblock?user=mallory",
            "/alerts",
            "/audit",
            "/live",
        ):
            answer = self.browser.get(path)
            self.assertEqual(answer.code, 200, path)
            self.assertIn('<main id="main"', answer.text)
            self.assertIn('<nav aria-label="Console pages">', answer.text)
            self.assertNotIn("style=", answer.text)
            self.assertEqual(re.findall(r"<script>", answer.text), [])
            self.assertEqual(re.findall(r"<style", answer.text), [])
            inputs = re.findall(
                r'<input (?![^>]*type="hidden")[^>]*id="([^"]+)"', answer.text
            )
            unlabelled = re.findall(
                r'<input (?![^>]*type="hidden")(?![^>]*id=)', answer.text
            )
            self.assertEqual(unlabelled, [], path)
            for field in inputs:
                self.assertRegex(
                    answer.text,
                    r"<label[^>]*>[^<]*(<[^/][^>]*>[^<]*)*<input[^>]*id=\"" + field,
                )

    def test_overview_reads_counts_once(self):
        """
        The overview shows the counts of the status it reads, and reads
        the store's counts no second time; it counts the alerts of the
        last hour and lists the newest 20 of them.
        """
        self.sign_in()
        hour_ago = self.clock.seconds() - 3600
        self.store.append_audit(
            AuditEvent(hour_ago - 1, "blacklisted", "old", None, "too old")
        )
        for n in range(30):
            self.store.append_audit(
                AuditEvent(hour_ago + n, "blacklisted", f"u{n:02}", None, "by IT")
            )
        self.store.append_audit(AuditEvent(hour_ago + 40, "enrolled", "x", None, "key"))
        page = self.browser.get("/")
        self.assertEqual(self.counted, 0)
        self.assertIn("<strong>30</strong>alerts in the last hour", page.text)
        self.assertIn("<strong>1</strong>blacklisted", page.text)
        self.assertIn("u29", page.text)
        self.assertIn("u10", page.text)
        self.assertNotIn("u09", page.text)

    def test_overview_expiry(self):
        """
        The overview shows the served certificates and the loaded CRLs,
        when each runs out and the warning raised of it.
        """
        self.sign_in()
        page = self.browser.get("/").text
        self.assertIn("<td>2030-01-04T00:00:00+00:00</td><td></td>", page)
        self.assertIn(
            "<td>verification API</td><td>CN=Hosts CA</td>"
            "<td>2030-01-02T12:00:00+00:00</td><td>crl_expiring</td>",
            page,
        )

    def test_alerts_paginated(self):
        """
        The alerts page lists 100 a page, newest first, of the alerts the
        filters select (by the store: other records take no room), with
        their count and links to the other pages.
        """
        self.sign_in()
        for n in range(150):
            user = "bob" if n % 2 else "carol"
            self.store.append_audit(
                AuditEvent(1_700_000_000 + n, "blacklisted", user, None, f"#{n:03}")
            )
            self.store.append_audit(
                AuditEvent(1_700_000_000 + n, "enrolled", user, None, "enrolled")
            )
        page = self.browser.get("/alerts")
        self.assertIn("150 alert(s), newest first", page.text)
        self.assertIn("Page 1 of 2", page.text)
        self.assertIn("#149", page.text)
        self.assertIn("#050", page.text)
        self.assertNotIn("#049", page.text)
        page = self.browser.get("/alerts?page=2")
        self.assertIn("Page 2 of 2", page.text)
        self.assertIn("#049", page.text)
        self.assertNotIn("#050", page.text)
        page = self.browser.get("/alerts?user=bob&type=blacklisted")
        self.assertIn("75 alert(s), newest first", page.text)
        self.assertNotIn("#148", page.text)
        page = self.browser.get("/alerts?type=enrolled")
        self.assertIn("0 alert(s), newest first", page.text)

    def test_endpoints_paginated(self):
        """
        The endpoints listing shows 50 rows a page, sorted and searched
        as asked.
        """
        self.sign_in()
        answer = self.browser.get("/endpoints?sort=key_age&order=desc&page=2")
        self.assertIn("Page 2 of 3", answer.text)
        self.assertIn("user069", answer.text)
        self.assertNotIn("user070<", answer.text)
        answer = self.browser.get("/endpoints?q=user11")
        self.assertIn("10 endpoint(s)", answer.text)

    def test_bad_input(self):
        """
        Bad arguments are a 400 page naming the problem, never a
        traceback.
        """
        self.sign_in()
        for path in (
            "/endpoints?sort=secret",
            "/endpoints?page=-1",
            "/profile?user=..%2F",
            "/audit?since=yesterday",
            "/endpoints?q=%ff",
            # Times the audit log cannot hold: before 1970.
            "/audit?since=1969-12-31T23:59",
            "/alerts?since=0001-01-01T00:00%2B23:59",
            # Digits to str.isdigit that int() does not read ("²").
            "/endpoints?page=%C2%B2",
            "/audit?page=%C2%B2",
        ):
            answer = self.browser.get(path)
            self.assertEqual(answer.code, 400, path)
            self.assertNotIn("Traceback", answer.text)
            # Signed in, the error page keeps the navigation.
            self.assertIn('<nav aria-label="Console pages">', answer.text)

    def test_open_window(self):
        """
        Opening a window asks the desk for it in the operator's name and
        shows the one-time password on that answer only.
        """
        self.sign_in()
        csrf = self.browser.get("/windows").csrf()
        answer = self.browser.post(
            "/windows/open",
            {
                "csrf": csrf,
                "user": "alice",
                "location": "127.0.0.5",
                "timeout": "300",
                "replace": "yes",
            },
        )
        self.assertEqual(answer.code, 200)
        self.assertIn("one-time-pw-1234", answer.text)
        self.assertEqual(
            self.desk.calls,
            [("open", "alice", "127.0.0.5", 300, True, False, "root (console link)")],
        )
        self.assertNotIn("one-time-pw-1234", self.browser.get("/windows").text)

    def test_window_timeout_digits(self):
        """
        A timeout of digits that are not ASCII is a 400 page, not an
        internal error, and opens nothing.
        """
        self.sign_in()
        csrf = self.browser.get("/windows").csrf()
        for timeout in ("\u00b2", "\u0663", "1e3"):
            answer = self.browser.post(
                "/windows/open",
                {"csrf": csrf, "user": "alice", "location": "127.0.0.5", "timeout": timeout},
            )
            self.assertEqual(answer.code, 400, timeout)
        self.assertEqual(self.desk.calls, [])

    def test_csrf(self):
        """
        A POST without the session's CSRF token is refused and does
        nothing.
        """
        self.sign_in()
        for token in (None, "forged"):
            fields = {"user": "alice", "location": "127.0.0.5"}
            if token:
                fields["csrf"] = token
            self.assertEqual(self.browser.post("/windows/open", fields).code, 403)
        self.assertEqual(self.desk.calls, [])

    def test_cancel(self):
        """
        Cancelling goes to the desk with the operator; cancelling a
        window that is not open is a 404 page.
        """
        self.sign_in()
        self.desk.open_windows.append({"user": "bob"})
        csrf = self.browser.get("/").csrf()
        self.assertEqual(
            self.browser.post("/windows/cancel", {"csrf": csrf, "user": "bob"}).code,
            303,
        )
        self.assertEqual(
            self.browser.post("/windows/cancel", {"csrf": csrf, "user": "carol"}).code,
            404,
        )
        self.assertEqual(
            self.desk.calls,
            [
                ("cancel", "bob", "root (console link)"),
                ("cancel", "carol", "root (console link)"),
            ],
        )

    def test_unblock(self):
        """
        Unblocking asks for confirmation first, then lifts the entry in
        the operator's name.
        """
        self.sign_in()
        confirm = self.browser.get("/blacklist/unblock?user=mallory")
        self.assertIn("removes its profile", confirm.text)
        self.assertEqual(self.blacklist.unblocked, [])
        answer = self.browser.post(
            "/blacklist/unblock", {"csrf": confirm.csrf(), "user": "mallory"}
        )
        self.assertEqual(answer.code, 200)
        self.assertIn("Lifted the blacklist entry of mallory", answer.text)
        self.assertEqual(
            self.blacklist.unblocked,
            [("mallory", self.clock.seconds(), "root (console link)")],
        )

    def test_verify(self):
        """
        The verify button checks the audit log's chain and says so.
        """
        self.audit.record(
            self.clock.seconds(), "enrolled", "alice", "127.0.0.5", "key id k1"
        )
        self.sign_in()
        csrf = self.browser.get("/audit").csrf()
        answer = self.browser.post("/audit/verify", {"csrf": csrf})
        self.assertIn("hash chain is intact", answer.text)
        self.assertIn("key id k1", answer.text)

    def test_audit_filters(self):
        """
        The audit log is filtered by type, user and time.
        """
        now = self.clock.seconds()
        self.audit.record(now - 7200, "enrolled", "alice", None, "early")
        self.audit.record(now, "enrolled", "bob", None, "late-bob")
        self.audit.record(now, "unblocked", "alice", None, "late-alice")
        self.sign_in()
        text = self.browser.get("/audit?type=enrolled&user=bob").text
        self.assertIn("late-bob", text)
        self.assertNotIn("late-alice", text)
        self.assertNotIn("early", text)

    def test_audit_pages(self):
        """
        The audit log is shown 100 records a page, newest first, the page
        read from the store by itself.
        """
        now = self.clock.seconds()
        for number in range(250):
            self.audit.record(
                now - 1000 + number, "enrolled", "alice", None, f"record {number}."
            )
        self.sign_in()
        # The sign-in is the 251st record, the newest.
        first = self.browser.get("/audit").text
        self.assertIn("251 record(s)", first)
        self.assertIn("Page 1 of 3", first)
        self.assertIn("record 249.", first)
        self.assertNotIn("record 150.", first)
        last = self.browser.get("/audit?page=3").text
        self.assertIn("record 0.", last)
        self.assertNotIn("record 51.", last)
        since = self.browser.get("/audit?since=2027-01-15T08:01").text
        self.assertIn("0 record(s)", since)

    def test_too_large(self):
        """
        A body over the bound is answered 413 and not acted on.
        """
        self.sign_in()
        body = b"user=alice&location=" + b"x" * MAX_FORM
        answer = self.browser.request("POST", "/windows/open", raw_body=body)
        self.assertEqual(answer.code, 413)
        self.assertEqual(self.desk.calls, [])

    def test_live_panel(self):
        """
        The live view's panel is a fragment, with the latest records.
        """
        self.audit.record(self.clock.seconds(), "enrolled", "alice", None, "fresh one")
        self.sign_in()
        answer = self.browser.get("/live/panel")
        self.assertEqual(answer.code, 200)
        self.assertNotIn("<html", answer.text)
        self.assertIn("fresh one", answer.text)
        self.assertIn('<p id="connected">user001</p>', answer.text)

    def test_static(self):
        """
        The vendored htmx and the style sheet are served with their types.
        """
        answer = self.browser.get("/static/htmx.min.js")
        self.assertEqual(answer.code, 200)
        self.assertEqual(
            answer.header(b"content-type"), b"text/javascript; charset=utf-8"
        )
        self.assertEqual(self.browser.get("/static/secret.txt").code, 404)

    def test_sign_out(self):
        """
        Signing out ends the session.
        """
        self.sign_in()
        csrf = self.browser.get("/").csrf()
        self.assertEqual(self.browser.post("/signout", {"csrf": csrf}).code, 200)
        self.assertEqual(self.browser.get("/").code, 401)

    def test_sign_in_audited(self):
        """
        Signing in and signing out are each audited once, naming the
        operator and the browser's address, never the token; a request
        without a session, which anyone may send, writes no record.
        """
        self.browser.get("/")
        token = self.console.links.issue("root (console link)")
        self.browser.get(f"/signin?token={token}")
        csrf = self.browser.get("/").csrf()
        self.browser.post("/signout", {"csrf": csrf})
        events = [(e.event, e.reason) for e in self.store.audit_events()]
        self.assertEqual(
            events,
            [
                ("console_signed_in", "root (console link) from 127.0.0.1"),
                ("console_signed_out", "root (console link) from 127.0.0.1"),
            ],
        )
        self.assertNotIn(token, repr(events))

    def test_markup_escaped(self):
        """
        What peers and operators chose (audit reasons and sources, the
        blacklist's reasons and sources, the operator's name) is shown as
        text on every page, never as markup.
        """
        markup = '<script src="/x"></script><img src=x onerror=alert(1)>'
        self.audit.record(self.clock.seconds(), "enrolled", "alice", markup, markup)
        self.blacklist.entries["mallory"].update(reason=markup, source=markup)
        token = self.console.links.issue(markup)
        self.browser.get(f"/signin?token={token}")
        for path in ("/", "/audit", "/blacklist", "/live", "/live/panel", "/alerts"):
            answer = self.browser.get(path)
            self.assertEqual(answer.code, 200, path)
            self.assertNotIn("<script src=\"/x\">", answer.text, path)
            self.assertNotIn("<img", answer.text, path)
        self.assertIn("&lt;script", self.browser.get("/audit").text)

    def test_certificate_sign_in(self):
        """
        With a certificate sign-in, a request it recognises starts a
        session at once, and the actions name its subject.
        """

        class SignIn:
            def operator_of(self, request):
                return "CN=it-alice (client certificate)"

        console = Console(
            self.clock,
            status=lambda: {"listeners": [], "certificates": []},
            counts=lambda: {
                "connected": 0,
                "offline": 0,
                "blacklisted": 0,
                "windows": 0,
            },
            rotations=lambda: 0,
            clients=lambda: [],
            client=lambda user: None,
            connected=lambda: [],
            history=lambda user: None,
            audit=self.audit,
            desk=self.desk,
            certificates=SignIn(),
        )
        browser = Browser(console.site(), peer="192.0.2.7")
        page = browser.get("/windows")
        self.assertEqual(page.code, 200)
        self.assertIsNotNone(browser.cookie)
        browser.post("/windows/cancel", {"csrf": page.csrf(), "user": "bob"})
        self.assertEqual(
            self.desk.calls, [("cancel", "bob", "CN=it-alice (client certificate)")]
        )

    def test_method(self):
        """
        A page asked with a method it does not take is a 405.
        """
        self.sign_in()
        self.assertEqual(self.browser.post("/endpoints", {}).code, 405)


class ConsoleConnectionTests(SynchronousTestCase):
    """
    What a connection to the console may hold: the site's own bounds,
    timed by the console's clock.
    """

    def console(self, clock):
        return Console(
            clock,
            status=dict,
            counts=dict,
            rotations=lambda: 0,
            clients=list,
            client=lambda user: None,
            connected=list,
            history=lambda user: None,
            audit=AuditLog(MemoryStore(), [], clock=clock),
        )

    def test_idle_connection_closed(self):
        """
        A client that opens a connection and sends a request line a byte
        at a time, slower than the idle time, is cut off by the
        console's clock: an idle connection holds nothing for long.
        """
        clock = Clock()
        # A request deadline past the idle time, so that only the idle
        # timeout can close it.
        site = self.console(clock).site(deadline=IDLE_TIMEOUT * 2)
        protocol = site.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=IPv4Address("TCP", "192.0.2.7", 40000),
        )
        protocol.makeConnection(transport)
        protocol.dataReceived(b"G")
        clock.advance(IDLE_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnecting)
