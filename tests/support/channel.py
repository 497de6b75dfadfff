# -*- test-case-name: tests.cluster.test_relay,tests.cluster.test_verify_relay,tests.cluster.test_presence -*-
"""
An in-memory stand-in for a PostgreSQL store's channel and claims
(L{suto_server.store.postgres.notices}), shared by the relays of the
processes on it in a test: every notice is delivered at once.
"""

from twisted.internet import reactor
from zope.interface import implementer

from suto_server.cluster.notice import seal_notice
from suto_server.cluster.relay import Relay
from suto_server.cluster.verify_relay import VerifyRelay
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.clustering import IClusteredStore
from suto_server.store.errors import StoreError

#: The notice key of the processes in a test (a deployment's is derived
#: from its master key).
NOTICE_KEY = bytes(range(32))


def sealed(text):
    """
    @return: the notice C{text} as a process of the test sends it.
    """
    return seal_notice(NOTICE_KEY, text)


class Channel:
    """
    The store's channel and claims, shared by the sessions of the
    processes on it; a notice reaches every relay at once.
    """

    def __init__(self):
        self.relays = []
        self.claims = {}
        self.down = False


@implementer(IClusteredStore)
class ChannelSession:
    """
    One process's session on a L{Channel}.
    """

    def __init__(self, channel):
        self._channel = channel

    def announce(self, notice):
        if self._channel.down:
            raise StoreError("announcing to the other processes failed")
        for relay in self._channel.relays:
            relay.deliver(notice)

    def take_claim(self, key):
        if self._channel.down:
            raise StoreError("claiming a request failed")
        return self._channel.claims.setdefault(key, self) is self

    def release_claim(self, key):
        if self._channel.claims.get(key) is self:
            del self._channel.claims[key]


class ChannelProcess:
    """
    One server process on a L{Channel}: its relay, its live connections
    and the verify relay over them, time on C{clock}; C{verify} goes to
    the L{VerifyRelay}.
    """

    def __init__(self, channel, clock, **verify):
        self.clock = clock
        self.relay = Relay(
            reactor, ChannelSession(channel), clock=clock, key=NOTICE_KEY
        )
        channel.relays.append(self.relay)
        self.relay.serve(Rendezvous(clock, timeout=5, peers=self.relay))
        self.live = LiveSessions()
        self.verifications = VerifyRelay(clock, self.relay, self.live, **verify)
        self.relay.serve_verifications(self.verifications)
