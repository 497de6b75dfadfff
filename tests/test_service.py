"""
The assembly of the server: which listener serves which conversation, and
what its settings say.
"""

import socket

from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.core import wire
from suto_server.core.timing import silence_allowed
from suto_server.net.listening import CannotListen, OptionEndpoint
from suto_server.settings import (
    ENROLLMENT_OFF,
    EnrollmentSettings,
    Listeners,
    Timing,
)
from tests.rules.test_enrollment import new_master_key
from tests.support.server import make_server


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
        self.assertEqual(server.status()["listeners"], [])

    def test_status_lists_open_listeners(self):
        """
        C{status} lists the listeners actually open, with their bound
        addresses.
        """
        reactor = MemoryReactorClock()
        server = make_server(
            reactor, listeners=Listeners(metrics=TCP4ServerEndpoint(reactor, 9464))
        )
        self.assertEqual(server.status()["listeners"], [])
        server.privilegedStartService()
        [metrics] = server.status()["listeners"]
        self.assertEqual(metrics["name"], "metrics")
        self.assertIn("9464", metrics["address"])
