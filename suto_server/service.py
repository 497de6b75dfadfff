# -*- test-case-name: tests.admin.test_status,tests.test_service -*-
"""
Assembly of the SUTO server from its parts.

L{SutoServer} takes everything it needs as arguments (reactor, store,
endpoint objects), so tests build a complete server on loopback port 0 with
a L{task.Clock} or the real reactor and no monkeypatching; C{tap.py} turns
command-line options into those arguments.

What the server shows (its reports, L{suto_server.reports}) and where it
listens (L{suto_server.listeners}) are its bases; this module keeps the
service itself: the parts' assembly, their start and their stop.
"""

from __future__ import annotations

from functools import partial

from twisted.application.service import IService, MultiService
from twisted.cred.portal import Portal
from twisted.logger import Logger

from suto_server.audit.log import AuditLog
from suto_server.audit.sinks.log import LogSink
from suto_server.cluster.leadership import leadership_for
from suto_server.cluster.presence import presence_for
from suto_server.cluster.relay import relay_for
from suto_server.cluster.verify_relay import verify_relay_for
from suto_server.cred.checkers import ChainedHashSource, SaltedChallengeChecker
from suto_server.cred.hashpool import HashPool
from suto_server.cred.realm import SutoRealm
from suto_server.cred.roles import RolePolicy
from suto_server.keyrules import key_rules
from suto_server.listeners import ServerListeners
from suto_server.metrics import ServerMetrics
from suto_server.net.discovery import HelloService
from suto_server.net.expiry import CertificateExpiryWatch
from suto_server.net.listening import CannotListen, ListeningService
from suto_server.net.refusals import HandshakeLog
from suto_server.net.served import ServedCertificates
from suto_server.net.tls import watch
from suto_server.reports import ServerReports
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.expected import ExpectedSources
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.limits import Limits
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous
from suto_server.rules.windows import WindowDesk
from suto_server.settings import (
    Alerting,
    Capacity,
    EnrollmentSettings,
    HttpLimits,
    Listeners,
    Network,
    Timing,
    VerifyApiSettings,
)
from suto_server.store.calls import calls_for
from suto_server.store.clustering import IClusteredStore
from suto_server.store.dbthread import DatabasePool, store_method
from suto_server.store.errors import StoreError
from suto_server.store.groupcommit import SERVER_HOLD, GroupCommitter


