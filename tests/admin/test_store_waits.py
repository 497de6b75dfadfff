# -*- test-case-name: tests.admin.test_store_waits -*-
"""
The operators' requests while the store takes its time: the admin API's
reports, the console's pages and the metrics scrape end the reactor's turn
before the store answers, answer right once it does, and answer a store
that fails with a 503 (the API, the console) or a scrape without the
store's gauges (the metrics), never a traceback, changing nothing.

The store here answers when the test says (L{HeldCalls}), as a store
across the network answers after its round trip; the last tests run the
same reports on the database thread over a real SQLite file.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.test.requesthelper import DummyRequest

from suto_server.admin.api import admin_site
from suto_server.audit.log import AuditLog
from suto_server.console.site import STORE_UNAVAILABLE, Console
from suto_server.metrics import metrics_site
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rotation import Rotation
from suto_server.store.calls import LocalCalls, ThreadedCalls
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import AuditEvent, BlacklistEntry
from suto_server.store.sqlite import SQLiteStore
from tests.support.admin import FakeAuthenticator, answer, render
from tests.support.console_browser import Browser
from tests.support.heldcalls import HeldCalls
from tests.support.masterkey import new_master_key
from tests.support.server import make_server
from tests.support.store_suite.values import enroll_numbered

#: When the tests' events happened.
NOW = 1_700_000_000.0


class _HeldStore:
    """
    A server on the in-memory store whose calls wait for the test:
    alice enrolled and offline, one alert about her.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        enroll_numbered(self.store, "alice")
        self.store.mark_offline(["alice"], NOW - 10)
        self.store.append_audit(
            AuditEvent(NOW - 5, "clone_suspected", "alice", "10.9.0.4", "twice")
        )
        self.calls = HeldCalls(self.store)
        self.server = make_server(self.clock, store=self.store, calls=self.calls)

    def held(self, started, finished):
        """
        C{started()} began an answer that waits on the store: nothing is
        written before L{HeldCalls.answer_all}.  After it, C{finished()} is
        true.
        """
        self.assertFalse(finished())
        self.assertTrue(self.calls.waiting)
        self.calls.answer_all()
        self.assertTrue(finished())

    def assert_warned(self, events, text):
        """
        C{events} are one warning that names C{text}, no traceback.
        """
        [warning] = events
        self.assertEqual(warning["log_level"], LogLevel.warn)
        self.assertIn(text, warning["log_format"])
        self.assertNotIn("log_failure", warning)


class AdminApiTests(_HeldStore, SynchronousTestCase):
    """
    The admin API's reports and actions over a store that answers later.
    """

    def setUp(self):
        super().setUp()
        self.site = admin_site(
            FakeAuthenticator(),
            2020,
            self.server.status,
            list,
            audit=self.server.audit,
            clients=self.server.clients,
            history=self.server.history,
        )

    def get(self, path, args=None):
        """
        Render C{GET path}, check that it waits on the store, release the
        store and return the finished request.
        """
        request = render(self.site, b"GET", path, args=args)
        self.held(lambda: request, lambda: request.finished)
        return request

    def test_reports_wait(self):
        """
        Every report ends the reactor's turn before the store answers, and
        answers what the store holds once it does.
        """
        clients = answer(self.get("/v1/clients"))["clients"]
        self.assertEqual(
            [(row["user"], row["state"]) for row in clients], [("alice", "offline")]
        )
        history = answer(self.get("/v1/history", {b"user": [b"alice"]}))
        self.assertEqual([a["type"] for a in history["alerts"]], ["clone_suspected"])
        status = answer(self.get("/v1/status"))
        self.assertEqual((status["offline"], status["connected"]), (1, 0))
        events = answer(self.get("/v1/audit"))["events"]
        self.assertEqual([e["event"] for e in events], ["clone_suspected"])
        alerts = answer(self.get("/v1/alerts"))["alerts"]
        self.assertEqual([a["type"] for a in alerts], ["clone_suspected"])
        self.assertEqual(
            answer(self.get("/v1/audit/verify")), {"intact": True, "problems": []}
        )

    def test_unknown_after_wait(self):
        """
        A history of a user the store knows nothing of is a 404 once the
        store said so.
        """
        request = self.get("/v1/history", {b"user": [b"carol"]})
        self.assertEqual(request.responseCode, 404)

    def test_store_failed(self):
        """
        When the store fails, each report answers 503 with a JSON error and
        logs one warning naming the request, never a traceback.
        """
        self.calls.fail_every(StoreError("the store is unreachable"))
        for path, args in [
            ("/v1/clients", None),
            ("/v1/history", {b"user": [b"alice"]}),
            ("/v1/status", None),
            ("/v1/audit", None),
            ("/v1/alerts", None),
            ("/v1/audit/verify", None),
        ]:
            with capturedLogs() as events:
                request = self.get(path, args)
            self.assertEqual(request.responseCode, 503, path)
            self.assertEqual(
                answer(request), {"error": "the store is unavailable; try again"}
            )
            self.assert_warned(events, "the store is unavailable")

    def test_hung_up(self):
        """
        A client that hung up while the store read gets nothing written,
        and nothing fails.
        """
        request = render(self.site, b"GET", "/v1/clients")
        request.processingFailed(Failure(ConnectionDone()))
        self.calls.answer_all()
        self.assertEqual(request.written, [])


