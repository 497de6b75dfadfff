"""
The Prometheus metrics: what each central place counts, the scrape-time
gauges, a real scrape of C{/metrics} over loopback parsed with the
Prometheus text parser, and C{suto-admin status} built on the same counts.
"""

import io
import json
import os

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor, task, threads
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from suto_server.admin import cli as admin
from suto_server.audit.alerts import ALERT_TYPES
from suto_server.audit.log import AuditLog
from suto_server.core.version import VERSION, build_info
from suto_server.cred.hashpool import HashPool, HashPoolBusy
from suto_server.metrics import (
    METRICS_CONNECTIONS,
    METRICS_PER_SOURCE,
    REJECTION_REASONS,
    ServerMetrics,
    metrics_site,
)
from suto_server.rules.rendezvous import Rendezvous, Verdict
from suto_server.settings import Listeners
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import AuditEvent
from suto_server.store.sqlite import SQLiteStore
from tests.support.coroutines import result_of
from tests.support.folders import socket_folder
from tests.support.http_connections import assert_closed_at_deadline, connect
from tests.support.server import make_server
from tests.support.store_suite.values import enroll_numbered

#: The gauges of the counts the store keeps, in the order of their names
#: in L{StateCollector.STORED}: offline, blacklisted, windows.
STORED_GAUGES = (
    "suto_endpoints_offline",
    "suto_profiles_blacklisted",
    "suto_enrollment_windows_open",
)


def _sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def _event(event, user="alice", source="192.0.2.7"):
    return AuditEvent(0.0, event, user, source, "secret-free reason", ())


