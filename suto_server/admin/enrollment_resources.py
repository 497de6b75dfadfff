# -*- test-case-name: tests.admin.test_api_enroll,tests.admin.test_blacklist -*-
"""
The admin API's enrollment windows and blacklist: C{/v1/enroll},
C{/v1/windows}, C{/v1/cancel}, C{/v1/blacklist} and C{/v1/unblock}, which
C{suto-admin}'s L{suto_server.admin.enrollment} commands call.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import resource

from suto_server.admin.httpjson import (
    BadRequest,
    answer_later,
    read_json,
    write_json,
)
from suto_server.admin.operations import (
    ADMIN_SOCKET,
    NotFound,
    cancel_window,
    open_window,
    unblock,
)
from suto_server.locations import LocationError
from suto_server.store.errors import ProfileExists


def _act(request, action):
    """
    Answer C{request} with C{action(body)} of its JSON body: 400 when the
    body or a field is malformed, 404 when there is nothing to act on.
    """
    try:
        return write_json(request, 200, action(read_json(request)))
    except BadRequest as error:
        return write_json(request, 400, {"error": str(error)})
    except NotFound as error:
        return write_json(request, 404, {"error": str(error)})


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
        try:
            d = open_window(self._desk, read_json(request), ADMIN_SOCKET)
        except (BadRequest, LocationError) as error:
            return write_json(request, 400, {"error": str(error)})
        except ProfileExists as error:
            return write_json(request, 409, {"error": str(error)})
        return answer_later(request, d, self.log)


class WindowsResource(resource.Resource):
    """
    C{GET /v1/windows}: the open enrollment windows.
    """

    isLeaf = True

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_GET(self, request):
        return write_json(request, 200, {"windows": self._desk.list()})


class CancelResource(resource.Resource):
    """
    C{POST /v1/cancel} with C{{"user"}}: close that user's window.
    """

    isLeaf = True

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_POST(self, request):
        return _act(
            request, lambda body: cancel_window(self._desk, body, ADMIN_SOCKET)
        )


class BlacklistResource(resource.Resource):
    """
    C{GET /v1/blacklist}: the blacklisted profiles.
    """

    isLeaf = True

    def __init__(self, reconnection) -> None:
        super().__init__()
        self._reconnection = reconnection

    def render_GET(self, request):
        return write_json(
            request, 200, {"blacklist": self._reconnection.blacklist_report()}
        )


class UnblockResource(resource.Resource):
    """
    C{POST /v1/unblock} with C{{"user"}}: lift that profile's blacklist
    entry, removing the profile (the device must enroll again).
    """

    isLeaf = True

    def __init__(self, reconnection, clock) -> None:
        super().__init__()
        self._reconnection = reconnection
        self._clock = clock

    def render_POST(self, request):
        return _act(
            request,
            lambda body: unblock(self._reconnection, self._clock, body, ADMIN_SOCKET),
        )