class SutoServer(ServerReports, ServerListeners, MultiService):
    """
    The running server: hash pool, listeners, hello sender, admin API.

    @param store: the durable store, closed when the service stops.
    @param enrollment: whether the server enrolls, rotates keys and
        reconnects profiles, and under which master key
        (L{EnrollmentSettings}, or L{ENROLLMENT_OFF}).
    @param roles: the roles client certificates hold, on the verification
        API and for signing in to the web console.
    @param http: the bounds on the clients of the verification API and
        the web console.
    @param extra_sources: password hash sources consulted after the store
        (a shadow file).
    @param database: a L{suto_server.store.dbthread.DatabaseThread} run
        with the server, that commits the rotations' batches and the audit
        log's records, and waits for their sync, off the reactor thread;
        without one (the in-memory store) they commit on the reactor
        thread.
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls});
        unless given, L{calls_for} chooses them by the store and the
        database thread.

    @ivar calls: the store's calls as Deferreds (L{suto_server.store.calls}),
        for the rules on the reactor thread.
    @ivar rendezvous: pending authentication requests.
    @ivar relay: shares them with the other processes on the store
        (L{suto_server.cluster.relay}); L{None} on a store no other
        process shares.
    @ivar verify_relay: verifies live connections with the other processes
        (L{suto_server.cluster.verify_relay}); L{None} with no relay.
    @ivar certificates: the L{ServedCertificates} of the TLS listeners.
    @ivar expiry_watch: warns daily, and after a reload, about TLS
        certificates and client certificate CRLs close to expiry; L{None}
        without a TLS listener.
    @ivar authenticator: starts authentications (what the admin API calls).
    @ivar audit: the L{AuditLog}: events go to the store's hash chain,
        alerts to the structured log and to every sink of L{Alerting}.
    @ivar metrics: the L{ServerMetrics}, served on the metrics listener
        when there is one.  The counts the store keeps (offline endpoints,
        blacklisted profiles, open windows) come from L{stored_counts},
        read before each scrape.
    @ivar gate: the L{ConnectionGate} applying the L{Capacity} limits to
        both TCP listeners.
    @ivar leadership: runs the jobs that must run once however many
        processes share the store (the offline sweep, the certificate
        expiry watch) while this process leads
        (L{suto_server.cluster.leadership}).
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        *,
        store,
        enrollment: EnrollmentSettings,
        listeners: Listeners = Listeners(),
        network: Network = Network(),
        timing: Timing = Timing(),
        capacity: Capacity = Capacity(),
        alerting: Alerting = Alerting(),
        verify_api: VerifyApiSettings = VerifyApiSettings(),
        roles: RolePolicy = RolePolicy(),
        http: HttpLimits = HttpLimits(),
        extra_sources=(),
        database=None,
        calls=None,
    ) -> None:
        super().__init__()
        self._reactor = reactor
        self.store = store
        self._http = http
        self.metrics = ServerMetrics()
        self.gate = ConnectionGate(
            reactor,
            Limits(
                max_per_source=capacity.max_per_source,
                startups=capacity.startups,
                penalties=capacity.penalties,
            ),
            self.metrics,
            capacity.login_grace,
            capacity.limit_log_interval,
            on_refusing=self._rate_limited,
        )
        self._database = database
        # The store's calls for the rules on the reactor thread: a store
        # across the network answers them on a pool of database threads of
        # their own, so that they never queue behind the batches, which
        # keep their one ordered thread (with the notices and claims).
        self._pool = None
        if database is not None and IClusteredStore.providedBy(store):
            self._pool = DatabasePool(reactor, store)
        self.calls = (
            calls_for(store, database, self._pool) if calls is None else calls
        )
        self.audit = AuditLog(
            store,
            [LogSink(), *alerting.sinks],
            observers=[self.metrics.audited, self.gate.audited, self._note_alert],
            append=self._audit_appends(),
            clock=reactor,
            calls=self.calls,
        )
        for sink in alerting.sinks:
            if IService.providedBy(sink):
                sink.setServiceParent(self)
        self._started = None
        self._privileged = False
        self.leadership = leadership_for(reactor, store)
        self.leadership.setServiceParent(self)
        self.hash_pool = HashPool(
            reactor,
            size=capacity.hash_threads,
            max_pending=capacity.hash_pending,
            on_busy=self.metrics.hash_busy.inc,
        )
        self.hash_pool.setServiceParent(self)
        # The store's hashes come through its calls, off the reactor
        # thread on a store across the network; the shadow files are local.
        source = ChainedHashSource([self.calls, *extra_sources])
        portal = Portal(
            SutoRealm(), [SaltedChallengeChecker(source, self.hash_pool)]
        )
        # Shares the pending requests with the other processes on the
        # store, when it can have any.
        self.relay = relay = relay_for(
            reactor,
            store,
            self.calls,
            key=enrollment.master_key and enrollment.master_key.notice_key(),
        )
        self.rendezvous = Rendezvous(
            reactor,
            timing.auth_timeout,
            observers=[
                self.metrics.authenticated,
                self.gate.authenticated,
                self._audit_authentication,
            ],
            peers=relay,
        )
        if relay is not None:
            relay.serve(self.rendezvous)
            relay.setServiceParent(self)
        self.gate.expect(ExpectedSources.of(self.rendezvous, store))
        self.hello = HelloService(reactor, network.hostname, network.hello_interface)
        self.hello.setServiceParent(self)
        self.authenticator = Authenticator(
            self.rendezvous, self.hello, source, paced=self.gate.paced
        )
        watch(listeners.devices, self.authenticator)
        # The listeners that take client certificates but that no
        # authentication waits on log their refused handshakes themselves.
        others = {"verification API": listeners.api, "console": listeners.console}
        for name, endpoint in others.items():
            watch([endpoint], HandshakeLog(name, self.gate.paced))
        self.listeners: list[ListeningService] = []
        self.live = LiveSessions()
        # Verifies, for the other processes, the live connections held here.
        self.verify_relay = verify_relay_for(reactor, relay, self.live)
        self._locations = network.locations
        self._network = network
        keys = None
        if enrollment.enabled:
            keys = key_rules(
                reactor,
                self,
                store=store,
                calls=self.calls,
                audit=self.audit,
                live=self.live,
                hash_pool=self.hash_pool,
                committer=GroupCommitter(
                    reactor, self._rotation_commits(), hold=SERVER_HOLD
                ),
                locations=self._locations,
                settings=enrollment,
                network=network,
                timing=timing,
                alerting=alerting,
                paced=self.gate.paced,
                jobs=self.leadership.jobs,
            )
        self.enrollment = None if keys is None else keys.enrollment
        self.rotation = None if keys is None else keys.rotation
        self.reconnection = None if keys is None else keys.reconnection
        self.tracking = None if keys is None else keys.tracking
        # Tracking weighs the live connections of the other processes too.
        presence = None
        if self.tracking is not None:
            presence = presence_for(
                reactor, relay, self.verify_relay, self.live, network.check_timeout
            )
        if presence is not None:
            self.tracking.share(presence)
        self.certificates = ServedCertificates.of(
            reactor, listeners.devices, self.audit, others
        )
        self.expiry_watch = None
        if self.certificates.revoking():
            self.expiry_watch = CertificateExpiryWatch(
                reactor,
                self.certificates.served,
                alerting.cert_warn_days,
                audit=self.audit,
                revoking=self.certificates.revoking(),
            )
            self.expiry_watch.setServiceParent(self.leadership.jobs)
        self._listen_devices(listeners, timing, portal, source, keys)
        self.desk = self._window_desk(self._network.hello_port)
        self._listen_http(listeners, roles, verify_api)
        self._watch_state()

    def _watch_state(self) -> None:
        """
        Give the metrics' scrape-time gauges what they read.
        """
        state = self.metrics.state
        state.connected = lambda: len(self.live)
        state.starting = lambda: self.gate.limits.starting
        state.penalised = self.gate.penalised
        state.hash_pending = lambda: self.hash_pool.pending
        state.stored = self.stored_counts

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
                # Unproven: failing often is open to any peer.
                unproven=True,
            )
        except StoreError:
            self.log.failure(
                "recording a rate_limited alert for {host} failed", host=host
            )

    def _window_desk(self, hello_port):
        if self.enrollment is None:
            return None
        desk = WindowDesk(
            self.enrollment,
            self._locations,
            self._reactor,
            self.hello,
            hello_port,
            self.certificates.fingerprints,
            has_account=self.authenticator.has_account,
        )
        desk.setServiceParent(self)
        return desk

    def _rotation_commits(self):
        """
        @return: the batch function of the rotations' group commit, timed:
            on the database thread when there is one.
        """
        if self._database is None:
            return self.metrics.timed_commit(self.store.commit_rotations)
        return partial(
            self._database.run,
            self.metrics.timed_commit(store_method("commit_rotations")),
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
            self._reactor, partial(self._database.run, store_method("append_audits"))
        ).submit

    def privilegedStartService(self) -> None:
        """
        Open every listener, or none: twistd calls this before anything
        is served, and a listener that cannot listen raises
        L{CannotListen}, stopping the process; the listeners already open
        are closed first.
        """
        self._privileged = True
        try:
            super().privilegedStartService()
        except CannotListen:
            for listener in self.listeners:
                listener.stopService()
            raise

    def startService(self) -> None:
        # Started without twistd (as tests do), the listeners open first
        # all the same, so one that cannot listen stops the server before
        # any other part runs.
        if not self._privileged:
            self.privilegedStartService()
        self._started = self._reactor.seconds()
        # The database thread runs before every other part and stops after
        # them all, so that what they record while stopping is written.
        if self._database is not None:
            self._database.startService()
        if self._pool is not None:
            self._pool.startService()
        super().startService()

    def stopService(self):
        self._privileged = False
        self.audit.flush_alerts()
        d = super().stopService()
        if self._database is not None:
            d.addBoth(self._stop_database)
        d.addBoth(self._close_store)
        return d

    def _stop_database(self, result):
        if self._pool is None:
            d = self.audit.flushed()
        else:
            # The rules' calls in flight end first: what they record is
            # flushed after them.
            d = self._pool.stopService()
            d.addCallback(lambda _: self.audit.flushed())
        d.addCallback(lambda _: self._database.stopService())
        return d.addCallback(lambda _: result)

    def _close_store(self, result):
        self.store.close()
        return result

    def reload_certificates(self) -> list:
        """
        Re-read the TLS listeners' certificates: see
        L{ServedCertificates.reload}.
        """
        results = self.certificates.reload()
        if self.expiry_watch is not None:
            self.expiry_watch.recheck()
        return results
