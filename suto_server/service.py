"""
Assembly of the SUTO server from its parts.

L{SutoServer} takes everything it needs as arguments (reactor, store,
endpoint objects), so tests build a complete server on loopback port 0 with
a L{task.Clock} or the real reactor and no monkeypatching; C{tap.py} turns
command-line options into those arguments.
"""

from __future__ import annotations

import signal
from functools import partial

from twisted.application.service import IService, MultiService, Service
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from suto_server.admin.api import admin_site
from suto_server.audit.alerts import ALERT_TYPES, alert_for
from suto_server.audit.log import AuditLog
from suto_server.audit.sinks.log import LogSink
from suto_server.core import schemes, timing, wire
from suto_server.cred.checkers import ChainedHashSource, SaltedChallengeChecker
from suto_server.cred.hashpool import DEFAULT_MAX_PENDING, HashPool
from suto_server.cred.realm import SutoRealm
from suto_server.interfaces import IOfflineStore
from suto_server.locations import Locations
from suto_server.metrics import ServerMetrics, metrics_site
from suto_server.net.checks import DEFAULT_CHECK_TIMEOUT, CheckService
from suto_server.net.discovery import HelloService
from suto_server.net.expiry import DEFAULT_WARN_DAYS, CertificateExpiryWatch
from suto_server.net.tls import TLSConfigurationError
from suto_server.phases.connection import ServerFactory
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.enrollment import (
    DEFAULT_MAX_ATTEMPTS,
    Enrollment,
    WindowHashSource,
)
from suto_server.rules.limits import ConnectionGate
from suto_server.rules.offline import OfflineWatch
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.registry import LiveSessions, clients_report, history_report
from suto_server.rules.rendezvous import Rendezvous
from suto_server.rules.rotation import DEFAULT_FAILURE_ALERT, Rotation
from suto_server.rules.tracking import Tracking
from suto_server.rules.windows import WindowDesk
from suto_server.store.errors import StoreError
from suto_server.store.groupcommit import GroupCommitter


class ListeningService(Service):
    """
    Listens on one endpoint while running; C{listening} fires with the
    L{IListeningPort} (tests read the bound port number from it).
    """

    log = Logger()

    def __init__(self, name: str, endpoint, factory) -> None:
        self.setName(name)
        self._endpoint = endpoint
        self._factory = factory
        self._port = None
        self.listening: Deferred = Deferred()

    def startService(self) -> None:
        super().startService()
        d = self._endpoint.listen(self._factory)

        def listened(port):
            self._port = port
            self.log.info(
                "{name} listening on {address}",
                name=self.name,
                address=port.getHost(),
            )
            self.listening.callback(port)

        def failed(failure):
            self.log.failure("{name} could not listen", failure, name=self.name)
            self.listening.errback(failure)

        d.addCallbacks(listened, failed)

    @property
    def address(self):
        """
        The bound address while listening, else L{None}.
        """
        return None if self._port is None else self._port.getHost()

    def stopService(self):
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()


class ReloadOnHangup(Service):
    """
    Reload the TLS certificates on SIGHUP, the signal operators (and
    certificate renewal hooks) already send daemons to re-read files.
    """

    def __init__(self, reactor, reload) -> None:
        self._reactor = reactor
        self._reload = reload
        self._previous = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangup)

    def _hangup(self, signum, frame) -> None:
        # Signal handlers run between bytecodes; do the work on the reactor.
        self._reactor.callFromThread(self._reload)

    def stopService(self):
        super().stopService()
        signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)


def _certificate_json(info) -> dict:
    return {
        "subject": info.subject,
        "fingerprint": info.fingerprint,
        "not_after": info.not_after.isoformat(),
    }


def salt_lookup(source):
    """
    Build the session's salt lookup over C{source}: the salt of the user's
    stored hash, or L{None} when the user has no usable hash.
    """

    def salt_for(user: str) -> str | None:
        password_hash = source.hash_for(user)
        if password_hash is None:
            return None
        try:
            return schemes.salt_of(password_hash)
        except schemes.UnsupportedScheme:
            return None

    return salt_for


def _commit_rotations(store, rotations):
    """
    L{IRotationStore.commit_rotations} of the database thread's own store.
    """
    return store.commit_rotations(rotations)


def _append_audits(store, events):
    """
    L{IEnrollmentStore.append_audits} of the database thread's own store.
    """
    return store.append_audits(events)