class UnblockFailureTests(SynchronousTestCase):
    """
    An unblocking whose store fails: 503, the entry stays, no record.
    """

    def test_unblock(self):
        """
        The store's failure while lifting an entry is answered 503 with
        one warning; the entry stays and no record says it was lifted.
        """
        store = MemoryStore()
        enroll_numbered(store, "alice")
        store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "cloned", "10.9.0.4", "clone_suspected")
        )
        audit = AuditLog(store, [])
        calls = LocalCalls(store)
        reconnection = Reconnection(
            calls,
            Rotation(calls, new_master_key(self), None, audit),
            audit,
        )

        def unreachable(user):
            raise StoreError("the store is unreachable")

        self.patch(store, "unblock", unreachable)
        site = admin_site(
            FakeAuthenticator(),
            2020,
            dict,
            list,
            reconnection=reconnection,
            clock=Clock(),
        )
        with capturedLogs() as events:
            request = render(site, b"POST", "/v1/unblock", {"user": "alice"})
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(len(events), 1)
        self.assertIsNotNone(store.blacklist_entry("alice"))
        self.assertEqual(
            [e.event for e in store.audit_events()], []
        )


class ConsoleTests(_HeldStore, SynchronousTestCase):
    """
    The console's reading pages over a store that answers later.
    """

    def setUp(self):
        super().setUp()
        server = self.server
        self.console = Console(
            self.clock,
            status=server.status,
            counts=server.counts,
            rotations=lambda: 0,
            clients=server.clients,
            client=server.client,
            connected=server.live.users,
            history=server.history,
            audit=server.audit,
        )
        self.browser = Browser(self.console.site())
        token = self.console.links.issue("root (console link)")
        self.browser.get(f"/signin?token={token}")

    def page(self, path):
        """
        @return: the answer to C{GET path}, once the store released it.
        """
        exchange = self.browser.start("GET", path)
        self.held(lambda: exchange, exchange.answered)
        return exchange.answer()

    def test_pages_wait(self):
        """
        Each reading page is written once the store answered, with what it
        holds.
        """
        for path, shown in [
            ("/", "clone_suspected"),
            ("/endpoints", "alice"),
            ("/profile?user=alice", "clone_suspected"),
            ("/alerts", "clone_suspected"),
            ("/audit", "clone_suspected"),
            ("/live/panel", "clone_suspected"),
        ]:
            page = self.page(path)
            self.assertEqual(page.code, 200, path)
            self.assertIn(shown, page.text, path)

    def test_store_failed(self):
        """
        When the store fails, each page is a 503 page saying the store is
        unavailable, with one warning and no traceback.
        """
        self.calls.fail_every(StoreError("the store is unreachable"))
        for path in ["/", "/endpoints", "/profile?user=alice", "/audit", "/live"]:
            with capturedLogs() as events:
                page = self.page(path)
            self.assertEqual(page.code, 503, path)
            self.assertIn(STORE_UNAVAILABLE.split(",")[0], page.text)
            self.assertNotIn("Traceback", page.text)
            self.assert_warned(events, "the store is unavailable")


class MetricsTests(_HeldStore, SynchronousTestCase):
    """
    A metrics scrape over a store that answers later.
    """

    def scrape(self):
        request = DummyRequest([b"metrics"])
        site = metrics_site(self.server.metrics, Clock()).wrappedFactory
        resource = site.resource.getChildWithDefault(b"metrics", request)
        resource.render(request)
        self.held(lambda: request, lambda: request.finished)
        return b"".join(request.written).decode()

    def test_counts_wait(self):
        """
        The scrape is written once the store counted: one offline
        endpoint, no blacklisted profile.
        """
        page = self.scrape()
        self.assertIn("suto_endpoints_offline 1.0", page)
        self.assertIn("suto_profiles_blacklisted 0.0", page)

    def test_store_failed(self):
        """
        When the store fails, the scrape goes without the store's three
        gauges, every other series there.
        """
        self.calls.fail_every(StoreError("the store is unreachable"))
        with capturedLogs() as events:
            page = self.scrape()
        self.assertNotIn("suto_endpoints_offline ", page)
        self.assertNotIn("suto_enrollment_windows_open ", page)
        self.assertIn("suto_endpoints_connected 0.0", page)
        self.assert_warned(events, "without the store's counts")


class DatabaseThreadTests(TestCase):
    """
    The reports on the database thread over a real SQLite file: the
    reactor's turn ends before the thread answers, and the answer is the
    file's content.
    """

    timeout = 30

    def setUp(self):
        store = SQLiteStore.open(self.mktemp() + ".db")
        enroll_numbered(store, "alice")
        store.mark_offline(["alice"], NOW - 10)
        store.append_audit(
            AuditEvent(NOW - 5, "clone_suspected", "alice", "10.9.0.4", "twice")
        )
        database = DatabaseThread(reactor, store)
        database.startService()
        self.server = make_server(
            reactor, store=store, database=database, calls=ThreadedCalls(database)
        )
        self.addCleanup(store.close)
        self.addCleanup(database.stopService)

    @inlineCallbacks
    def test_reports(self):
        """
        The clients, history, counts and audit chain come from the
        database thread, after the call returned.
        """
        server = self.server
        for report, check in [
            (server.clients, lambda rows: rows[0]["state"] == "offline"),
            (lambda: server.history("alice"), lambda report: report["alerts"]),
            (server.stored_counts, lambda counts: counts["offline"] == 1),
            (server.audit.verify, lambda problems: problems == []),
        ]:
            d = maybeDeferred(report)
            self.assertFalse(d.called)
            self.assertTrue(check((yield d)))
