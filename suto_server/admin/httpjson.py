# -*- test-case-name: tests.admin.test_api,tests.admin.test_store_failure_count -*-
"""
How every admin API resource reads its request and writes its answer.

A request body is one JSON object of at most L{MAX_BODY} bytes; query
arguments are checked as strictly.  An answer is a JSON object, and an
error C{{"error": "..."}} with a 4xx status (L{BadRequest} is the 400),
so that a script can tell a bad request from a failed action; a store
that cannot answer (PostgreSQL away) is a 503, which a script may try
again later.  An answer that waits on a Deferred (every one that reads
the store, which may answer from its database thread) is written when it
fires, unless the client hung up first.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.internet.defer import maybeDeferred
from twisted.web import server

from suto_server.audit.paging import MOST_PAGES, parsed_page
from suto_server.core import wire
from suto_server.locations import LocationError
from suto_server.store.errors import ProfileExists, StoreError
from suto_server.store.records import MAX_TIME

#: Largest request body the admin API reads.
MAX_BODY = 16 * 1024


class BadRequest(ValueError):
    """The admin request is malformed; the message says how."""


class BodyTooLarge(BadRequest):
    """The request's body is larger than its resource reads."""


class NotFound(LookupError):
    """There is nothing to act on; the message says what is missing."""


#: The failures an action may answer with, and their statuses, in the
#: order they are checked (L{ProfileExists} is a L{StoreError}, but says
#: what the operator asked for cannot be done).
REFUSALS = (
    (BadRequest, 400),
    (LocationError, 400),
    (NotFound, 404),
    (ProfileExists, 409),
)


def refused(failure) -> tuple[int, str] | None:
    """
    @return: the status and message C{failure} is answered with if it is
        among L{REFUSALS} (the admin API and the console answer them
        alike), else L{None}.
    """
    for kind, status in REFUSALS:
        if failure.check(kind):
            return status, str(failure.value)
    return None


def write_json(request, status: int, body: dict) -> bytes:
    """
    @return: C{body} as the answer to C{request}, with C{status}.
    """
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(body).encode("utf-8") + b"\n"


def read_json(request, limit: int = MAX_BODY) -> dict:
    """
    @param limit: the largest body read, at most L{MAX_BODY}.
    @return: the request's body, a JSON object.
    @raise BodyTooLarge: it is larger than C{limit}.
    @raise BadRequest: it is not JSON, or not an object.
    """
    data = request.content.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge("request body too large")
    try:
        body = json.loads(data or b"{}")
    except (ValueError, RecursionError):
        # A body well under MAX_BODY can nest deeper than the decoder
        # recurses.
        raise BadRequest("request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def since_argument(request) -> float | None:
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


def page_argument(request) -> int:
    """
    @return: the request's C{page} query argument, a page number from 1
        to L{MOST_PAGES}; 1 when it has none.
    @raise BadRequest: it is not such a number.
    """
    values = request.args.get(b"page")
    if not values:
        return 1
    number = parsed_page(values[0].decode("latin-1"))
    if number is None:
        raise BadRequest(f"'page' must be a number from 1 to {MOST_PAGES}")
    return number


def user_field(body: dict) -> str:
    """
    @return: the C{user} field of a request's body.
    @raise BadRequest: it is not a valid account name.
    """
    user = body.get("user")
    if not wire.is_valid_user(user):
        raise BadRequest("'user' must be a valid account name")
    return user


def user_argument(request, others=frozenset()) -> str:
    """
    @param others: the names of the other arguments the request may have.
    @return: the request's one C{user} query argument.
    @raise BadRequest: it is missing, repeated, not a valid account name,
        or the request has arguments other than these.
    """
    values = request.args.get(b"user")
    if (
        b"user" not in request.args
        or not set(request.args) <= {b"user"} | others
        or len(values) != 1
    ):
        raise BadRequest("exactly one 'user' argument is taken")
    try:
        user = values[0].decode("ascii")
    except UnicodeDecodeError:
        user = None
    if not wire.is_valid_user(user):
        raise BadRequest("'user' must be a valid account name")
    return user


def seconds(body: dict, name: str, default: float, most: float) -> float:
    """
    @return: the field C{name} of C{body}, C{default} when it is absent.
    @raise BadRequest: it is not a number of seconds above 0, up to C{most}.
    """
    value = body.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= most
    ):
        raise BadRequest(f"'{name}' must be seconds between 0 and {most:g}")
    return value


def printable_field(
    body: dict, name: str, least: int, most: int, optional: bool = False
) -> str | None:
    """
    @param optional: whether the field may be absent (or C{null}), read
        as L{None}.
    @return: the field C{name} of C{body}.
    @raise BadRequest: it is not a string of C{least} to C{most} printable
        characters.  It is refused, never made printable
        (L{suto_server.core.shown}): an operator's name or a password is
        acted on as sent or not at all.
    """
    value = body.get(name)
    if value is None and optional:
        return None
    if (
        not isinstance(value, str)
        or not least <= len(value) <= most
        or not value.isprintable()
    ):
        raise BadRequest(f"'{name}' must be {least} to {most} printable characters")
    return value


def flag(body: dict, name: str) -> bool:
    """
    @return: the field C{name} of C{body}, false when it is absent.
    @raise BadRequest: it is not a JSON boolean.
    """
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false")
    return value


class Refusal(Exception):
    """
    A request refused once its answer was already awaited (the store
    answered later): answered with C{status} and C{message}.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def answer_later(request, d, log):
    """
    Answer C{request} with what C{d} fires with, unless the client hung
    up first.  A L{Refusal}, or a failure among L{REFUSALS}, is answered
    with its status and message; a store that failed, 503 and one warning
    (nothing was done: the store's transactions change nothing when they
    fail); anything else, 500 and logged.
    """
    finished = []
    request.notifyFinish().addBoth(finished.append)

    def send(status, body):
        if not finished:
            request.write(write_json(request, status, body))
            request.finish()

    def failed(failure):
        if failure.check(Refusal):
            return send(failure.value.status, {"error": failure.value.message})
        refusal = refused(failure)
        if refusal is not None:
            status, message = refusal
            return send(status, {"error": message})
        if failure.check(StoreError):
            _count_store_failure(request)
            log.warn(
                "admin request {path} failed: the store is unavailable: {error}",
                path=request.path.decode("ascii", "replace"),
                error=str(failure.value),
            )
            return send(503, {"error": "the store is unavailable; try again"})
        log.failure("admin request failed", failure)
        return send(500, {"error": "internal error"})

    d.addCallbacks(lambda body: send(200, body), failed)
    return server.NOT_DONE_YET


def count_store_failures(site, count: Callable[[], object]) -> None:
    """
    Have C{count} called for each request of C{site} that L{answer_later}
    answers 503 because the store failed (the operators' metric of them):
    every resource answers through L{answer_later}, which finds C{count}
    on the request's site, so no resource needs to be given it.
    """
    site.suto_store_failed = count


def _count_store_failure(request) -> None:
    count = getattr(getattr(request, "site", None), "suto_store_failed", None)
    if count is not None:
        count()


def answer(request, action, log, *args):
    """
    Answer C{request} with what C{action(*args)} returns, at once or
    through a L{Deferred} or coroutine, as L{answer_later} does: what it
    raises is answered the same way.
    """
    return answer_later(request, maybeDeferred(action, *args), log)
