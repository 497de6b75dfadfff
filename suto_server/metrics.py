# -*- test-case-name: tests.test_metrics,tests.test_metrics_store_failures -*-
"""
The server's Prometheus metrics.

Each L{ServerMetrics} owns a private L{CollectorRegistry} (never the
process-wide one), so one process may run many servers, as the tests do.
Counters are driven from a few central places: the audit log's observers
(enrollments, rotation failures, alerts by type), the rendezvous
(classic authentication verdicts), the connection gate (refusals, rotation
latency), the hash pool (busy answers) and the group committer (store
commit latency).  What is state rather than history (connected endpoints,
open windows, penalised sources) is read at scrape time by L{StateCollector}
from callables, so it can never drift from the truth.  The counts the store
keeps (offline endpoints, blacklisted profiles, open windows) are read
through the store's calls before each scrape is written, off the reactor
thread on a store across the network; when the store cannot answer, the
scrape goes out without those three gauges, so that every other series
still arrives and the missing ones say the store is away.

Labels have bounded cardinality: a result, a reason, an alert type.  Never a
user name, an address, a key or a hash.  C{suto_build_info} is the one
series labelled with versions (SUTO's, Python's, Twisted's, OpenSSL's), fixed
for the life of the process.
"""

from __future__ import annotations

import time
from typing import Callable

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from suto_server.admin.httpbounds import (
    REQUEST_DEADLINE,
    ConnectionBounds,
    DeadlineSite,
)
from suto_server.audit.alerts import ALERT_TYPES
from suto_server.core.version import build_info
from suto_server.rules.rendezvous import Verdict
from suto_server.store.errors import StoreError

#: Why a connection was refused or dropped by the limits.
REJECTION_REASONS = ("penalty", "per_source", "startups", "grace")

#: What a store failure is counted under: a device's exchange (the
#: opening, before a phase began; the classic challenge; enrollment;
#: rotation, reconnections included), or an operator's request to the
#: admin API.
STORE_FAILURE_EXCHANGES = ("opening", "classic", "enrollment", "rotation", "admin")

#: The audit events counted as enrollments, by the result they report.
_ENROLLMENT_RESULTS = {
    "enrolled": "enrolled",
    "enrollment_failed": "failed",
    "enrollment_abandoned": "abandoned",
}

#: The audit events counted as reconnections after an offline spell, by
#: their result.
_RECONNECTION_RESULTS = {
    "reconnected": "reconnected",
    "reconnect_failed": "failed",
    "blacklisted_refused": "blacklisted",
}

#: A rotation takes a round trip and a grouped disk sync: milliseconds,
#: or seconds when port tracking waits for a check packet.
_ROTATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class StateCollector:
    """
    Gauges computed when Prometheus scrapes.  Each attribute of memory is
    a callable returning a count, or L{None} while nothing provides that
    count (it is then reported as 0).

    @ivar connected: endpoints with a live rotation connection.
    @ivar starting: connections that have not finished their first
        exchange.
    @ivar penalised: sources refused for their penalty now.
    @ivar hash_pending: hash computations waiting or running.
    @ivar stored: returns (through a L{Deferred} or a coroutine) the
        counts the store keeps, by name: C{offline} (enrolled endpoints
        known to be offline), C{blacklisted} (blacklisted profiles),
        C{windows} (open enrollment windows); L{None} while nothing
        provides them (each is then reported as 0).
    """

    _GAUGES = (
        ("connected", "suto_endpoints_connected", "Endpoints with a live rotation connection."),
        ("offline", "suto_endpoints_offline", "Enrolled endpoints known to be offline."),
        ("blacklisted", "suto_profiles_blacklisted", "Blacklisted profiles."),
        ("windows", "suto_enrollment_windows_open", "Open enrollment windows."),
        ("starting", "suto_connections_starting",
         "Connections that have not finished their first exchange."),
        ("penalised", "suto_sources_penalised", "Sources refused for their penalty now."),
        ("hash_pending", "suto_hash_pending", "Hash computations waiting or running."),
    )

    #: The gauges whose counts the store keeps, read by L{read_stored}.
    STORED = frozenset({"offline", "blacklisted", "windows"})

    log = Logger()

    def __init__(self) -> None:
        for attribute, _, _ in self._GAUGES:
            if attribute not in self.STORED:
                setattr(self, attribute, None)
        self.stored = None
        # The stored counts the scrape being written shows: set by
        # read_stored just before it, empty when the store failed.
        self._stored_counts: dict = {}

    def count(self, attribute: str) -> int:
        """
        @return: the count of memory named C{attribute} now (0 while
            nothing provides it).
        """
        counter = getattr(self, attribute)
        return 0 if counter is None else counter()

    def read_stored(self):
        """
        Read the counts the store keeps for the next scrape; a store that
        cannot answer leaves them out of it, with one warning.

        @return: a L{Deferred} firing once they are read.
        """

        def read():
            if self.stored is None:
                return dict.fromkeys(self.STORED, 0)
            return self.stored()

        def failed(failure):
            failure.trap(StoreError)
            self.log.warn(
                "the metrics scrape goes without the store's counts: {error}",
                error=str(failure.value),
            )
            return {}

        def keep(counts):
            self._stored_counts = counts

        return maybeDeferred(read).addErrback(failed).addCallback(keep)

    def describe(self):
        return [GaugeMetricFamily(name, text) for _, name, text in self._GAUGES]

    def collect(self):
        for attribute, name, text in self._GAUGES:
            if attribute not in self.STORED:
                yield GaugeMetricFamily(name, text, value=self.count(attribute))
            elif attribute in self._stored_counts:
                yield GaugeMetricFamily(
                    name, text, value=self._stored_counts[attribute]
                )


