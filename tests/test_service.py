"""
The assembly of the server: which listener serves which conversation,
what its settings say, and the one audit log its rules record through.
"""

import socket
from dataclasses import replace

from OpenSSL.crypto import X509
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel
from zope.interface import implementer

from suto_server import tap
from suto_server.audit.aggregation import DEFAULT_INTERVAL
from suto_server.console.site import PER_SOURCE
from suto_server.core import wire
from suto_server.core.timing import silence_allowed
from suto_server.cred.roles import RolePolicy
from suto_server.net.listening import CannotListen, OptionEndpoint
from suto_server.rules.enrollment import EnrollmentRefused
from suto_server.rules.rendezvous import Verdict
from suto_server.rules.rotation import RotationRefused
from suto_server.settings import (
    ENROLLMENT_OFF,
    Alerting,
    EnrollmentSettings,
    HttpLimits,
    Listeners,
    Timing,
)
from tests.support.alerts import RecordingSink, ServiceSink
from tests.support.coroutines import failure_of, result_of
from tests.support.masterkey import new_master_key
from tests.support.pki import Authority
from tests.support.server import make_server
from tests.support.store_suite.values import (
    PROFILE,
    WINDOW,
    numbered_key_id,
    numbered_rotation,
)

NOW = 1_700_000_000.0


class _TLSEndpoint:
    """
    Stands for a TLS listener's endpoint: all the server looks at is its
    C{tls} (asked for certificate details only once it runs).
    """

    tls = object()


class ListenerTests(SynchronousTestCase):
    def server(self, listen):
        reactor = MemoryReactorClock()
        with capturedLogs() as events:
            server = make_server(
                reactor,
                enrollment=EnrollmentSettings(new_master_key(self)),
                listeners=Listeners(devices=tuple(listen)),
            )
        return server, events

    def test_plaintext_framed_listener(self):
        """
        A framed listener on a plaintext endpoint (tcp:) serves only the
        classic challenge: its factory has no enrollment, rotation,
        reconnection or tracking rules, and the server warns that it is
        plaintext.
        """
        reactor = MemoryReactorClock()
        server, events = self.server([TCP4ServerEndpoint(reactor, 2021)])
        [listener] = server.listeners
        factory = listener._factory
        self.assertEqual(
            (factory.enrollment, factory.rotation),
            (None, None),
        )
        self.assertTrue(
            any("plaintext" in event["log_format"] for event in events)
        )

    def test_tls_listener(self):
        """
        A TLS listener serves enrollment, rotation and reconnection, with
        port tracking.
        """
        server, events = self.server([_TLSEndpoint()])
        [listener] = server.listeners
        factory = listener._factory
        self.assertIs(factory.enrollment.enrollment, server.enrollment)
        self.assertIs(factory.rotation.rotation, server.rotation)
        self.assertIs(factory.rotation.reconnection, server.reconnection)
        self.assertIs(factory.rotation.tracking, server.tracking)
        self.assertFalse(
            any("plaintext" in event.get("log_format", "") for event in events)
        )


class VerifyApiListenerTests(SynchronousTestCase):
    def serve(self, roles):
        reactor = MemoryReactorClock()
        with capturedLogs() as events:
            server = make_server(
                reactor,
                listeners=Listeners(api=TCP4ServerEndpoint(reactor, 2443)),
                roles=roles,
            )
        warned = any("grants no role" in e.get("log_format", "") for e in events)
        return server, warned

    def test_api_listener(self):
        """
        The verification API gets a listener of its own, with the
        server's role policy; a policy granting nothing is warned about.
        """
        server, warned = self.serve(RolePolicy())
        [listener] = server.listeners
        self.assertEqual(listener.name, "verification API")
        self.assertTrue(warned)
        policy = RolePolicy.from_options(verify_units="suto-hosts")
        _, warned = self.serve(policy)
        self.assertFalse(warned)


@implementer(ISSLTransport)
class _PeerTLS:
    """
    A TLS connection's transport, as far as the console's certificate
    sign-in reads it: its peer certificate (pyOpenSSL).
    """

    def __init__(self, peer):
        self._peer = peer

    def getPeerCertificate(self):
        return self._peer


