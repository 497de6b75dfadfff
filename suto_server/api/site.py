# -*- test-case-name: tests.api.test_verify_resource -*-
"""
The verification API's site: the guarded root (L{ApiRoot}) behind
requests whose bodies are bounded as they arrive.

Twisted's request keeps a whole body, however large, before any resource
reads it.  On a network listener that is memory any caller could take, so
a request here keeps at most one byte more than the largest body any of
its resources reads (L{MAX_BODY}) and drops the rest as it comes; the
resource then sees a body over its bound and answers 413 (or 400, the
admin resources' answer).  No answer may be cached.  A connection idle
for L{IDLE_TIMEOUT} seconds is closed, and so is one whose request has not
wholly arrived by its deadline; one source may hold at most
L{PER_SOURCE} connections and the listener so many in all, the others
closed before TLS (L{suto_server.admin.httpbounds}), so connections that
hold nothing cannot pile up.
"""

from __future__ import annotations

from twisted.web import server

from suto_server.admin.httpbounds import REQUEST_DEADLINE, DeadlineSite
from suto_server.admin.httpjson import MAX_BODY

#: Seconds an idle connection of the site is kept: longer than any
#: deadline a verification may have.
IDLE_TIMEOUT = 60

#: Connections one source may hold on the listener at once: a host's
#: verifications in flight, each on a connection of its own, and some.
PER_SOURCE = 16


class BoundedRequest(server.Request):
    """
    A request keeping at most C{MAX_BODY + 1} bytes of its body, whose
    answer, whatever it is (a verdict, an admin report, a refusal, an
    error page of Twisted's own), says C{Cache-Control: no-store}: none
    of them is fit to be kept by a cache and served again.
    """

    def process(self) -> None:
        self.setHeader(b"cache-control", b"no-store")
        super().process()

    def handleContentChunk(self, data: bytes) -> None:
        room = MAX_BODY + 1 - self.content.tell()
        if room > 0:
            super().handleContentChunk(data[:room])


class ApiSite(DeadlineSite):
    """
    The site of the verification API's listener.  It writes no access log
    line: every request is audited with its caller, which says more.

    @param deadline: seconds a whole request may take to arrive.
    """

    requestFactory = BoundedRequest

    def __init__(self, root, reactor, deadline: float = REQUEST_DEADLINE) -> None:
        super().__init__(root, reactor, IDLE_TIMEOUT, deadline)

    def log(self, request) -> None:
        "No access log."
