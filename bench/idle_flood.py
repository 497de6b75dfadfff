"""
A flood of idle connections from many addresses, as issue 22 describes:
it holds close to a server's starting-connection cap without any source
crossing the per-source limits or earning a penalty.

Each of C{connections} connections comes from one of C{sources}
loopback addresses of its own (127.3.x.y; Linux routes all of 127/8 to
the loopback interface), spread evenly.  A connection says nothing and
closes itself after a draw from L{HOLD}, under the server's
C{--exchange-timeout}, so the server never drops one for silence; a new
one replaces it at once.  One the server closes first (refused over
C{MaxStartups}) is replaced after L{RETRY}.
"""

from __future__ import annotations

import ipaddress
import random

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

#: Seconds a flood connection stays open: under the server's default
#: --exchange-timeout (10 s), so none is dropped for silence.
HOLD = (5.0, 9.0)

#: Seconds before a flood connection the server closed is replaced.
RETRY = 0.05

#: The first flood source: a /16 of the loopback range the devices
#: (127.0.x.y) do not use.
_FLOOD_BASE = ipaddress.IPv4Address("127.3.0.0")

#: The most flood sources and connections one run may use.
MAX_SOURCES = 1000
MAX_CONNECTIONS = 10000


def flood_address(index: int) -> str:
    """
    The loopback address of flood source C{index} (from 0), skipping
    addresses that end in .0 or .255.

    @raise ValueError: C{index} is out of range.
    """
    if not 0 <= index < MAX_SOURCES:
        raise ValueError(f"flood source index must be from 0 to {MAX_SOURCES - 1}")
    block, host = divmod(index, 254)
    return str(_FLOOD_BASE + block * 256 + host + 1)


class _Idle(Protocol):
    """
    One flood connection: it says nothing.
    """

    def __init__(self, flood: Flood, source: str) -> None:
        self.flood = flood
        self.source = source
        self.hold = None

    def connectionMade(self) -> None:
        self.flood._made(self)

    def connectionLost(self, reason) -> None:
        self.flood._lost(self)


class Flood:
    """
    Idle connections to the server from many addresses, each replaced as
    it ends, until L{stop}.

    @ivar held: the flood connections open now.
    @ivar attempts: connections started.
    @ivar turned_away: connections the server closed before the flood
        did (refused over a limit).
    """

    def __init__(
        self,
        reactor,
        port: int,
        sources: int,
        connections: int,
        draw: random.Random,
    ) -> None:
        self._reactor = reactor
        self._port = port
        self._sources = [flood_address(index) for index in range(sources)]
        self._connections = connections
        self._draw = draw
        self._running = False
        self._open: set[_Idle] = set()
        self._waiting: set = set()
        self.held = 0
        self.attempts = 0
        self.turned_away = 0

    def start(self) -> None:
        self._running = True
        for index in range(self._connections):
            self._connect(self._sources[index % len(self._sources)])

    def stop(self) -> Deferred:
        """
        Stop replacing connections and close those open.

        @return: a L{Deferred} firing once they are closed.
        """
        self._running = False
        for call in self._waiting:
            call.cancel()
        self._waiting.clear()
        for protocol in list(self._open):
            protocol.transport.abortConnection()
        return deferLater(self._reactor, 0.5, lambda: None)

    def _connect(self, source: str) -> None:
        if not self._running:
            return
        self.attempts += 1
        endpoint = TCP4ClientEndpoint(
            self._reactor, "127.0.0.1", self._port, timeout=5, bindAddress=(source, 0)
        )
        connectProtocol(endpoint, _Idle(self, source)).addErrback(
            lambda _: self._later(RETRY, source)
        )

    def _later(self, delay: float, source: str) -> None:
        if not self._running:
            return
        call = self._reactor.callLater(delay, self._replace, source)
        self._waiting.add(call)

    def _replace(self, source: str) -> None:
        self._waiting = {call for call in self._waiting if call.active()}
        self._connect(source)

    def _made(self, protocol: _Idle) -> None:
        self.held += 1
        self._open.add(protocol)
        protocol.hold = self._reactor.callLater(
            self._draw.uniform(*HOLD), protocol.transport.loseConnection
        )

    def _lost(self, protocol: _Idle) -> None:
        self.held -= 1
        self._open.discard(protocol)
        if not protocol.hold.active():
            self._later(0, protocol.source)
            return
        protocol.hold.cancel()
        if self._running:
            self.turned_away += 1
            self._later(RETRY, protocol.source)
