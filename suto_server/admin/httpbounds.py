# -*- test-case-name: tests.admin.test_httpbounds -*-
"""
The bounds an HTTP listener facing the network puts on its clients, so
that slow or idle connections cannot pile up: the verification API's and
the web console's alike.

  - A whole request (its head and its body) must arrive within
    L{REQUEST_DEADLINE} seconds, counted from the connection's start, or
    on a kept-alive connection from the end of the previous answer.  The
    idle timeout alone is not enough: it starts again on every byte, so a
    client sending one byte a minute would keep its connection for ever.
    While an answer is being made and written there is no deadline: an
    answer already under way is never cut.
  - One source (an IPv4 address or IPv6 /64, as the device listeners
    count them) holds at most so many connections, and the listener at
    most so many in all; past either, a new connection is refused before
    anything is read from it (the factory builds L{None}, so the TLS
    listener closes it before its handshake).  The per-source bound keeps
    one host from taking every connection; the total keeps many hosts,
    or one with many addresses, from taking every file descriptor.

The deadline is a timer on the site's injected L{IReactorTime}, one per
connection while it waits for a request.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import WrappingFactory
from twisted.web import http, server

from suto_server.rules.limits import holding, source_key, take

#: Seconds a whole request may take to arrive: a client on any network
#: sends a request of a few kilobytes in far less.
REQUEST_DEADLINE = 10.0


class DeadlineChannel(http.HTTPChannel):
    """
    An HTTP/1.1 channel closed when a request has not wholly arrived
    within C{deadline} seconds of the connection's start or of the end of
    the previous answer.

    @param deadline: those seconds.
    """

    _log = Logger()

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline
        self._waiting = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._wait()

    def allContentReceived(self) -> None:
        self._stop_waiting()
        super().allContentReceived()

    def requestDone(self, request) -> None:
        # Waiting starts before Twisted reads the requests it buffered
        # while answering: one of them may arrive whole at once.  A
        # connection not kept alive is closed by Twisted instead.
        if self.persistent:
            self._wait()
        super().requestDone(request)

    def connectionLost(self, reason) -> None:
        self._stop_waiting()
        super().connectionLost(reason)

    def _wait(self) -> None:
        self._stop_waiting()
        self._waiting = self.callLater(self._deadline, self._too_slow)

    def _stop_waiting(self) -> None:
        if self._waiting is not None:
            if self._waiting.active():
                self._waiting.cancel()
            self._waiting = None

    def _too_slow(self) -> None:
        self._waiting = None
        self._log.info(
            "closing a connection whose request did not arrive within "
            "{deadline} seconds",
            deadline=self._deadline,
        )
        # Twisted's own close of a timed-out connection: lose it, and
        # abort it if the peer does not let it go.
        self.timeoutConnection()


class DeadlineSite(server.Site):
    """
    A site whose connections are L{DeadlineChannel}s, timed (the deadline
    and the idle timeout alike) on the given clock, with no tracebacks
    shown and no line logged per connection.

    @param idle: seconds a connection may stay silent.
    @param deadline: seconds a whole request may take to arrive.
    @param forms: whether a POST body sent as an HTML form is parsed into
        the request's arguments, as Twisted does by default.  A site whose
        resources read JSON only says C{False}: Twisted then skips parsing
        each POST's C{Content-Type} through the standard library's
        C{email} package (about 40 microseconds a request, the largest
        single cost of an admin request outside the resource), and never
        runs its multipart parser on a body nobody reads.
    """

    def __init__(
        self,
        root,
        reactor: IReactorTime,
        idle: float,
        deadline: float = REQUEST_DEADLINE,
        forms: bool = True,
    ) -> None:
        super().__init__(
            root, timeout=idle, reactor=reactor, parsePOSTFormSubmission=forms
        )
        self.request_deadline = deadline
        self.displayTracebacks = False
        self.noisy = False

    def protocol(self) -> DeadlineChannel:
        return DeadlineChannel(self.request_deadline)


class ConnectionBounds(WrappingFactory):
    """
    At most C{per_source} connections from one source, and C{total} in
    all, at once; past either, a new connection is refused (the factory
    builds L{None}).
    """

    # Its start and stop would log the factory's repr on every listener.
    noisy = False

    def __init__(
        self, wrapped, clock: IReactorTime, *, per_source: int, total: int
    ) -> None:
        super().__init__(wrapped)
        self._clock = clock
        self._held = holding(per_source)
        self._total = total

    def buildProtocol(self, addr):
        if len(self.protocols) >= self._total:
            return None
        key = source_key(getattr(addr, "host", None))
        if key is not None and not take(self._held, key, self._clock.seconds()):
            return None
        return super().buildProtocol(addr)

    def unregisterProtocol(self, protocol) -> None:
        super().unregisterProtocol(protocol)
        key = source_key(getattr(protocol.getPeer(), "host", None))
        if key is not None:
            self._held.closed(key, settled=True)
