# -*- test-case-name: tests.admin.test_api_enroll,tests.admin.test_blacklist -*-
"""
The admin API's enrollment windows and blacklist: C{/v1/enroll},
C{/v1/windows}, C{/v1/cancel}, C{/v1/blacklist} and C{/v1/unblock}, which
C{suto-admin}'s L{suto_server.admin.enrollment} commands call.

Each answers once the rules have read and changed the store (from the
database pool, for a store across the network); the errors they raise
are answered as L{suto_server.admin.httpjson.answer_later} says.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web import resource

from suto_server.admin.httpjson import answer, answer_later, read_json
from suto_server.admin.operations import (
    cancel_window,
    open_window,
    operator_of,
    unblock,
)


class EnrollResource(resource.Resource):
    """
    C{POST /v1/enroll} with C{{"user", "location", "timeout"?, "password"?,
    "replace"?, "wide"?}}: opens an enrollment window and answers with the one-time
    password (the only time it is ever shown), the window and the
    certificate fingerprints for the device to pin.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_POST(self, request):
        return answer(
            request,
            lambda: open_window(self._desk, read_json(request), operator_of(request)),
            self.log,
        )


class WindowsResource(resource.Resource):
    """
    C{GET /v1/windows}: the open enrollment windows.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_GET(self, request):
        d = maybeDeferred(self._desk.list)
        return answer_later(
            request, d.addCallback(lambda windows: {"windows": windows}), self.log
        )


class CancelResource(resource.Resource):
    """
    C{POST /v1/cancel} with C{{"user"}}: close that user's window.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_POST(self, request):
        return answer(
            request,
            lambda: cancel_window(self._desk, read_json(request), operator_of(request)),
            self.log,
        )


class BlacklistResource(resource.Resource):
    """
    C{GET /v1/blacklist}: the blacklisted profiles.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, reconnection) -> None:
        super().__init__()
        self._reconnection = reconnection

    def render_GET(self, request):
        d = maybeDeferred(self._reconnection.blacklist_report)
        return answer_later(
            request, d.addCallback(lambda entries: {"blacklist": entries}), self.log
        )


class UnblockResource(resource.Resource):
    """
    C{POST /v1/unblock} with C{{"user"}}: lift that profile's blacklist
    entry, removing the profile (the device must enroll again).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, reconnection, clock) -> None:
        super().__init__()
        self._reconnection = reconnection
        self._clock = clock

    def render_POST(self, request):
        return answer(
            request,
            lambda: unblock(
                self._reconnection, self._clock, read_json(request), operator_of(request)
            ),
            self.log,
        )
