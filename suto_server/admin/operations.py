# -*- test-case-name: tests.admin.test_api_enroll,tests.admin.test_blacklist,tests.console.test_site -*-
"""
The operator's actions, written once for every way an operator reaches
the daemon: the admin API's JSON resources and the web console
(L{suto_server.console}) both call these, so an enrollment window, a
cancellation or an unblocking goes through the same checks and rules and
leaves the same audit record whichever way it came, naming the operator.

Each action takes its input as a dictionary of JSON-typed fields (the
console turns its form into one) and raises L{BadRequest} for a field
that is not acceptable, L{NotFound} when there is nothing to act on, or
the rules' own errors (L{LocationError}, L{ProfileExists}).  An action
that reads or changes the store is a coroutine, or answers through a
L{Deferred}: on a store across the network the store answers from its
database thread, and its failure (L{StoreError}) is the action's.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from suto_server.admin.httpjson import (
    BadRequest,
    NotFound,
    flag,
    printable_field,
    seconds,
    user_field,
)
from suto_server.core import wire

#: The operator the audit records name for an action asked over the admin
#: socket, which has no login: whoever reaches it is an operator.
ADMIN_SOCKET = "the admin socket"

#: The longest an enrollment window may stay open, in seconds.
LONGEST_WINDOW = 86400

#: How long a window stays open when the operator does not say.
DEFAULT_WINDOW = 120


def name_operator(request, operator: str) -> None:
    """
    Say who makes C{request}, an admin request that came over a listener
    with logins (the verification API names the caller's certificate),
    so that the action's audit record names them.
    """
    request.suto_operator = operator


def operator_of(request, unnamed: str = ADMIN_SOCKET) -> str:
    """
    @param unnamed: who asks when no listener named them: by default
        L{ADMIN_SOCKET} (the socket has no login: whoever reaches it is
        an operator).
    @return: who makes the admin request C{request}: whom
        L{name_operator} named, else C{unnamed}.
    """
    return getattr(request, "suto_operator", unnamed)


def open_window(desk, fields: dict, operator: str):
    """
    Open an enrollment window from C{fields}: C{user}, C{location},
    C{timeout}?, C{password}?, C{replace}?, C{wide}?.

    @param desk: the L{suto_server.rules.windows.WindowDesk}.
    @return: a L{Deferred} firing with L{WindowDesk.open}'s answer, which
        holds the one-time password (the only time it is ever shown).
    @raise BadRequest: a field is missing or malformed.
    @raise suto_server.locations.LocationError: unknown or too wide.
    @raise suto_server.store.errors.ProfileExists: enrolled already.
    """
    user = fields.get("user")
    if not wire.can_enroll(user):
        raise BadRequest("'user' must be a valid account name")
    location = fields.get("location")
    if not isinstance(location, str) or not location:
        raise BadRequest("'location' must name an address, network or location")
    timeout = seconds(fields, "timeout", DEFAULT_WINDOW, LONGEST_WINDOW)
    password = printable_field(fields, "password", 8, 256, optional=True)
    replace, wide = (flag(fields, name) for name in ("replace", "wide"))
    return desk.open(
        user, location, timeout, password, replace, wide, operator=operator
    )


async def cancel_window(desk, fields: dict, operator: str) -> dict:
    """
    Close the enrollment window of C{fields["user"]}.

    @raise BadRequest: no valid user is named.
    @raise NotFound: that user has no open window.
    """
    user = user_field(fields)
    if not await maybeDeferred(desk.cancel, user, operator):
        raise NotFound(f"no open window for {user}")
    return {"user": user, "cancelled": True}


async def unblock(reconnection, clock, fields: dict, operator: str) -> dict:
    """
    Lift the blacklist entry of C{fields["user"]}, removing its profile.

    @param reconnection: the L{suto_server.rules.reconnection.Reconnection}.
    @param clock: the L{IReactorTime} the record is timed by.
    @raise BadRequest: no valid user is named.
    @raise NotFound: that user is not blacklisted.
    """
    user = user_field(fields)
    if not await maybeDeferred(
        reconnection.unblock, user, clock.seconds(), operator
    ):
        raise NotFound(f"{user} is not blacklisted")
    return {"user": user, "unblocked": True}


def after_flush(audit, read):
    """
    @param read: reads what the caller shows: answers at once, through a
        L{Deferred}, or as a coroutine.
    @return: a L{Deferred} firing with what C{read()} answers once every
        audit record made so far is written (the daemon writes them on
        its database thread), so that an operator reading the log right
        after an event sees it.
    """
    return audit.flushed().addCallback(lambda _: maybeDeferred(read))


def verify_chain(audit):
    """
    @return: a L{Deferred} firing with whether the audit log's hash chain
        is intact and every problem found when it is not, once every
        record made so far is written.
    """

    async def read():
        problems = await audit.verify()
        return {"intact": not problems, "problems": problems}

    return after_flush(audit, read)