class ServerMetricsTests(SynchronousTestCase):
    def setUp(self):
        self.metrics = ServerMetrics()

    def test_every_label_starts_at_zero(self):
        """
        Every result, reason and alert type exists as a series at 0 before
        anything has happened.
        """
        for verdict in Verdict:
            self.assertEqual(
                _sample(self.metrics, "suto_authentications_total", result=verdict.value), 0
            )
        for alert_type in ALERT_TYPES:
            self.assertEqual(_sample(self.metrics, "suto_alerts_total", type=alert_type), 0)
        for reason in REJECTION_REASONS:
            self.assertEqual(
                _sample(self.metrics, "suto_connections_rejected_total", reason=reason), 0
            )

    def test_audit_events(self):
        """
        The audit observer counts enrollments by result, failed rotations
        and alerts by type; other events count nowhere.
        """
        for event in [
            "enrolled",
            "enrollment_failed",
            "enrollment_failed",
            "enrollment_abandoned",
            "rotation_failed",
            "clone_suspected",
            "enrollment_window_opened",
        ]:
            self.metrics.audited(_event(event))
        m = self.metrics
        self.assertEqual(_sample(m, "suto_enrollments_total", result="enrolled"), 1)
        self.assertEqual(_sample(m, "suto_enrollments_total", result="failed"), 2)
        self.assertEqual(_sample(m, "suto_enrollments_total", result="abandoned"), 1)
        self.assertEqual(_sample(m, "suto_rotations_total", result="failed"), 1)
        self.assertEqual(_sample(m, "suto_alerts_total", type="enrollment_failed"), 2)
        self.assertEqual(_sample(m, "suto_alerts_total", type="clone_suspected"), 1)

    def test_reconnections(self):
        """
        Reconnections with the offline key count by result: accepted,
        failed, refused for a blacklisted profile.
        """
        for event in ["reconnected", "reconnected", "reconnect_failed", "blacklisted_refused"]:
            self.metrics.audited(_event(event))
        m = self.metrics
        self.assertEqual(
            [
                _sample(m, "suto_reconnections_total", result=result)
                for result in ("reconnected", "failed", "blacklisted")
            ],
            [2, 1, 1],
        )
        self.assertEqual(_sample(m, "suto_alerts_total", type="reconnect_failed"), 1)

    def test_no_names_nor_addresses_in_labels(self):
        """
        The user names and addresses of events never appear in the
        exposition: labels carry only bounded values.
        """
        self.metrics.audited(_event("enrollment_failed", "mallory", "198.51.100.23"))
        text = generate_latest(self.metrics.registry).decode()
        self.assertNotIn("mallory", text)
        self.assertNotIn("198.51.100.23", text)

    def test_rendezvous_verdicts(self):
        """
        Every finished classic request is counted by its verdict, through
        the rendezvous observer.
        """
        rendezvous = Rendezvous(task.Clock(), observers=[self.metrics.authenticated])
        rendezvous.finish(rendezvous.open("alice", ["192.0.2.1"]), Verdict.REJECTED)
        rendezvous.finish(rendezvous.open("bob", ["192.0.2.2"]), Verdict.ACCEPTED)
        request = rendezvous.open("carol", ["192.0.2.3"])
        rendezvous.finish(request, Verdict.ACCEPTED)
        rendezvous.finish(request, Verdict.ERROR)
        m = self.metrics
        self.assertEqual(_sample(m, "suto_authentications_total", result="rejected"), 1)
        self.assertEqual(_sample(m, "suto_authentications_total", result="accepted"), 2)
        self.assertEqual(_sample(m, "suto_authentications_total", result="error"), 0)

    def test_rotated(self):
        """
        A completed rotation counts as done and its latency goes into the
        histogram.
        """
        self.metrics.rotated(0.03)
        m = self.metrics
        self.assertEqual(_sample(m, "suto_rotations_total", result="done"), 1)
        self.assertEqual(_sample(m, "suto_rotation_duration_seconds_count"), 1)
        self.assertEqual(
            _sample(m, "suto_rotation_duration_seconds_bucket", le="0.05"), 1
        )
        self.assertEqual(
            _sample(m, "suto_rotation_duration_seconds_bucket", le="0.025"), 0
        )

    def test_timed_commit(self):
        """
        A timed batch function returns what the batch returned and records
        how long it took, a failing one too.
        """
        times = iter([10.0, 10.004, 20.0, 20.5])
        metrics = ServerMetrics(timer=lambda: next(times))
        self.assertEqual(metrics.timed_commit(lambda items: [True] * len(items))([1, 2]), [True, True])

        def broken(items):
            raise OSError("disk full")

        self.assertRaises(OSError, metrics.timed_commit(broken), [1])
        self.assertEqual(_sample(metrics, "suto_store_commit_duration_seconds_count"), 2)
        self.assertAlmostEqual(
            _sample(metrics, "suto_store_commit_duration_seconds_sum"), 0.504
        )

    def test_state_read_at_scrape(self):
        """
        The state gauges are read from their callables at each scrape; one
        with no callable reads 0.
        """
        count = [3]
        self.metrics.state.connected = lambda: count[0]
        self.assertEqual(_sample(self.metrics, "suto_endpoints_connected"), 3)
        count[0] = 5
        self.assertEqual(_sample(self.metrics, "suto_endpoints_connected"), 5)
        self.assertEqual(_sample(self.metrics, "suto_connections_starting"), 0)

    def test_stored_counts(self):
        """
        The store's counts are those the last L{StateCollector.read_stored}
        read; with nothing to read them from, each is 0.
        """
        self.successResultOf(self.metrics.state.read_stored())
        for name in STORED_GAUGES:
            self.assertEqual(_sample(self.metrics, name), 0)
        counts = {"offline": 4, "blacklisted": 2, "windows": 1}
        self.metrics.state.stored = lambda: succeed(counts)
        self.successResultOf(self.metrics.state.read_stored())
        self.assertEqual(
            [_sample(self.metrics, name) for name in STORED_GAUGES], [4, 2, 1]
        )

    def test_stored_counts_failed(self):
        """
        When the store cannot count, the next scrape goes without those
        three gauges (every other series is there), with one warning
        rather than a traceback; another error is not hidden.
        """
        self.metrics.state.stored = lambda: fail(StoreError("the store is away"))
        with capturedLogs() as events:
            self.successResultOf(self.metrics.state.read_stored())
        for name in STORED_GAUGES:
            self.assertIsNone(_sample(self.metrics, name))
        self.assertEqual(_sample(self.metrics, "suto_endpoints_connected"), 0)
        [warning] = events
        self.assertEqual(warning["log_level"], LogLevel.warn)
        self.assertIn("the store is away", formatEvent(warning))
        self.metrics.state.stored = lambda: fail(RuntimeError("a bug"))
        self.failureResultOf(self.metrics.state.read_stored(), RuntimeError)

    def test_registries_private(self):
        """
        Two servers' metrics never share a series.
        """
        other = ServerMetrics()
        self.metrics.rotated(1.0)
        self.assertEqual(_sample(other, "suto_rotations_total", result="done"), 0)


