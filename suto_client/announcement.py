# -*- test-case-name: tests.client.test_announcement -*-
"""
Learning the server's address from the hello that announces an
enrollment window.

When IT opens a window, the server sends the SUTO hello for the user to
the window's location (docs/PROTOCOL.md §8.1), so that the endpoint there
need not be told where the server is: C{suto-client enroll} without
C{--server} waits for that hello and enrolls with its sender.

A hello is not authenticated; anyone on the network can send one.  It
only says where to connect: the pin or CA bundle the operator gives still
decides which server is trusted, so a forged hello can make an
enrollment fail, never succeed with another server.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from suto_server.core import wire


class NoAnnouncement(Exception):
    """
    No hello for the user came within the wait.
    """


class AnnouncementListener(DatagramProtocol):
    """
    Waits for the first well-formed hello for one user; every other
    datagram is dropped.
    """

    log = Logger()

    def __init__(self, user: str, clock: IReactorTime, wait: float) -> None:
        """
        @param user: the user the window was opened for.
        @param clock: times the wait.
        @param wait: seconds to wait once listening.
        """
        self._user = user
        self._clock = clock
        self._wait = wait
        self._expiry = None
        self.heard: Deferred[str] = Deferred()
        """Fires with the address of the hello's sender, or fails with
        L{NoAnnouncement}."""

    def startProtocol(self) -> None:
        self._expiry = self._clock.callLater(self._wait, self._expire)

    def stopProtocol(self) -> None:
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()

    def datagramReceived(self, datagram: bytes, addr) -> None:
        if self.heard.called:
            return
        try:
            message = wire.parse_datagram(datagram)
        except wire.ProtocolError:
            return
        if isinstance(message, wire.Hello) and message.user == self._user:
            self.log.info(
                "hello for {user} from {server}", user=self._user, server=addr[0]
            )
            self._expiry.cancel()
            self.heard.callback(addr[0])

    def _expire(self) -> None:
        self.heard.errback(
            NoAnnouncement(
                f"no hello for {self._user} came within {self._wait:g} s"
            )
        )


def wait_for_announcement(
    reactor: IReactorUDP, user: str, port: int, interface: str, wait: float
) -> Deferred[str]:
    """
    Listen on UDP C{port} at C{interface} (all addresses when empty) for
    up to C{wait} seconds for a hello for C{user}, and stop listening once
    it came or the wait is over.

    @param reactor: provides UDP and time.
    @return: a L{Deferred} firing with the sender's IP address, or failing
        with L{NoAnnouncement}.
    @raise twisted.internet.error.CannotListenError: the port is taken
        (by the running agent, for one).
    """
    listener = AnnouncementListener(user, reactor, wait)
    listening = reactor.listenUDP(port, listener, interface=interface)

    def stop(result):
        stopped = listening.stopListening()
        if stopped is None:
            return result
        return stopped.addCallback(lambda _: result)

    return listener.heard.addBoth(stop)
