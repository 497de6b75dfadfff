"""
The assembly of the server: which listener serves which conversation.
"""

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

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