class ObserverTests(SynchronousTestCase):
    def test_audit_observer_failure_contained(self):
        """
        An audit observer that raises is logged; the event is recorded
        and the next observer still called.
        """
        seen = []

        def broken(event):
            raise RuntimeError("observer bug")

        store = MemoryStore()
        audit = AuditLog(store, [], observers=[broken, seen.append])
        audit.record(0.0, "enrolled", "alice", "192.0.2.1", "key id k")
        self.assertEqual([e.event for e in seen], ["enrolled"])
        self.assertEqual(len(self.successResultOf(audit.matching())), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_rendezvous_observer_failure_contained(self):
        """
        A rendezvous observer that raises is logged and the request's
        L{Deferred} still fires with its outcome.
        """

        def broken(request, outcome):
            raise RuntimeError("observer bug")

        rendezvous = Rendezvous(task.Clock(), observers=[broken])
        request = rendezvous.open("alice", ["192.0.2.1"])
        rendezvous.finish(request, Verdict.ACCEPTED)
        self.assertEqual(self.successResultOf(request.done).verdict, Verdict.ACCEPTED)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_hash_pool_busy_counted(self):
        """
        A hash pool at its bound calls C{on_busy} for each refusal.
        """
        busy = []
        pool = HashPool(reactor, size=1, max_pending=1, on_busy=lambda: busy.append(1))
        pool.startService()
        self.addCleanup(pool.stopService)
        pool._pending = 1
        self.failureResultOf(pool.crypt("pw", "$6$abcdefgh"), HashPoolBusy)
        self.failureResultOf(pool.crypt("pw", "$6$abcdefgh"), HashPoolBusy)
        pool._pending = 0
        self.assertEqual(busy, [1, 1])


class StatusTests(SynchronousTestCase):
    def test_status_counts(self):
        """
        The status reports connected and offline endpoints and the last
        alert raised since the server started.
        """
        clock = task.Clock()
        server = make_server(clock)
        for name in ("alice", "bob", "carol", "dora"):
            enroll_numbered(server.store, name)
        server.store.mark_offline(["alice", "bob", "carol", "dora"], 1000.0)
        status = result_of(self, server.status())
        self.assertEqual((status["connected"], status["offline"]), (0, 4))
        self.assertIsNone(status["last_alert"])
        server.audit.record(0.0, "enrollment_failed", "alice", "192.0.2.1", "expired")
        server.audit.record(1.0, "enrolled", "bob", "192.0.2.2", "key id k")
        last = result_of(self, server.status())["last_alert"]
        self.assertEqual((last["type"], last["profile"]), ("enrollment_failed", "alice"))
        json.dumps(result_of(self, server.status()))

    def test_admin_status_unreachable(self):
        """
        C{suto-admin status} exits 1 with a reason on standard error when
        no daemon answers, so it serves as a health check.
        """
        out, err = io.StringIO(), io.StringIO()
        data = self.mktemp()
        os.makedirs(data)
        code = admin.main(["--data", data, "status"], stdout=out, stderr=err)
        self.assertEqual(code, 1)
        self.assertEqual(out.getvalue(), "")
        self.assertIn("did not answer", err.getvalue())


class ScrapeTests(TestCase):
    """
    A real server's C{/metrics} over loopback.
    """

    timeout = 30

    @defer.inlineCallbacks
    def test_scrape(self):
        """
        A server with C{metrics_listen} serves every metric family at
        C{/metrics} in the text format the Prometheus parser reads, with
        the counts of what it has seen; the status lists the listener.
        """
        server = make_server(
            reactor,
            listeners=Listeners(
                metrics=serverFromString(reactor, "tcp:0:interface=127.0.0.1")
            ),
        )
        server.startService()
        self.addCleanup(server.stopService)
        [listener] = server.listeners
        port = yield listener.listening
        server.audit.record(0.0, "clone_suspected", "alice", "192.0.2.1", "test")
        server.gate.admit("192.0.2.9")
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        response = yield Agent(reactor).request(b"GET", url)
        self.assertEqual(response.code, 200)
        body = (yield readBody(response)).decode()
        families = {f.name: f for f in text_string_to_metric_families(body)}
        for name in [
            "suto_authentications",
            "suto_enrollments",
            "suto_rotations",
            "suto_rotation_duration_seconds",
            "suto_alerts",
            "suto_connections_rejected",
            "suto_hash_pool_busy",
            "suto_store_commit_duration_seconds",
            "suto_endpoints_connected",
            "suto_endpoints_offline",
            "suto_profiles_blacklisted",
            "suto_enrollment_windows_open",
            "suto_connections_starting",
        ]:
            self.assertIn(name, families)
        alerts = {
            s.labels["type"]: s.value
            for s in families["suto_alerts"].samples
            if s.name == "suto_alerts_total"
        }
        self.assertEqual(alerts["clone_suspected"], 1)
        [starting] = families["suto_connections_starting"].samples
        self.assertEqual(starting.value, 1)
        self.assertEqual(
            [entry["name"] for entry in result_of(self, server.status())["listeners"]], ["metrics"]
        )

    @defer.inlineCallbacks
    def test_scrape_sqlite(self):
        """
        Over the SQLite store, whose connection serves only the reactor
        thread, a scrape reads the store's gauges there: it answers 200
        with the offline and blacklisted counts.
        """
        # The server closes the store when it stops.
        store = SQLiteStore.open(self.mktemp() + ".db")
        server = make_server(
            reactor,
            store=store,
            listeners=Listeners(
                metrics=serverFromString(reactor, "tcp:0:interface=127.0.0.1")
            ),
        )
        server.startService()
        self.addCleanup(server.stopService)
        [listener] = server.listeners
        port = yield listener.listening
        url = f"http://127.0.0.1:{port.getHost().port}/metrics".encode()
        response = yield Agent(reactor).request(b"GET", url)
        self.assertEqual(response.code, 200)
        self.assertEqual(
            response.headers.getRawHeaders(b"content-type"),
            [b"text/plain; version=0.0.4; charset=utf-8"],
        )
        body = (yield readBody(response)).decode()
        families = {f.name: f for f in text_string_to_metric_families(body)}
        for name in ["suto_endpoints_offline", "suto_profiles_blacklisted"]:
            [sample] = families[name].samples
            self.assertEqual(sample.value, 0)

    @defer.inlineCallbacks
    def test_admin_status_against_daemon(self):
        """
        C{suto-admin status} against a running daemon exits 0 and shows the
        uptime, the listeners, the connected and offline counts and the
        last alert.
        """
        data = socket_folder(self, "suto-st-")
        sock = quoteStringArgument(os.path.join(data, "admin.sock"))
        server = make_server(
            reactor,
            listeners=Listeners(admin=serverFromString(reactor, f"unix:{sock}:mode=600")),
        )
        server.startService()
        self.addCleanup(server.stopService)
        yield server.listeners[0].listening
        server.audit.record(0.0, "clone_suspected", "alice", "192.0.2.1", "test")
        stdout, stderr = io.StringIO(), io.StringIO()
        code = yield threads.deferToThread(
            admin.main, ["--data", data, "status"], stdout=stdout, stderr=stderr
        )
        self.assertEqual((code, stderr.getvalue()), (0, ""))
        lines = stdout.getvalue().splitlines()
        self.assertTrue(lines[0].startswith("up "))
        self.assertIn("listening: admin API on ", stdout.getvalue())
        self.assertIn("endpoints: 0 connected, 0 offline, 0 blacklisted", lines)
        self.assertIn(
            "last alert: clone_suspected at 1970-01-01T00:00:00Z (test)", lines
        )


class MetricsConnectionTests(SynchronousTestCase):
    """
    The metrics listener's connections: the request deadline and the
    connection bounds of L{suto_server.admin.httpbounds}, on the clock
    the site is given.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.factory = metrics_site(ServerMetrics(), self.clock, deadline=3.0)
        self.factory.doStart()

    def connect(self, host="192.0.2.7"):
        return connect(self.factory, IPv4Address("TCP", host, 40000))[0]

    def test_deadline(self):
        """
        A scrape whose request has not wholly arrived within the deadline
        closes its connection unanswered, however often it sends a byte.
        """
        assert_closed_at_deadline(
            self, self.factory, IPv4Address("TCP", "192.0.2.7", 1), self.clock, 3.0
        )

    def test_connections(self):
        """
        One source holds at most L{METRICS_PER_SOURCE} connections, and
        all sources L{METRICS_CONNECTIONS}; past either, a connection is
        refused.
        """
        for _ in range(METRICS_PER_SOURCE):
            self.assertIsNotNone(self.connect())
        self.assertIsNone(self.connect())
        for n in range(METRICS_CONNECTIONS - METRICS_PER_SOURCE):
            self.assertIsNotNone(self.connect(f"198.51.100.{n}"))
        self.assertIsNone(self.connect("203.0.113.1"))


class BuildInfoTests(SynchronousTestCase):
    def test_scraped(self):
        """
        A scrape shows C{suto_build_info} as a gauge of value 1 labelled
        with the versions of SUTO, Python, Twisted and OpenSSL, as
        Prometheus' C{*_info} convention has it.
        """
        metrics = ServerMetrics()
        scraped = {
            family.name: family
            for family in text_string_to_metric_families(
                generate_latest(metrics.registry).decode("utf-8")
            )
        }
        family = scraped["suto_build_info"]
        self.assertEqual(family.type, "gauge")
        [sample] = family.samples
        self.assertEqual(sample.name, "suto_build_info")
        self.assertEqual(sample.labels, build_info())
        self.assertEqual(sample.value, 1)
        self.assertEqual(
            sorted(sample.labels), ["openssl", "python", "twisted", "version"]
        )
        self.assertEqual(sample.labels["version"], VERSION)