class ServerMetrics:
    """
    Every metric of one server, in its own registry.

    @param timer: a monotonic clock in seconds, for timing store commits
        (which block the reactor, so its clock cannot time them).
    """

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self._timer = timer
        self.registry = CollectorRegistry()
        registry = self.registry
        self.authentications = Counter(
            "suto_authentications",
            "Classic authentications by result.",
            ["result"],
            registry=registry,
        )
        self.enrollments = Counter(
            "suto_enrollments", "Enrollment attempts by result.", ["result"], registry=registry
        )
        self.rotations = Counter(
            "suto_rotations", "Key rotations by result.", ["result"], registry=registry
        )
        self.reconnections = Counter(
            "suto_reconnections",
            "Reconnections with the offline key, by result.",
            ["result"],
            registry=registry,
        )
        self.rotation_seconds = Histogram(
            "suto_rotation_duration_seconds",
            "Seconds from a rotation request to the server's final message.",
            buckets=_ROTATION_BUCKETS,
            registry=registry,
        )
        self.alerts = Counter("suto_alerts", "Alerts by type.", ["type"], registry=registry)
        self.rejected = Counter(
            "suto_connections_rejected",
            "Connections refused or dropped by the limits, by reason.",
            ["reason"],
            registry=registry,
        )
        self.hash_busy = Counter(
            "suto_hash_pool_busy",
            "Hash computations refused because the pool was full.",
            registry=registry,
        )
        self.store_failures = Counter(
            "suto_store_failures",
            "Device exchanges answered busy, and admin requests answered 503, "
            "because the store failed, by exchange.",
            ["exchange"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "suto_store_commit_duration_seconds",
            "Seconds one grouped store commit took.",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        # Every label value exists from the start, so a rate() over a
        # series that has not happened yet reads 0 rather than nothing.
        # The series counted on every authentication and rotation, looked
        # up once rather than by label on each count.
        self._verdicts = {
            verdict: self.authentications.labels(verdict.value)
            for verdict in Verdict
        }
        self._rotations_done = self.rotations.labels("done")
        for result in _ENROLLMENT_RESULTS.values():
            self.enrollments.labels(result)
        for result in ("done", "failed"):
            self.rotations.labels(result)
        for result in _RECONNECTION_RESULTS.values():
            self.reconnections.labels(result)
        for alert_type in sorted(ALERT_TYPES):
            self.alerts.labels(alert_type)
        for reason in REJECTION_REASONS:
            self.rejected.labels(reason)
        self._store_failures = {
            exchange: self.store_failures.labels(exchange)
            for exchange in STORE_FAILURE_EXCHANGES
        }
        self.state = StateCollector()
        registry.register(self.state)
        # Prometheus' convention for what a process is: one series, always
        # 1, its labels the versions, so a query can join on them.
        Info(
            "suto_build",
            "The SUTO version and those of Python, Twisted and OpenSSL it runs on.",
            registry=registry,
        ).info(build_info())

    def audited(self, event) -> None:
        """
        An audit log observer: count enrollments, reconnections, rotation
        failures and alerts from the recorded L{AuditEvent}.
        """
        result = _ENROLLMENT_RESULTS.get(event.event)
        if result is not None:
            self.enrollments.labels(result).inc()
        result = _RECONNECTION_RESULTS.get(event.event)
        if result is not None:
            self.reconnections.labels(result).inc()
        if event.event in ("rotation_failed", "rotation_abandoned"):
            self.rotations.labels("failed").inc()
        if event.event in ALERT_TYPES:
            self.alerts.labels(event.event).inc()

    def authenticated(self, request, outcome) -> None:
        """
        A rendezvous observer: count a classic authentication's verdict.
        """
        self._verdicts[outcome.verdict].inc()

    def rotated(self, seconds: float) -> None:
        """
        A rotation completed, C{seconds} after its request arrived.
        """
        self._rotations_done.inc()
        self.rotation_seconds.observe(seconds)

    def store_failed(self, exchange: str) -> None:
        """
        The store failed under an exchange of C{exchange}, one of
        L{STORE_FAILURE_EXCHANGES}, which was answered busy (a device's)
        or 503 (an admin request's): counted every time, while the log
        says so at most once in a while.
        """
        self._store_failures[exchange].inc()

    def timed_commit(self, commit_batch: Callable):
        """
        @return: C{commit_batch}, timing each call into
            C{suto_store_commit_duration_seconds} (a failed commit too);
            it may be called on the database thread.
        """

        def timed(*args):
            started = self._timer()
            try:
                return commit_batch(*args)
            finally:
                self.commit_seconds.observe(self._timer() - started)

        return timed


#: Seconds a connection to the metrics listener may stay silent: longer
#: than the 15 s Prometheus scrapes every by default, so a scraper keeps
#: its connection alive between scrapes.
IDLE_TIMEOUT = 60

#: Connections the metrics listener holds from one source (an IPv4
#: address or IPv6 /64) at once: a scraper holds one.
METRICS_PER_SOURCE = 16

#: Connections the metrics listener holds in all at once.
METRICS_CONNECTIONS = 64


class _ScrapeSite(DeadlineSite):
    """
    A site without the per-request access log line: a scrape every few
    seconds would fill the journal with nothing.  Its connections have
    the bounds of L{suto_server.admin.httpbounds}: the listener may face
    the network, and a client trickling its request must not hold a
    connection.
    """

    def log(self, request) -> None:
        "No access log."


class _MetricsResource(Resource):
    """
    The registry in Prometheus' text format, rendered on the reactor
    thread once the store's counts are read.

    prometheus_client's own Twisted resource is a WSGI application, run on
    the reactor's thread pool: the scrape-time gauges would then read the
    server's state from another thread, which the state is not safe for.
    The store's counts come through the store's calls instead (on the
    database thread for a store across the network), and the page is
    written in the turn they arrive, so it shows them as read.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, metrics: ServerMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request):
        finished = []
        request.notifyFinish().addBoth(finished.append)

        def write(_):
            if not finished:
                request.setHeader(
                    b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode("ascii")
                )
                request.write(generate_latest(self._metrics.registry))
                request.finish()

        def failed(failure):
            self.log.failure("metrics scrape failed", failure)
            if not finished:
                request.setResponseCode(500)
                request.finish()

        self._metrics.state.read_stored().addCallback(write).addErrback(failed)
        return NOT_DONE_YET


def metrics_site(
    metrics: ServerMetrics, clock, deadline: float = REQUEST_DEADLINE
) -> ConnectionBounds:
    """
    @param clock: the L{IReactorTime} connections are timed and counted
        on.
    @param deadline: seconds a whole request may take to arrive.
    @return: the factory of a web site serving C{metrics} at C{/metrics}
        in Prometheus' text format, and nothing else, holding at most
        L{METRICS_PER_SOURCE} connections from a source and
        L{METRICS_CONNECTIONS} in all; the site is its C{wrappedFactory}.
    """
    root = Resource()
    root.putChild(b"metrics", _MetricsResource(metrics))
    return ConnectionBounds(
        _ScrapeSite(root, clock, IDLE_TIMEOUT, deadline),
        clock,
        per_source=METRICS_PER_SOURCE,
        total=METRICS_CONNECTIONS,
    )
