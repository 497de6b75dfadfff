"""
The daemon's admin interface: JSON over HTTP on a UNIX socket in the data
folder (mode 0600, so only the daemon's own user and root reach it).

C{suto-admin} is its client.  Each resource validates its input fully and
answers errors as C{{"error": "..."}} with a 4xx status, so a script can
tell a bad request from a failed authentication.
"""

from __future__ import annotations

import json

from twisted.logger import Logger
from twisted.web import resource, server

from suto_server.core import wire
from suto_server.core.timestamps import iso_utc
from suto_server.locations import LocationError
from suto_server.net.discovery import parse_targets
from suto_server.rules.authenticator import Authenticator, UnknownAccount
from suto_server.rules.rendezvous import RequestConflict
from suto_server.store.errors import ProfileExists
from suto_server.store.records import MAX_TIME

#: Largest request body the admin API reads.
MAX_BODY = 16 * 1024


class BadRequest(ValueError):
    """The admin request is malformed; the message says how."""


def _write_json(request, status: int, body: dict) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(body).encode("utf-8") + b"\n"


def _read_json(request) -> dict:
    data = request.content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise BadRequest("request body too large")
    try:
        body = json.loads(data or b"{}")
    except (ValueError, RecursionError):
        # A body well under MAX_BODY can nest deeper than the decoder
        # recurses.
        raise BadRequest("request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


class AuthResource(resource.Resource):
    """
    C{POST /v1/auth} with C{{"user", "target", "accept"?, "timeout"?}}:
    answers when the verdict is in, with C{{"user", "verdict", "source",
    "reason"}}.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, authenticator: Authenticator, hello_port: int) -> None:
        super().__init__()
        self._authenticator = authenticator
        self._hello_port = hello_port

    def render_POST(self, request):
        try:
            user, targets, timeout = self._parse(_read_json(request))
            d = self._authenticator.authenticate(user, targets, timeout)
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})
        except UnknownAccount as error:
            return _write_json(request, 404, {"error": str(error)})
        except RequestConflict as error:
            return _write_json(request, 409, {"error": str(error)})
        except OSError as error:
            return _write_json(
                request,
                503,
                {"error": f"the hello could not be sent: {error.strerror or error}"},
            )
        self.log.info(
            "admin asked to authenticate {user} at {targets}",
            user=user,
            targets=",".join(str(t) for t in targets),
        )
        d.addCallback(
            lambda outcome: {
                "user": outcome.user,
                "verdict": outcome.verdict.value,
                "source": outcome.source,
                "reason": outcome.reason,
            }
        )
        return _answer_later(request, d, self.log)

    def _parse(self, body: dict):
        user = body.get("user")
        if not wire.is_valid_user(user):
            raise BadRequest("'user' must be a valid account name")
        target = body.get("target")
        if not isinstance(target, str) or not target:
            raise BadRequest("'target' must name an address or network")
        accept = body.get("accept")
        if accept is not None and not isinstance(accept, str):
            raise BadRequest("'accept' must be a string")
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= 600
        ):
            raise BadRequest("'timeout' must be seconds between 0 and 600")
        try:
            targets = parse_targets(target, self._hello_port, accept)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        return user, targets, timeout


class StatusResource(resource.Resource):
    """
    C{GET /v1/status}: the daemon is alive and what it is waiting for.
    """

    isLeaf = True

    def __init__(self, status) -> None:
        super().__init__()
        self._status = status

    def render_GET(self, request):
        return _write_json(request, 200, self._status())


class ReloadResource(resource.Resource):
    """
    C{POST /v1/reload}: re-read the TLS certificates without a restart.
    """

    isLeaf = True

    def __init__(self, reload) -> None:
        super().__init__()
        self._reload = reload

    def render_POST(self, request):
        return _write_json(request, 200, {"certificates": self._reload()})


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
            body = _read_json(request)
            user = body.get("user")
            if not wire.can_enroll(user):
                raise BadRequest("'user' must be a valid account name")
            location = body.get("location")
            if not isinstance(location, str) or not location:
                raise BadRequest("'location' must name an address, network or location")
            timeout = _seconds(body, "timeout", 120, 86400)
            password = body.get("password")
            if password is not None and (
                not isinstance(password, str)
                or not 8 <= len(password) <= 256
                or not password.isprintable()
            ):
                raise BadRequest("'password' must be 8 to 256 printable characters")
            replace, wide = (_flag(body, name) for name in ("replace", "wide"))
            d = self._desk.open(user, location, timeout, password, replace, wide)
        except (BadRequest, LocationError) as error:
            return _write_json(request, 400, {"error": str(error)})
        except ProfileExists as error:
            return _write_json(request, 409, {"error": str(error)})
        return _answer_later(request, d, self.log)


class WindowsResource(resource.Resource):
    """
    C{GET /v1/windows}: the open enrollment windows.
    """

    isLeaf = True

    def __init__(self, desk) -> None:
        super().__init__()
        self._desk = desk

    def render_GET(self, request):
        return _write_json(request, 200, {"windows": self._desk.list()})


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
            user = _read_json(request).get("user")
            if not wire.is_valid_user(user):
                raise BadRequest("'user' must be a valid account name")
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})
        if not self._desk.cancel(user):
            return _write_json(request, 404, {"error": f"no open window for {user}"})
        return _write_json(request, 200, {"user": user, "cancelled": True})


class BlacklistResource(resource.Resource):
    """
    C{GET /v1/blacklist}: the blacklisted profiles.
    """

    isLeaf = True

    def __init__(self, reconnection) -> None:
        super().__init__()
        self._reconnection = reconnection

    def render_GET(self, request):
        return _write_json(
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
            user = _read_json(request).get("user")
            if not wire.is_valid_user(user):
                raise BadRequest("'user' must be a valid account name")
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})
        if not self._reconnection.unblock(user, self._clock.seconds()):
            return _write_json(request, 404, {"error": f"{user} is not blacklisted"})
        return _write_json(request, 200, {"user": user, "unblocked": True})


def _since(request) -> float | None:
    """
    @return: the request's C{since} query argument, a POSIX time, or
        L{None} when it has none.
    @raise BadRequest: it is not a number from 0 to L{MAX_TIME}.
    """
    values = request.args.get(b"since")
    if not values:
        return None
    try:
        since = float(values[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        since = None
    if since is None or not 0 <= since <= MAX_TIME:
        raise BadRequest("'since' must be a POSIX time")
    return since


def _event_json(event) -> dict:
    """
    @return: an audit record as the admin API shows it.
    """
    return {
        "time": iso_utc(event.time),
        "timestamp": event.time,
        "event": event.event,
        "user": event.username,
        "source": event.source,
        "reason": event.reason,
        "locations": list(event.locations),
        "hash": event.hash.hex(),
    }


def _after_flush(request, audit, read, log):
    """
    Answer C{request} with C{read()} once every audit record made so far
    is written (the daemon writes them on its database thread), so that
    an operator reading the log right after an event sees it.
    """
    return _answer_later(request, audit.flushed().addCallback(lambda _: read()), log)


class AlertsResource(resource.Resource):
    """
    C{GET /v1/alerts?since=T}: the alerts at or after POSIX time C{T} (all
    without it), oldest first.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit

    def render_GET(self, request):
        try:
            since = _since(request)
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})

        def read():
            return {"alerts": [alert.to_json() for alert in self._audit.alerts(since)]}

        return _after_flush(request, self._audit, read, self.log)


