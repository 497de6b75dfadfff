"""
The assembly of the server: which listener serves which conversation, the
one audit log its rules record through, and the SIGHUP handler that
reloads its certificate.
"""

import os
import signal
import socket
from dataclasses import replace

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.net import certificate
from suto_server.net.tls import server_endpoint
from suto_server.rules.enrollment import EnrollmentRefused
from suto_server.rules.rendezvous import Verdict
from suto_server.rules.rotation import RotationRefused
from suto_server.service import ReloadOnHangup, SutoServer
from suto_server.store.memory import MemoryStore
from tests.support.masterkey import new_master_key
from tests.support.sinks import RecordingSink, ServiceSink
from tests.support.store_suite import (
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
            server = SutoServer(
                reactor,
                store=MemoryStore(),
                master_key=new_master_key(self),
                listen=listen,
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
            (factory.enrollment, factory.rotation, factory.reconnection, factory.tracking),
            (None, None, None, None),
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
        self.assertIs(factory.enrollment, server.enrollment)
        self.assertIs(factory.rotation, server.rotation)
        self.assertIs(factory.reconnection, server.reconnection)
        self.assertIs(factory.tracking, server.tracking)
        self.assertFalse(
            any("plaintext" in event.get("log_format", "") for event in events)
        )


class TLSListenTests(SynchronousTestCase):
    """
    L{tap.tls_listen}: which certificate the TLS listener serves.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)

    def generated(self):
        return [
            os.path.exists(os.path.join(self.data, name))
            for name in (certificate.KEY_FILE, certificate.CERT_FILE)
        ]

    def test_default(self):
        """
        With no listener configured the server listens with TLS on port
        2021, serving a certificate generated in the data folder with a
        key only its owner can read.
        """
        with capturedLogs() as events:
            description = tap.tls_listen(self.data, "it-srv1.example", None)
        self.assertTrue(description.startswith("ssl:2021:privateKey="))
        self.assertEqual(self.generated(), [True, True])
        key = os.path.join(self.data, certificate.KEY_FILE)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertTrue(any("fingerprint" in event for event in events))

    def test_interface_without_key(self):
        """
        An C{ssl:} listener that only binds an interface (here IPv6
        loopback) serves the generated certificate: choosing where to
        listen needs no certificate files.
        """
        description = tap.tls_listen(
            self.data, "it-srv1.example", r"ssl:2021:interface=\:\:1"
        )
        self.assertEqual(self.generated(), [True, True])
        reactor = MemoryReactor()
        server_endpoint(reactor, description).listen(Factory())
        [(port, _, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (2021, "::1"))

    def test_own_certificate(self):
        """
        A listener that names its key, by name or as its second argument,
        and a listener that is not TLS, are used as they are, and no
        certificate is generated.
        """
        for description in [
            "ssl:2021:privateKey=/etc/suto/tls/key.pem:certKey=/etc/suto/tls/chain.pem",
            "ssl:2021:/etc/suto/tls/both.pem",
            r"ssl:port=2021:interface=\:\:1:privateKey=/etc/suto/tls/key.pem",
            "tcp:2021",
        ]:
            self.assertEqual(
                tap.tls_listen(self.data, "it-srv1.example", description),
                description,
            )
        self.assertEqual(self.generated(), [False, False])


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


class ThreadCallRecorder:
    """
    A reactor that records what C{callFromThread} is asked to run.
    """

    def __init__(self):
        self.calls = []

    def callFromThread(self, f, *args, **kwargs):
        self.calls.append((f, args, kwargs))


class ReloadOnHangupTests(SynchronousTestCase):
    """
    L{ReloadOnHangup} while running owns the SIGHUP handler.
    """

    def setUp(self):
        self.reactor = ThreadCallRecorder()
        self.reloads = []
        self.service = ReloadOnHangup(self.reactor, lambda: self.reloads.append(1))
        self.previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGHUP, self.previous)

    def test_hangup_reloads_on_the_reactor(self):
        """
        The handler installed at start does not reload inside the signal
        handler: it hands the reload to the reactor's C{callFromThread}.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        handler = signal.getsignal(signal.SIGHUP)
        handler(signal.SIGHUP, None)
        self.assertEqual(self.reloads, [])
        [(f, args, kwargs)] = self.reactor.calls
        self.assertEqual((args, kwargs), ((), {}))
        f()
        self.assertEqual(self.reloads, [1])

    def test_stop_restores_previous_handler(self):
        """
        Stopping the service puts back the handler that was there before
        it started.
        """
        self.service.startService()
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.assertEqual(self.reactor.calls, [])


class ServerWiringTests(SynchronousTestCase):
    """
    L{SutoServer} builds one audit log with the structured log and the
    configured sinks, and enrollment and rotation record through it.
    """

    def setUp(self):
        self.sink = RecordingSink()
        self.service_sink = ServiceSink()
        self.server = SutoServer(
            MemoryReactorClock(),
            store=MemoryStore(),
            master_key=new_master_key(self),
            sinks=[self.sink, self.service_sink],
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
        self.assertRaises(
            EnrollmentRefused, self.server.enrollment.begin, "bob", "10.0.0.9", NOW
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
        rendezvous.claim("10.0.0.9")
        rendezvous.finish(rejected, Verdict.REJECTED, "the answer was wrong")
        rendezvous.open("bob", ["10.0.0.10"], timeout=5)
        clock.advance(5)
        accepted = rendezvous.open("carol", ["10.0.0.11"])
        rendezvous.claim("10.0.0.11")
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
            self.assertRaises(
                EnrollmentRefused,
                self.server.enrollment.begin,
                "bob",
                source,
                clock.seconds(),
            )

    def test_rate_limited(self):
        """
        The failure that gets a source refused raises one
        C{rate_limited} alert, recorded after it, naming the source and
        for how long it is refused; the failures after it raise none.
        """
        self.fail_enrollments("10.0.0.9", 4)
        self.assertEqual(
            [a.type for a in self.sink.alerts],
            ["enrollment_failed"] * 3 + ["rate_limited", "enrollment_failed"],
        )
        limited = self.sink.alerts[3]
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
        self.fail_enrollments("2001:db8::5", 3)
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
        self.assertRaises(
            RotationRefused,
            self.server.rotation.check_key,
            "alice",
            numbered_key_id(0),
            "10.9.0.4",
            NOW + 1,
        )
        [alert] = self.sink.alerts
        self.assertEqual(
            (alert.type, alert.source, alert.locations),
            ("clone_suspected", "10.9.0.4", ("10.9.0.4", "10.2.3.18")),
        )
        self.assertEqual(store.verify_audit(), [])
