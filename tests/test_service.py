"""
The assembly of the server: which listener serves which conversation.
"""

import socket

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.service import SutoServer
from suto_server.store.memory import MemoryStore
from tests.test_enrollment import new_master_key


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