class ConsoleCertificateTests(SynchronousTestCase):
    """
    The console signs in a client certificate holding the C{admin} role of
    the server's role policy, the one the verification API takes.
    """

    authority = Authority("Operators CA")

    def console(self, **grants):
        reactor = MemoryReactorClock()
        server = make_server(
            reactor,
            listeners=Listeners(console=TCP4ServerEndpoint(reactor, 8443)),
            roles=RolePolicy.from_options(**grants),
        )
        return server.console

    def session(self, console, *units):
        """
        The session the console gives a request on a connection whose
        peer presented a certificate of C{ops1} in C{units}.
        """
        certificate = self.authority.issue("ops1", client=True, units=units)[1]
        request = Request(DummyChannel())
        request.channel.transport = _PeerTLS(X509.from_cryptography(certificate))
        return console.session_of(request)

    def test_admin_signed_in(self):
        """
        A certificate with an OU granting C{admin} is signed in, named by
        its subject; one holding only C{verify} is not.
        """
        console = self.console(admin_units="it-admins", verify_units="hosts")
        session = self.session(console, "it-admins")
        self.assertEqual(session.operator, "OU=it-admins,CN=ops1 (client certificate)")
        self.assertIsNone(self.session(console, "hosts"))

    def test_admin_subject(self):
        """
        The C{admin} subjects grant it too.
        """
        console = self.console(admin_subjects="OU=staff,CN=ops1")
        self.assertIsNotNone(self.session(console, "staff"))

    def test_connections_per_source(self):
        """
        The console's listener holds at most L{PER_SOURCE} connections from
        one source: slow clients from one host cannot take every
        connection the server can hold.
        """
        reactor = MemoryReactorClock()
        server = make_server(
            reactor, listeners=Listeners(console=TCP4ServerEndpoint(reactor, 8443))
        )
        server.startService()
        self.addCleanup(server.stopService)
        [factory] = [entry[1] for entry in reactor.tcpServers if entry[0] == 8443]
        address = IPv4Address("TCP", "192.0.2.7", 1)
        for _ in range(PER_SOURCE):
            factory.buildProtocol(address).makeConnection(
                StringTransport(peerAddress=address)
            )
        self.assertIsNone(factory.buildProtocol(address))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.8", 1)))

    def test_no_admin_grant(self):
        """
        Without any C{admin} grant certificates are not a way in, even
        when the policy grants C{verify}.
        """
        console = self.console(verify_units="it-admins")
        self.assertIsNone(self.session(console, "it-admins"))

    def test_options(self):
        """
        The role options reach the policy both listeners take; the
        verification API's settings no longer carry one.
        """
        options = tap.Options()
        options.parseOptions(
            ["--admin-ou", "it-admins", "--admin-subjects", "CN=ops1,O=Example"]
        )
        self.assertEqual(options.roles.admin.units, {"it-admins"})
        self.assertEqual(options.roles.admin.subjects, {"CN=ops1,O=Example"})
        self.assertRaises(
            usage.UsageError, tap.Options().parseOptions, ["--admin-subjects", "x"]
        )


class HttpLimitsTests(SynchronousTestCase):
    def test_options(self):
        """
        The request deadline and the total bounds given on the command
        line reach the settings; a total under one is refused.
        """
        options = tap.Options()
        options.parseOptions(
            [
                "--http-request-deadline", "3",
                "--api-max-connections", "7",
                "--console-max-connections", "5",
            ]
        )
        self.assertEqual(options.http, HttpLimits(3.0, 7, 5))
        for name in ("--api-max-connections", "--console-max-connections"):
            self.assertRaises(
                usage.UsageError, tap.Options().parseOptions, [name, "0"]
            )

    def listener(self, name: str, limits: HttpLimits):
        """
        Start a server with listener C{name} and C{limits}.

        @return: its clock and its listener's factory.
        """
        reactor = MemoryReactorClock()
        server = make_server(
            reactor,
            listeners=Listeners(**{name: TCP4ServerEndpoint(reactor, 8443)}),
            http=limits,
        )
        server.startService()
        self.addCleanup(server.stopService)
        [factory] = [entry[1] for entry in reactor.tcpServers if entry[0] == 8443]
        return reactor, factory

    def test_totals(self):
        """
        Each listener holds at most its total of connections, from any
        sources.
        """
        limits = HttpLimits(api_connections=2, console_connections=3)
        for name, total in (("api", 2), ("console", 3)):
            _, factory = self.listener(name, limits)
            for n in range(total):
                address = IPv4Address("TCP", f"192.0.2.{n}", 1)
                factory.buildProtocol(address).makeConnection(
                    StringTransport(peerAddress=address)
                )
            self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.99", 1)))

    def test_deadline(self):
        """
        Each listener's connections are closed at the configured request
        deadline, on the server's clock.
        """
        for name in ("api", "console"):
            reactor, factory = self.listener(name, HttpLimits(request_deadline=3))
            address = IPv4Address("TCP", "192.0.2.7", 1)
            transport = StringTransport(peerAddress=address)
            factory.buildProtocol(address).makeConnection(transport)
            reactor.advance(2.9)
            self.assertFalse(transport.disconnecting)
            reactor.advance(0.1)
            self.assertTrue(transport.disconnecting)