class AuditResource(resource.Resource):
    """
    C{GET /v1/audit?since=T}: the audit records at or after POSIX time
    C{T} (all without it), oldest first; its child C{verify} checks the
    hash chain.
    """

    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit
        self.putChild(b"verify", AuditVerifyResource(audit))

    def render_GET(self, request):
        try:
            since = _since(request)
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})

        def read():
            return {"events": [_event_json(e) for e in self._audit.events(since)]}

        return _after_flush(request, self._audit, read, self.log)


class AuditVerifyResource(resource.Resource):
    """
    C{GET /v1/audit/verify}: whether the audit log's hash chain is intact,
    and every problem found when it is not.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit

    def render_GET(self, request):
        def read():
            problems = self._audit.verify()
            return {"intact": not problems, "problems": problems}

        return _after_flush(request, self._audit, read, self.log)


class ClientsResource(resource.Resource):
    """
    C{GET /v1/clients}: one row per enrolled profile: where it is, whether
    it is connected, when it was last seen and last rotated, its key id
    and that key's age.  No key material (key ids are public names).
    """

    isLeaf = True

    def __init__(self, clients) -> None:
        super().__init__()
        self._clients = clients

    def render_GET(self, request):
        if request.args:
            return _write_json(request, 400, {"error": "no arguments are taken"})
        return _write_json(request, 200, {"clients": self._clients()})


def _user_argument(request) -> str:
    """
    @return: the request's one C{user} query argument.
    @raise BadRequest: it is missing, repeated, not a valid account name,
        or the request has other arguments.
    """
    values = request.args.get(b"user")
    if set(request.args) != {b"user"} or len(values) != 1:
        raise BadRequest("exactly one 'user' argument is taken")
    try:
        user = values[0].decode("ascii")
    except UnicodeDecodeError:
        user = None
    if not wire.is_valid_user(user):
        raise BadRequest("'user' must be a valid account name")
    return user


class HistoryResource(resource.Resource):
    """
    C{GET /v1/history?user=U}: that profile's moves and the alerts about
    it, oldest first.
    """

    isLeaf = True

    def __init__(self, history) -> None:
        super().__init__()
        self._history = history

    def render_GET(self, request):
        try:
            user = _user_argument(request)
        except BadRequest as error:
            return _write_json(request, 400, {"error": str(error)})
        report = self._history(user)
        if report is None:
            return _write_json(request, 404, {"error": f"nothing is known of {user}"})
        return _write_json(request, 200, report)


def _seconds(body: dict, name: str, default: float, most: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= most:
        raise BadRequest(f"'{name}' must be seconds between 0 and {most:g}")
    return value


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false")
    return value


def _answer_later(request, d, log):
    """
    Answer C{request} with what C{d} fires with, unless the client hung
    up first; a failure is answered 500 and logged.
    """
    finished = []
    request.notifyFinish().addBoth(finished.append)

    def answer(body):
        if not finished:
            request.write(_write_json(request, 200, body))
            request.finish()

    def failed(failure):
        log.failure("admin request failed", failure)
        if not finished:
            request.write(_write_json(request, 500, {"error": "internal error"}))
            request.finish()

    d.addCallbacks(answer, failed)
    return server.NOT_DONE_YET


class _AdminSite(server.Site):
    """
    A site without the per-request access log line: every admin action is
    already logged (and audited) with what it did, which says more.
    """

    def log(self, request) -> None:
        "No access log."


def admin_site(
    authenticator: Authenticator,
    hello_port: int,
    status,
    reload,
    desk=None,
    audit=None,
    reconnection=None,
    clock=None,
    clients=None,
    history=None,
) -> server.Site:
    """
    The admin API's site.

    @param status: returns the JSON-ready status dictionary.
    @param reload: reloads the TLS certificates and returns what it did.
    @param desk: the enrollment window operations (L{WindowDesk}), or
        L{None} when this server does not enroll.
    @param audit: the L{suto_server.audit.log.AuditLog}, or L{None} to serve
        no alerts nor audit records.
    @param reconnection: the blacklist's rules
        (L{suto_server.rules.reconnection.Reconnection}), or L{None} when this
        server keeps no blacklist.
    @param clock: the L{IReactorTime} admin actions are timed by.
    @param clients: returns the rows of C{GET /v1/clients}, or L{None} to
        serve no registry.
    @param history: returns a user's moves and alerts, or L{None} when
        nothing is known of the user; L{None} to serve no histories.
    """
    root = resource.Resource()
    v1 = resource.Resource()
    root.putChild(b"v1", v1)
    v1.putChild(b"auth", AuthResource(authenticator, hello_port))
    v1.putChild(b"status", StatusResource(status))
    v1.putChild(b"reload", ReloadResource(reload))
    if desk is not None:
        v1.putChild(b"enroll", EnrollResource(desk))
        v1.putChild(b"windows", WindowsResource(desk))
        v1.putChild(b"cancel", CancelResource(desk))
    if audit is not None:
        v1.putChild(b"alerts", AlertsResource(audit))
        v1.putChild(b"audit", AuditResource(audit))
    if reconnection is not None:
        v1.putChild(b"blacklist", BlacklistResource(reconnection))
        v1.putChild(b"unblock", UnblockResource(reconnection, clock))
    if clients is not None:
        v1.putChild(b"clients", ClientsResource(clients))
    if history is not None:
        v1.putChild(b"history", HistoryResource(history))
    site = _AdminSite(root)
    site.displayTracebacks = False
    site.noisy = False
    return site
