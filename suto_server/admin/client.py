# -*- test-case-name: tests.admin.test_daemon,tests.admin.test_listings -*-
"""
The admin socket's client: JSON over HTTP/1.1 to the running daemon.

The daemon serves its admin API on a UNIX socket, in the data folder
unless its configuration names another (see L{suto_server.admin.api} and
L{suto_server.admin.deployment}).  The standard library's blocking
L{http.client} is enough for one request per command, and keeps Twisted's
web stack, TLS and the daemon's own modules out of C{suto-admin}.
"""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlencode

from suto_server.core.commandline import CommandError


class _UnixHTTPConnection(http.client.HTTPConnection):
    """
    An HTTP connection over the daemon's UNIX socket.
    """

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class DaemonUnreachable(Exception):
    """The admin socket did not answer."""


def call(socket: str, method: str, path: str, body=None, timeout: float = 30.0):
    """
    Make one request of the daemon whose admin socket is C{socket}.

    @return: the HTTP status and the decoded JSON answer.
    @raise DaemonUnreachable: the socket did not answer with JSON.
    """
    connection = _UnixHTTPConnection(socket, timeout)
    try:
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"content-type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DaemonUnreachable(
            f"the daemon's admin socket {socket} did not answer ({error})"
        ) from None
    finally:
        connection.close()


def answer_of(code: int, answer: dict) -> dict:
    """
    @return: C{answer}, when the daemon gave it with success.
    @raise CommandError: the daemon refused, saying why.
    """
    if code != 200:
        raise CommandError(answer.get("error", f"the daemon answered {code}"))
    return answer


def request(args, method: str, path: str, body=None, timeout: float = 30.0) -> dict:
    """
    Call the daemon on its admin socket C{args.admin_socket}.

    @return: its answer.
    @raise CommandError: it did not answer, or refused.
    """
    try:
        code, answer = call(args.admin_socket, method, path, body, timeout=timeout)
    except DaemonUnreachable as error:
        raise CommandError(str(error)) from None
    return answer_of(code, answer)


def listing_query(path: str, since: float | None, page: int = 1) -> str:
    """
    @return: C{path} asking for page C{page} of what happened at or after
        C{since}.
    """
    query = {} if since is None else {"since": repr(since)}
    if page != 1:
        query["page"] = str(page)
    return f"{path}?{urlencode(query)}" if query else path


def user_query(path: str, user: str, page: int = 1) -> str:
    """
    @return: C{path} asking about C{user} (page C{page} of a listing).
    """
    query = {"user": user} if page == 1 else {"user": user, "page": str(page)}
    return f"{path}?{urlencode(query)}"