class HostNameTests(SynchronousTestCase):
    def test_option_checked(self):
        """
        C{--hostname} must be a name a hello can carry.
        """
        options = tap.Options()
        self.assertRaises(
            usage.UsageError, options.parseOptions, ["--hostname", "it_srv1"]
        )
        options = tap.Options()
        options.parseOptions(["--hostname", "it-srv1.example"])
        self.assertEqual(options["hostname"], "it-srv1.example")

    def test_machine_name_checked_at_start(self):
        """
        Without C{--hostname}, a machine name that a hello cannot carry
        stops the server at start with one line naming the fix, rather
        than failing every authentication later.
        """
        self.patch(socket, "gethostname", lambda: "build_server")
        options = tap.Options()
        options.parseOptions(["--data", self.mktemp()])
        error = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertIn("'build_server'", str(error))
        self.assertIn("--hostname", str(error))


class SettingsTests(SynchronousTestCase):
    def test_enrollment_is_a_choice(self):
        """
        A server enrolls only when given a master key, and one without
        says so by L{ENROLLMENT_OFF}: then it has no enrollment, rotation,
        reconnection or tracking rules.
        """
        self.assertFalse(ENROLLMENT_OFF.enabled)
        self.assertTrue(EnrollmentSettings(new_master_key(self)).enabled)
        server = make_server(MemoryReactorClock(), enrollment=ENROLLMENT_OFF)
        self.assertEqual(
            (server.enrollment, server.rotation, server.reconnection, server.tracking),
            (None, None, None, None),
        )

    def test_idle_timeout(self):
        """
        A rotation connection may stay quiet for a profile's allowed
        silence: the interval, its jitter and the grace.
        """
        timing = Timing(rotation_interval=60.0, rotation_grace=30.0)
        self.assertEqual(timing.idle_timeout, silence_allowed(60.0, 30.0))
        self.assertEqual(timing.idle_timeout, 60.0 * 1.1 + 30.0)

    def test_options_parse_into_settings(self):
        """
        The timers and limits given on the command line reach the
        settings the server is built from.
        """
        options = tap.Options()
        options.parseOptions(
            ["--auth-timeout", "7", "--rotation-interval", "120",
             "--hash-threads", "3", "--login-grace", "0"]
        )
        self.assertEqual(
            (options.timing.auth_timeout, options.timing.rotation_interval),
            (7.0, 120.0),
        )
        self.assertEqual(
            (options.capacity.hash_threads, options.capacity.login_grace), (3, 0.0)
        )

    def test_verify_api_options(self):
        """
        The verification API's options reach its settings.
        """
        options = tap.Options()
        options.parseOptions(
            ["--verify-ou", "suto-hosts", "--api-in-flight", "2",
             "--api-per-minute", "9", "--api-max-deadline", "12"]
        )
        settings = options.verify_api
        self.assertEqual(
            (settings.in_flight, settings.per_minute, settings.max_deadline),
            (2, 9, 12.0),
        )
        self.assertEqual(options.roles.verify.units, {"suto-hosts"})


class LegacyListenerTests(SynchronousTestCase):
    def test_legacy_listener(self):
        """
        The legacy listener speaks the 1.3.2 framing and only the classic
        challenge, even on a server that enrolls, and the server warns
        that it is on.
        """
        reactor = MemoryReactorClock()
        with capturedLogs() as events:
            server = make_server(
                reactor,
                enrollment=EnrollmentSettings(new_master_key(self)),
                listeners=Listeners(legacy=TCP4ServerEndpoint(reactor, 2021)),
            )
        [listener] = server.listeners
        factory = listener._factory
        self.assertIs(factory.framing, wire.Framing.LEGACY)
        self.assertEqual((factory.enrollment, factory.rotation), (None, None))
        self.assertEqual(factory.offers(), frozenset())
        self.assertTrue(
            any("legacy listener is on" in event["log_format"] for event in events)
        )


