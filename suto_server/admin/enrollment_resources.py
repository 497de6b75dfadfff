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
    flag,
    read_json,
    seconds,
    user_field,
    write_json,
)
from suto_server.core import wire
from suto_server.locations import LocationError
from suto_server.store.errors import ProfileExists


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
            body = read_json(request)
            user = body.get("user")
            if not wire.can_enroll(user):
                raise BadRequest("'user' must be a valid account name")
            location = body.get("location")
            if not isinstance(location, str) or not location:
                raise BadRequest("'location' must name an address, network or location")
            timeout = seconds(body, "timeout", 120, 86400)
            password = body.get("password")
            if password is not None and (
                not isinstance(password, str)
                or not 8 <= len(password) <= 256
                or not password.isprintable()
            ):
                raise BadRequest("'password' must be 8 to 256 printable characters")
            replace, wide = (flag(body, name) for name in ("replace", "wide"))
            d = self._desk.open(user, location, timeout, password, replace, wide)
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
        try:
            user = user_field(read_json(request))
        except BadRequest as error:
            return write_json(request, 400, {"error": str(error)})
        if not self._desk.cancel(user):
            return write_json(request, 404, {"error": f"no open window for {user}"})
        return write_json(request, 200, {"user": user, "cancelled": True})


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
        try:
            user = user_field(read_json(request))
        except BadRequest as error:
            return write_json(request, 400, {"error": str(error)})
        if not self._reconnection.unblock(user, self._clock.seconds()):
            return write_json(request, 404, {"error": f"{user} is not blacklisted"})
        return write_json(request, 200, {"user": user, "unblocked": True})
