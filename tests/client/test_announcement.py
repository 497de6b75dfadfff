"""
L{suto_client.announcement}: waiting for the hello that announces an
enrollment window, with a task.Clock and a recording UDP reactor.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_client.announcement import (
    AnnouncementListener,
    NoAnnouncement,
    wait_for_announcement,
)
from suto_server.core import wire

SERVER = ("192.0.2.10", 40000)


def hello(user="alice", host="it-srv1"):
    return wire.encode_hello(wire.Hello(user, host))


class ListeningPort:
    """
    What L{UDPClock.listenUDP} returns: stops its protocol when told.
    """

    def __init__(self, protocol):
        self.protocol = protocol
        self.listening = True

    def stopListening(self):
        self.listening = False
        self.protocol.doStop()


class UDPClock(task.Clock):
    """
    A L{task.Clock} that also listens on UDP, recording the ports.
    """

    def __init__(self):
        super().__init__()
        self.ports = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = ListeningPort(protocol)
        self.ports.append((port, interface, listening))
        protocol.makeConnection(listening)
        return listening


class AnnouncementListenerTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.listener = AnnouncementListener("alice", self.clock, 30)
        self.listener.makeConnection(None)

    def test_hello_for_user(self):
        """
        The first hello for the user, in any of its spellings, gives its
        sender's address.
        """
        for form in wire.HelloForm:
            clock = task.Clock()
            listener = AnnouncementListener("alice", clock, 30)
            listener.makeConnection(None)
            host = None if form is wire.HelloForm.UDP_HELLO else "it-srv1"
            listener.datagramReceived(
                wire.encode_hello(wire.Hello("alice", host, form)), SERVER
            )
            self.assertEqual(self.successResultOf(listener.heard), "192.0.2.10")
            self.assertEqual(clock.getDelayedCalls(), [])

    def test_other_datagrams(self):
        """
        A hello for another user, a malformed datagram and a check packet
        are dropped; the wait goes on and the next right hello counts.
        """
        self.listener.datagramReceived(hello(user="bob"), SERVER)
        self.listener.datagramReceived(b"SUTO_\xff@x+", SERVER)
        self.listener.datagramReceived(b"\x00" * 3000, SERVER)
        self.listener.datagramReceived(
            wire.encode_check(wire.Check(b"n" * 16, "alice")), SERVER
        )
        self.assertNoResult(self.listener.heard)
        self.listener.datagramReceived(hello(), ("192.0.2.11", 1))
        self.assertEqual(self.successResultOf(self.listener.heard), "192.0.2.11")

    def test_first_only(self):
        """
        Once a hello was heard, later ones change nothing.
        """
        self.listener.datagramReceived(hello(), SERVER)
        self.listener.datagramReceived(hello(), ("192.0.2.66", 1))
        self.assertEqual(self.successResultOf(self.listener.heard), "192.0.2.10")

    def test_wait_over(self):
        """
        No hello for the user within the wait fails with
        L{NoAnnouncement}, which says how long it waited.
        """
        self.clock.advance(29)
        self.assertNoResult(self.listener.heard)
        self.clock.advance(1)
        error = self.failureResultOf(self.listener.heard, NoAnnouncement)
        self.assertEqual(str(error.value), "no hello for alice came within 30 s")
        self.listener.datagramReceived(hello(), SERVER)

    def test_stopped(self):
        """
        A listener stopped before the wait is over leaves no timer behind.
        """
        self.listener.doStop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class WaitForAnnouncementTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = UDPClock()

    def test_heard(self):
        """
        It listens where it is told and stops listening once the hello
        came, before its result is delivered.
        """
        heard = wait_for_announcement(self.reactor, "alice", 2020, "192.0.2.55", 60)
        [(port, interface, listening)] = self.reactor.ports
        self.assertEqual((port, interface), (2020, "192.0.2.55"))
        listening.protocol.datagramReceived(hello(), SERVER)
        self.assertFalse(listening.listening)
        self.assertEqual(self.successResultOf(heard), "192.0.2.10")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_not_heard(self):
        """
        At the end of the wait it stops listening and fails.
        """
        heard = wait_for_announcement(self.reactor, "alice", 2020, "", 60)
        self.reactor.advance(60)
        [(_, _, listening)] = self.reactor.ports
        self.assertFalse(listening.listening)
        self.failureResultOf(heard, NoAnnouncement)