class _Port:
    """
    A listening port that records being closed.
    """

    closed = False

    def getHost(self):
        return "127.0.0.1:2021"

    def stopListening(self):
        self.closed = True


class _Endpoint:
    def __init__(self, result):
        self.result = result

    def listen(self, factory):
        return self.result


class _Database:
    """
    Stands for the database thread: records whether it was started
    (nothing runs on it here).
    """

    started = False

    def startService(self):
        self.started = True

    def run(self, function, *arguments):
        raise AssertionError("nothing runs on the database thread here")


class StartTests(SynchronousTestCase):
    """
    A server that cannot open every listener does not start.
    """

    def server(self, database=None):
        port = _Port()
        taken = fail(CannotListenError(None, b"/x/admin.sock", "Cannot acquire lock"))
        with capturedLogs():
            server = make_server(
                MemoryReactorClock(),
                listeners=Listeners(
                    devices=(_Endpoint(succeed(port)),),
                    admin=OptionEndpoint("--admin", "unix:/x/admin.sock", _Endpoint(taken)),
                ),
                database=database,
            )
        return server, port

    def test_all_or_none(self):
        """
        A listener that cannot listen stops the start with one line naming
        its option, and closes the listeners already open.
        """
        server, port = self.server()
        error = self.assertRaises(CannotListen, server.privilegedStartService)
        self.assertEqual(
            error.code, "suto: cannot start: --admin unix:/x/admin.sock: cannot acquire lock"
        )
        self.assertTrue(port.closed)

    def test_listeners_first(self):
        """
        Started outside twistd, the server still opens its listeners
        before anything else runs: one that cannot listen leaves the
        database thread unstarted.
        """
        database = _Database()
        server, _ = self.server(database)
        self.assertRaises(CannotListen, server.startService)
        self.assertFalse(database.started)
        self.assertEqual(result_of(self, server.status())["listeners"], [])

    def test_status_lists_open_listeners(self):
        """
        C{status} lists the listeners actually open, with their bound
        addresses.
        """
        reactor = MemoryReactorClock()
        server = make_server(
            reactor, listeners=Listeners(metrics=TCP4ServerEndpoint(reactor, 9464))
        )
        self.assertEqual(result_of(self, server.status())["listeners"], [])
        server.privilegedStartService()
        [metrics] = result_of(self, server.status())["listeners"]
        self.assertEqual(metrics["name"], "metrics")
        self.assertIn("9464", metrics["address"])