class SutoServer(MultiService):
    """
    The running server: hash pool, listeners, hello sender, admin API.

    @ivar rendezvous: pending authentication requests.
    @ivar expiry_watch: warns daily about TLS certificates close to
        expiry (after C{cert_warn_days}); L{None} without a TLS listener.
    @ivar authenticator: starts authentications (what the admin API calls).
    @ivar store: the durable store, closed when the service stops.
    @ivar audit: the L{AuditLog}: events go to the store's hash chain,
        alerts to the structured log and to every sink in C{sinks} (those
        that are services run with the server).
    @ivar metrics: the L{ServerMetrics}, served at C{/metrics} on
        C{metrics_listen} when that is given.  Counts that other parts
        provide (offline endpoints, blacklisted profiles) are hooked in by
        setting C{metrics.state.offline} and C{metrics.state.blacklisted}
        to callables.
    @ivar gate: the L{ConnectionGate} applying C{limits} to both TCP
        listeners.

    C{database}, a L{suto_server.store.dbthread.DatabaseThread} run with the
    server, commits the rotations' batches and the audit log's records,
    and waits for their sync, off the reactor thread; without one (the
    in-memory store) they commit on the reactor thread.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        *,
        store,
        extra_sources=(),
        listen=(),
        legacy_listen=None,
        admin=None,
        hostname: str = "suto",
        hello_port: int = 2020,
        hello_interface: str = "",
        auth_timeout: float = 5.0,
        exchange_timeout: float = 10.0,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT,
        hash_pool_size: int | None = None,
        master_key=None,
        locations=None,
        max_enroll_attempts: int = DEFAULT_MAX_ATTEMPTS,
        rotation_interval: float = timing.DEFAULT_ROTATION_INTERVAL,
        rotation_grace: float = timing.DEFAULT_ROTATION_GRACE,
        fingerprint_alert: int = DEFAULT_FAILURE_ALERT,
        offline_step: int = timing.DEFAULT_OFFLINE_STEP,
        offline_window: int = timing.DEFAULT_OFFLINE_WINDOW,
        cert_warn_days: int = DEFAULT_WARN_DAYS,
        sinks=(),
        metrics_listen=None,
        limits=None,
        login_grace: float = 30.0,
        limit_log_interval: float = 60.0,
        hash_pending: int = DEFAULT_MAX_PENDING,
        database=None,
    ) -> None:
        super().__init__()
        self._reactor = reactor
        self.store = store
        self.metrics = ServerMetrics()
        self.gate = ConnectionGate(
            reactor,
            limits,
            self.metrics,
            login_grace,
            limit_log_interval,
            on_refusing=self._rate_limited,
        )
        self._last_alert = None
        self._database = database
        self.audit = AuditLog(
            store,
            [LogSink(), *sinks],
            observers=[self.metrics.audited, self.gate.audited, self._note_alert],
            append=self._audit_appends(),
        )
        for sink in sinks:
            if IService.providedBy(sink):
                sink.setServiceParent(self)
        self._started = None
        self.hash_pool = HashPool(
            reactor,
            size=hash_pool_size,
            max_pending=hash_pending,
            on_busy=self.metrics.hash_busy.inc,
        )
        self.hash_pool.setServiceParent(self)
        source = ChainedHashSource([store, *extra_sources])
        portal = Portal(
            SutoRealm(), [SaltedChallengeChecker(source, self.hash_pool)]
        )
        self.rendezvous = Rendezvous(
            reactor,
            auth_timeout,
            observers=[
                self.metrics.authenticated,
                self.gate.authenticated,
                self._audit_authentication,
            ],
        )
        self.hello = HelloService(reactor, hostname, hello_interface)
        self.hello.setServiceParent(self)
        self.authenticator = Authenticator(self.rendezvous, self.hello, source)
        self.listeners: list[ListeningService] = []
        self.enrollment = None
        self.rotation = None
        self.reconnection = None
        self.live = LiveSessions()
        self.tracking = None
        self._locations = locations or Locations()
        enrollment_portal = None
        if master_key is not None:
            # Checks go to the port the agents listen on for hellos.
            checks = CheckService(
                reactor, hello_port, check_timeout, hello_interface
            )
            checks.setServiceParent(self)
            self.tracking = Tracking(
                store, self.audit, self.live, checks, self._locations
            )
            self.rotation = Rotation(
                store,
                master_key,
                GroupCommitter(reactor, self._rotation_commits()),
                fingerprint_alert,
                audit=self.audit,
            )
            self.reconnection = Reconnection(
                store, self.rotation, self.audit, offline_step, offline_window
            )
            OfflineWatch(
                reactor,
                store,
                rotation_interval,
                rotation_grace,
                self.live.__contains__,
            ).setServiceParent(self)
            self.enrollment = Enrollment(
                store,
                master_key,
                self.hash_pool,
                max_enroll_attempts,
                audit=self.audit,
            )
            enrollment_portal = Portal(
                SutoRealm(),
                [SaltedChallengeChecker(WindowHashSource(store), self.hash_pool)],
            )

        def factory(framing, tls):
            # Enrollment, rotation and reconnection run only over TLS: a
            # plaintext listener (the legacy one, or a framed one on a
            # tcp: endpoint) serves the classic challenge alone.
            secure = framing is wire.Framing.FRAMED and tls
            return ServerFactory(
                framing=framing,
                rendezvous=self.rendezvous,
                portal=portal,
                salt_for=salt_lookup(source),
                make_rsalt=schemes.new_rsalt,
                clock=reactor,
                exchange_timeout=exchange_timeout,
                enrollment=self.enrollment if secure else None,
                enrollment_portal=enrollment_portal if secure else None,
                rotation=self.rotation if secure else None,
                reconnection=self.reconnection if secure else None,
                tracking=self.tracking if secure else None,
                # An agent rotates every interval, up to its jitter late;
                # past that and the grace the connection is dead.
                idle_timeout=timing.silence_allowed(
                    rotation_interval, rotation_grace
                ),
                gate=self.gate,
            )

        self._tls = [
            endpoint.tls
            for endpoint in listen
            if getattr(endpoint, "tls", None) is not None
        ]
        self.expiry_watch = None
        if self._tls:
            self.expiry_watch = CertificateExpiryWatch(
                reactor, self._tls, cert_warn_days, audit=self.audit
            )
            self.expiry_watch.setServiceParent(self)
        for endpoint in listen:
            tls = getattr(endpoint, "tls", None) is not None
            if not tls:
                self.log.warn(
                    "a SUTO listener is plaintext: it serves only the classic "
                    "salted challenge, never enrollment, rotation or "
                    "reconnection; give it an ssl: endpoint"
                )
            self._listen(
                "SUTO listener", endpoint, factory(wire.Framing.FRAMED, tls)
            )
        if legacy_listen is not None:
            self.log.warn(
                "the SUTO 1.3.2 legacy listener is on: it is plaintext and "
                "serves only the classic salted challenge"
            )
            self._listen(
                "SUTO 1.3.2 legacy listener",
                legacy_listen,
                factory(wire.Framing.LEGACY, tls=False),
            )
        if admin is not None:
            self._listen(
                "admin API",
                admin,
                admin_site(
                    self.authenticator,
                    hello_port,
                    self.status,
                    self.reload_certificates,
                    self._window_desk(locations, hello_port),
                    self.audit,
                    self.reconnection,
                    reactor,
                    clients=self.clients,
                    history=self.history,
                ),
            )
        self._watch_state()
        if metrics_listen is not None:
            self._listen("metrics", metrics_listen, metrics_site(self.metrics))

    def _watch_state(self) -> None:
        """
        Give the metrics' scrape-time gauges what they read.
        """
        state = self.metrics.state
        state.connected = lambda: len(self.live)
        state.starting = lambda: self.gate.limits.starting
        state.penalised = self.gate.penalised
        state.hash_pending = lambda: self.hash_pool.pending
        state.windows = self._open_windows
        if IOfflineStore.providedBy(self.store):
            state.offline = lambda: len(self.store.offline_profiles())
            state.blacklisted = lambda: len(self.store.list_blacklist())

    def _open_windows(self) -> int:
        if self.enrollment is None:
            return 0
        return len(self.enrollment.windows(self._reactor.seconds()))

    def _audit_authentication(self, request, outcome) -> None:
        """
        A rendezvous observer: every authentication goes to the audit log
        as C{authentication_<verdict>}, with the device that answered (if
        one did) and the reason it ended so; never what it answered.
        """
        source = outcome.source
        verdict = outcome.verdict.value
        self.audit.record(
            self._reactor.seconds(),
            f"authentication_{verdict}",
            outcome.user,
            source,
            outcome.reason or verdict,
            () if source is None else (self._locations.describe_address(source),),
        )

    def _rate_limited(self, now: float, host: str, source: str, until: float) -> None:
        """
        A source failed often enough to be refused: raise C{rate_limited},
        once for the whole run of refusals.  The alert goes out even when
        the store cannot record it (L{AuditLog.record}); that failure is
        logged here, as it happened while deciding a connection.
        """
        where = self._locations.describe_address(host)
        try:
            self.audit.record(
                now,
                "rate_limited",
                None,
                host,
                f"{where} failed too often: every connection from "
                f"{'it' if source == host else source} is refused for "
                f"{until - now:.0f} s",
                (where,),
            )
        except StoreError:
            self.log.failure(
                "recording a rate_limited alert for {host} failed", host=host
            )

    def _note_alert(self, event) -> None:
        alert = alert_for(event)
        if alert is not None:
            self._last_alert = alert

    def _window_desk(self, locations, hello_port):
        if self.enrollment is None:
            return None
        desk = WindowDesk(
            self.enrollment,
            locations or Locations(),
            self._reactor,
            self.hello,
            hello_port,
            lambda: [tls.certificate_info().fingerprint for tls in self._tls],
        )
        desk.setServiceParent(self)
        return desk

    def clients(self) -> list[dict]:
        """
        What C{suto-admin clients} shows: one row per enrolled profile.
        """
        return clients_report(
            self.store, self.live, self._locations, self._reactor.seconds()
        )

    def history(self, user: str) -> dict | None:
        """
        What C{suto-admin history USER} shows, or L{None} when the store
        knows nothing of C{user}: no profile, no move, no alert.
        """
        report = history_report(self.store, user, ALERT_TYPES)
        if (
            self.store.get_profile(user) is None
            and not report["moves"]
            and not report["alerts"]
        ):
            return None
        return report

    def _rotation_commits(self):
        """
        @return: the batch function of the rotations' group commit, timed:
            on the database thread when there is one.
        """
        if self._database is None:
            return self.metrics.timed_commit(self.store.commit_rotations)
        return partial(
            self._database.run, self.metrics.timed_commit(_commit_rotations)
        )

    def _audit_appends(self):
        """
        @return: what appends one audit record: a group commit on the
            database thread when there is one, else the store itself (on
            the reactor thread, through L{AuditLog}'s default).
        """
        if self._database is None:
            return None
        return GroupCommitter(
            self._reactor, partial(self._database.run, _append_audits)
        ).submit

    def _listen(self, name: str, endpoint, factory) -> None:
        service = ListeningService(name, endpoint, factory)
        service.setServiceParent(self)
        self.listeners.append(service)

    def startService(self) -> None:
        self._started = self._reactor.seconds()
        # The database thread runs before every other part and stops after
        # them all, so that what they record while stopping is written.
        if self._database is not None:
            self._database.startService()
        super().startService()

    def stopService(self):
        d = super().stopService()
        if self._database is not None:
            d.addBoth(self._stop_database)
        d.addBoth(self._close_store)
        return d

    def _stop_database(self, result):
        d = self.audit.flushed()
        d.addCallback(lambda _: self._database.stopService())
        return d.addCallback(lambda _: result)

    def _close_store(self, result):
        self.store.close()
        return result

    def reload_certificates(self) -> list:
        """
        Re-read every TLS listener's key and certificate (after a renewal).
        Live connections keep the certificate they started with; a listener
        whose new files are bad keeps its old certificate.  Each reload, and
        each that failed, goes to the audit log.

        @return: one dictionary per listener: the new certificate's subject,
            fingerprint and expiry, or the error that kept the old one.
        """
        results = []
        now = self._reactor.seconds()
        for tls in self._tls:
            try:
                info = tls.reload()
            except TLSConfigurationError as error:
                self.log.error(
                    "certificate reload failed, keeping the old one: {error}",
                    error=str(error),
                )
                results.append({"error": str(error)})
                event = "certificate_reload_failed"
                reason = "the new files could not be used; the old ones stay"
            else:
                results.append(_certificate_json(info))
                event = "certificate_reloaded"
                reason = (
                    f"now serving sha256 {info.fingerprint}, valid until "
                    f"{info.not_after.isoformat()}"
                )
            self.audit.record(now, event, None, None, reason)
        return results

    def status(self) -> dict:
        """
        What C{suto-admin status} shows.
        """
        return {
            "uptime": self._reactor.seconds() - self._started
            if self._started is not None
            else 0.0,
            "listeners": [
                {"name": service.name, "address": str(service.address)}
                for service in self.listeners
                if service.address is not None
            ],
            "certificates": [
                _certificate_json(tls.certificate_info()) for tls in self._tls
            ],
            "pending": [
                {"user": request.user, "claimed_by": request.claimed_by}
                for request in self.rendezvous.pending
            ],
            "enrollment_windows": self._open_windows(),
            "connected": self.metrics.state.count("connected"),
            "offline": self.metrics.state.count("offline"),
            "last_alert": (
                self._last_alert.to_json() if self._last_alert is not None else None
            ),
        }
