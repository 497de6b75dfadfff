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

from suto_server import wire
from suto_server.authenticator import Authenticator, UnknownAccount
from suto_server.discovery import parse_targets
from suto_server.rendezvous import RequestConflict

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
    except ValueError:
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
        finished = []
        request.notifyFinish().addBoth(finished.append)

        def answer(outcome):
            if finished:
                return
            request.write(
                _write_json(
                    request,
                    200,
                    {
                        "user": outcome.user,
                        "verdict": outcome.verdict.value,
                        "source": outcome.source,
                        "reason": outcome.reason,
                    },
                )
            )
            request.finish()

        d.addCallback(answer)
        d.addErrback(lambda f: self.log.failure("answering auth", f))
        return server.NOT_DONE_YET

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


def admin_site(
    authenticator: Authenticator, hello_port: int, status, reload
) -> server.Site:
    """
    The admin API's site.

    @param status: returns the JSON-ready status dictionary.
    @param reload: reloads the TLS certificates and returns what it did.
    """
    root = resource.Resource()
    v1 = resource.Resource()
    root.putChild(b"v1", v1)
    v1.putChild(b"auth", AuthResource(authenticator, hello_port))
    v1.putChild(b"status", StatusResource(status))
    v1.putChild(b"reload", ReloadResource(reload))
    site = server.Site(root)
    site.displayTracebacks = False
    site.noisy = False
    return site
