# -*- test-case-name: tests.admin.test_reports -*-
"""
C{suto-admin alerts|clients|history|audit}: what the daemon has seen.

Each listing is one request to the running daemon's admin socket, printed
as tab-separated columns under a header row, or with C{--json} as the
daemon's JSON for scripts.  A listing of alerts or audit records is a
page of the newest (L{suto_server.audit.paging}), C{--page} the older
ones.  The alerts and the audit log are in the
store itself, so with the daemon down C{alerts}, C{audit} and C{audit
verify} read the daemon's store read-only instead (the data folder's
SQLite file, or the PostgreSQL database of C{--store}), saying so on
standard error; C{audit verify --file} checks any database file that
way: a copy, or the store of a daemon that is down.

C{audit verify} also says how many records the log holds and when the
last was made: a copy that lost its write-ahead log (a C{cp} of a live
store) holds an intact but empty or truncated chain, which only the
count and the time give away.  A store with accounts or profiles but no
audit record at all is such a copy, and fails.
"""

from __future__ import annotations

from contextlib import contextmanager

from suto_server.admin.client import (
    DaemonUnreachable,
    answer_of,
    call,
    listing_query,
    request,
    user_query,
)
from suto_server.admin.deployment import store_location
from suto_server.admin.formatting import (
    age,
    alert_json,
    as_json,
    cell,
    event_json,
    header,
    place,
    row,
    show,
)
from suto_server.audit.paging import page_answer, page_filters
from suto_server.core.commandline import CommandError
from suto_server.core.timestamps import iso_utc
from suto_server.store.errors import StoreError

#: The columns of C{suto-admin alerts}, as the admin API names them.
_ALERT_COLUMNS = ("time", "type", "profile", "source", "locations", "reason")

#: The columns of C{suto-admin clients}.
_CLIENT_COLUMNS = ("user", "location", "state", "last_rotation", "key")

#: The columns of C{suto-admin history}: a move's addresses are its source.
_HISTORY_COLUMNS = ("time", "event", "source", "locations", "reason")

#: The columns of C{suto-admin audit}, as the admin API names them.
_EVENT_COLUMNS = ("time", "event", "user", "source", "locations", "reason")


@contextmanager
def read_only_store(location: str):
    """
    Open the store at C{location} (a database file, or a PostgreSQL URI)
    read-only, changing nothing in it, for the block.

    @raise CommandError: it is no readable store, or reading it failed.
    """
    # The store loads Twisted's logger and zope interfaces: only the
    # commands that read it pay for them.
    from suto_server.store.open import open_store

    try:
        store = open_store(location, read_only=True)
        try:
            yield store
        finally:
            store.close()
    except StoreError as error:
        raise CommandError(str(error)) from None


def _daemon_or_store(args, io, path: str, read):
    """
    @return: the daemon's answer to C{GET path} or, when it does not
        answer, C{read(store)} of the daemon's store opened read-only,
        saying so on standard error.
    """
    try:
        code, answer = call(args.admin_socket, "GET", path)
    except DaemonUnreachable as error:
        location = store_location(args)
        io.complain(f"{error}; reading {location} read-only")
        with read_only_store(location) as store:
            return read(store)
    return answer_of(code, answer)


def _paged(args, io, path: str, name: str, read, to_json, columns) -> int:
    """
    Print page C{args.page} of the listing C{name} of C{GET path} (see
    L{suto_server.audit.paging}), or of C{read(store)}, the store's
    read of the same records, with the daemon down; say on standard error
    that an older page holds more.
    """

    def stored(store) -> dict:
        records = read(store)(since=args.since, **page_filters(args.page))
        return page_answer(name, records, args.page, to_json)

    answer = _daemon_or_store(
        args, io, listing_query(path, args.since, args.page), stored
    )
    _tell_more(io, args, answer)
    return show(io, args, answer[name], columns)


def _tell_more(io, args, answer: dict) -> None:
    """
    Say on standard error when a page older than the one shown holds
    records.
    """
    if answer["more"]:
        io.complain(f"older records are on --page {args.page + 1}")


def _stored_alerts(store):
    """
    @return: the read of C{store}'s alerts as C{GET /v1/alerts} makes it.
    """
    from suto_server.audit.alerts import ALERT_TYPES
    from suto_server.audit.log import alerts_among

    def read(**filters):
        return alerts_among(store.audit_events_matching(types=ALERT_TYPES, **filters))

    return read


def alerts(args, io) -> int:
    return _paged(
        args, io, "/v1/alerts", "alerts", _stored_alerts, alert_json, _ALERT_COLUMNS
    )


def _client_row(client: dict) -> str:
    """
    @return: a row of C{suto-admin clients}.
    """
    state = client["state"]
    if client["offline_since"]:
        state += f" since {client['offline_since']}"
    return "\t".join(
        [
            client["user"],
            place(client["address"], client["location"]),
            state,
            cell(client["last_rotation"]),
            f"{client['key_id']} ({age(client['key_age'])} old)",
        ]
    )


def clients(args, io) -> int:
    answer = request(args, "GET", "/v1/clients")
    return show(io, args, answer["clients"], _CLIENT_COLUMNS, _client_row)


def history(args, io) -> int:
    answer = request(args, "GET", user_query("/v1/history", args.user, args.page))
    _tell_more(io, args, answer)
    if args.json:
        io.say(as_json(answer))
        return 0
    lines = [
        (
            move["time"],
            f"{move['time']}\tmoved\t{place(move['from'], move['from_location'])}"
            f" -> {place(move['to'], move['to_location'])}",
        )
        for move in answer["moves"]
    ] + [
        (alert["time"], row(alert, ("time", "type", "source", "locations", "reason")))
        for alert in answer["alerts"]
    ]
    io.say(header(_HISTORY_COLUMNS))
    for _, line in sorted(lines, key=lambda pair: pair[0]):
        io.say(line)
    return 0


def audit_list(args, io) -> int:
    return _paged(
        args,
        io,
        "/v1/audit",
        "events",
        lambda store: store.audit_events_matching,
        event_json,
        _EVENT_COLUMNS,
    )


def _summary(store) -> str:
    """
    @return: how many records the audit log of C{store} holds and when
        the last was made.
    @raise CommandError: it holds none while the store holds accounts or
        profiles, which every change to them records.
    """
    last = store.audit_events_matching(newest=1)
    if last:
        counted = store.count_audit_events()
        return f"{counted} record(s), the last at {iso_utc(last[0].time)}"
    if store.list_users() or store.list_profiles():
        raise CommandError(
            "no audit record in a store with accounts or profiles: a copy "
            "that lost its write-ahead log? (copy a live store with "
            "suto-admin backup)"
        )
    return "no records"


def audit_verify(args, io) -> int:
    """
    Check the audit log's chain through the daemon (which first writes
    the records it still holds) or, with C{--file} or with the daemon
    down, in the store read directly, changing nothing in it; then count
    the records in that store.
    """
    location = args.file
    if location is None:
        location = store_location(args)
        problems = _daemon_or_store(
            args,
            io,
            "/v1/audit/verify",
            lambda store: {"problems": store.verify_audit()},
        )["problems"]
        with read_only_store(location) as store:
            summary = _summary(store)
    else:
        with read_only_store(location) as store:
            problems = store.verify_audit()
            summary = _summary(store)
    io.say(summary)
    if not problems:
        io.say("the audit log is intact")
        return 0
    for problem in problems:
        io.say(problem)
    io.complain(f"the audit log is broken: {len(problems)} problem(s)")
    return 1