class ServerWiringTests(SynchronousTestCase):
    """
    L{SutoServer} builds one audit log with the structured log and the
    configured sinks, and enrollment and rotation record through it.
    """

    def setUp(self):
        self.sink = RecordingSink()
        self.service_sink = ServiceSink()
        self.server = make_server(
            MemoryReactorClock(),
            enrollment=EnrollmentSettings(new_master_key(self)),
            alerting=Alerting(sinks=(self.sink, self.service_sink)),
        )

    def test_sinks(self):
        """
        Alerts go to the structured log and every configured sink; a sink
        that is a service runs with the server.
        """
        with capturedLogs() as logged:
            self.server.audit.record(NOW, "rate_limited", None, "10.0.0.9", "hellos")
        self.assertEqual([a.type for a in self.sink.alerts], ["rate_limited"])
        self.assertEqual(self.service_sink.alerts, self.sink.alerts)
        self.assertEqual(
            [e["alert_type"] for e in logged if "alert_type" in e], ["rate_limited"]
        )
        self.assertIs(self.service_sink.parent, self.server)

    def test_enrollment(self):
        """
        A refused enrollment is recorded and alerted through the server's
        audit log.
        """
        failure_of(
            self, self.server.enrollment.begin("bob", "10.0.0.9", NOW), EnrollmentRefused
        )
        self.assertEqual(
            [(a.type, a.profile, a.source) for a in self.sink.alerts],
            [("enrollment_failed", "bob", "10.0.0.9")],
        )

    def test_authentications(self):
        """
        Every authentication is recorded when it ends, as
        C{authentication_<verdict>}, with the device that answered and the
        reason; none is an alert.
        """
        clock = self.server._reactor
        clock.advance(NOW)
        rendezvous = self.server.rendezvous
        rejected = rendezvous.open("alice", ["10.0.0.9"])
        result_of(self, rendezvous.claim("10.0.0.9"))
        rendezvous.finish(rejected, Verdict.REJECTED, "the answer was wrong")
        rendezvous.open("bob", ["10.0.0.10"], timeout=5)
        clock.advance(5)
        accepted = rendezvous.open("carol", ["10.0.0.11"])
        result_of(self, rendezvous.claim("10.0.0.11"))
        rendezvous.finish(accepted, Verdict.ACCEPTED)
        self.assertEqual(
            [
                (e.time, e.event, e.username, e.source, e.reason, e.locations)
                for e in self.server.store.audit_events()
            ],
            [
                (
                    NOW,
                    "authentication_rejected",
                    "alice",
                    "10.0.0.9",
                    "the answer was wrong",
                    ("10.0.0.9",),
                ),
                (
                    NOW + 5,
                    "authentication_timeout",
                    "bob",
                    None,
                    "no device connected in time",
                    (),
                ),
                (
                    NOW + 5,
                    "authentication_accepted",
                    "carol",
                    "10.0.0.11",
                    "accepted",
                    ("10.0.0.11",),
                ),
            ],
        )
        self.assertEqual(self.sink.alerts, [])

    def fail_enrollments(self, source, times):
        """
        Have C{source} fail to enroll C{times} times, at L{NOW}.
        """
        clock = self.server._reactor
        clock.advance(NOW - clock.seconds())
        for _ in range(times):
            failure_of(
                self,
                self.server.enrollment.begin("bob", source, clock.seconds()),
                EnrollmentRefused,
            )

    def test_rate_limited(self):
        """
        The failure that gets a source refused raises one
        C{rate_limited} alert, recorded after it, naming the source and
        for how long it is refused; the failures after it raise none.
        The failed enrollments, which prove nothing, reach the sinks as
        the first and, once the interval ends, one standing for the rest.
        """
        self.fail_enrollments("10.0.0.9", 6)
        self.assertEqual(
            [a.type for a in self.sink.alerts],
            ["enrollment_failed", "rate_limited"],
        )
        self.server._reactor.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            [(a.type, a.count) for a in self.sink.alerts],
            [("enrollment_failed", 1), ("rate_limited", 1), ("enrollment_failed", 5)],
        )
        limited = self.sink.alerts[1]
        self.assertEqual(
            (limited.time, limited.profile, limited.source, limited.locations),
            (NOW, None, "10.0.0.9", ("10.0.0.9",)),
        )
        self.assertEqual(
            limited.reason,
            "10.0.0.9 failed too often: every connection from it is refused "
            "for 15 s",
        )
        events = [e.event for e in self.server.store.audit_events()]
        self.assertEqual(events.count("rate_limited"), 1)
        self.assertEqual(self.server.store.verify_audit(), [])

    def test_rate_limited_ipv6(self):
        """
        An IPv6 source is refused as its /64, and its alert says so.
        """
        self.fail_enrollments("2001:db8::5", 5)
        [limited] = [a for a in self.sink.alerts if a.type == "rate_limited"]
        self.assertEqual(
            limited.reason,
            "2001:db8::5 failed too often: every connection from "
            "2001:db8::/64 is refused for 15 s",
        )

    def test_rotation_clone(self):
        """
        A retired key used again is a C{clone_suspected} alert naming the
        new source and the address the profile was last used from.
        """
        store = self.server.store
        store.open_window(WINDOW)
        store.complete_enrollment(
            replace(PROFILE, key_id=numbered_key_id(0), generation=0)
        )
        store.commit_rotations([numbered_rotation("alice", 0, 1, NOW)])
        store.confirm_current("alice", numbered_key_id(1), NOW, "10.2.3.18")
        failure_of(
            self,
            self.server.rotation.check_key(
                "alice", numbered_key_id(0), "10.9.0.4", NOW + 1
            ),
            RotationRefused,
        )
        [alert] = self.sink.alerts
        self.assertEqual(
            (alert.type, alert.source, alert.locations),
            ("clone_suspected", "10.9.0.4", ("10.9.0.4", "10.2.3.18")),
        )
        self.assertEqual(store.verify_audit(), [])
