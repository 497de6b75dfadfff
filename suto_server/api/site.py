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
is closed, so connections that hold nothing cannot pile up.
"""

from __future__ import annotations

from twisted.web import server

from suto_server.admin.httpjson import MAX_BODY

#: Seconds an idle connection of the site is kept: longer than any
#: deadline a verification may have.
IDLE_TIMEOUT = 60


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
