# -*- test-case-name: tests.api.test_verify_resource -*-
"""
The verification API's site: the guarded root (L{ApiRoot}) behind
requests whose bodies are bounded as they arrive.

Twisted's request keeps a whole body, however large, before any resource
reads it.  On a network listener that is memory any caller could take, so
a request here keeps at most one byte more than the largest body any of
its resources reads (L{MAX_BODY}) and drops the rest as it comes; the
resource then sees a body over its bound and answers 413 (or 400, the
admin resources' answer).  A connection idle for L{IDLE_TIMEOUT} seconds
is closed, and one source (an IPv4 address or IPv6 /64, as the device
listeners count them) may hold at most L{PER_SOURCE} connections, the
others closed before TLS, so connections that hold nothing cannot pile
up.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.protocols.policies import WrappingFactory
from twisted.web import server

from suto_server.admin.httpjson import MAX_BODY
from suto_server.api.callers import holding, take
from suto_server.rules.limits import source_key

#: Seconds an idle connection of the site is kept: longer than any
#: deadline a verification may have.
IDLE_TIMEOUT = 60

#: Connections one source may hold on the listener at once: a host's
#: verifications in flight, each on a connection of its own, and some.
PER_SOURCE = 16


class BoundedRequest(server.Request):
    """
    A request keeping at most C{MAX_BODY + 1} bytes of its body.
    """

    def handleContentChunk(self, data: bytes) -> None:
        room = MAX_BODY + 1 - self.content.tell()
        if room > 0:
            super().handleContentChunk(data[:room])


class ApiSite(server.Site):
    """
    The site of the verification API's listener.  It writes no access log
    line: every request is audited with its caller, which says more.
    """

    requestFactory = BoundedRequest

    def __init__(self, root, reactor=None) -> None:
        super().__init__(root, timeout=IDLE_TIMEOUT, reactor=reactor)
        self.displayTracebacks = False
        self.noisy = False

    def log(self, request) -> None:
        "No access log."


class ConnectionsPerSource(WrappingFactory):
    """
    At most C{most} connections from one source at once; a source over
    it is refused (the factory builds L{None}, so the TLS listener closes
    the connection before its handshake).
    """

    def __init__(self, wrapped, clock: IReactorTime, most: int = PER_SOURCE) -> None:
        super().__init__(wrapped)
        self._clock = clock
        self._held = holding(most)

    def buildProtocol(self, addr):
        key = source_key(getattr(addr, "host", None))
        if key is not None and not take(self._held, key, self._clock.seconds()):
            return None
        return super().buildProtocol(addr)

    def unregisterProtocol(self, protocol) -> None:
        super().unregisterProtocol(protocol)
        key = source_key(getattr(protocol.getPeer(), "host", None))
        if key is not None:
            self._held.closed(key, settled=True)
