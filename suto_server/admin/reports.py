"""
C{suto-admin alerts|clients|history|audit}: what the daemon has seen.

Each listing is one request to the running daemon's admin socket, printed
as tab-separated columns (or as JSON for scripts where C{--json} is
offered).  C{audit verify --file} instead checks the audit log's hash
chain in a database file read directly, read-only: a copy, or the store
of a daemon that is down.
"""

from __future__ import annotations

from suto_server.admin.client import request, since_query, user_query
from suto_server.admin.formatting import age, as_json, cell, place, row
from suto_server.core.commandline import CommandError
from suto_server.store.errors import StoreError


def alerts(args, io) -> int:
    answer = request(args, "GET", since_query("/v1/alerts", args.since))
    for alert in answer["alerts"]:
        io.say(row(alert, ("time", "type", "profile", "source", "locations", "reason")))
    return 0


def clients(args, io) -> int:
    answer = request(args, "GET", "/v1/clients")
    if args.json:
        io.say(as_json(answer["clients"]))
        return 0
    for client in answer["clients"]:
        io.say(
            "\t".join(
                [
                    client["user"],
                    place(client["address"], client["location"]),
                    client["state"]
                    + (
                        f" since {client['offline_since']}"
                        if client["offline_since"]
                        else ""
                    ),
                    cell(client["last_rotation"]),
                    f"{client['key_id']} ({age(client['key_age'])} old)",
                ]
            )
        )
    return 0


def history(args, io) -> int:
    answer = request(args, "GET", user_query("/v1/history", args.user))
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
    for _, line in sorted(lines, key=lambda pair: pair[0]):
        io.say(line)
    return 0


def audit_list(args, io) -> int:
    answer = request(args, "GET", since_query("/v1/audit", args.since))
    for event in answer["events"]:
        io.say(row(event, ("time", "event", "user", "source", "locations", "reason")))
    return 0


def _problems_in_file(path: str) -> list[str]:
    """
    @return: the problems of the audit log's chain in the database file
        C{path}, opened read-only.
    @raise CommandError: the file is no readable store.
    """
    # The store loads Twisted's logger and zope interfaces: only this
    # command and the account commands pay for them.
    from suto_server.store.open import open_store

    try:
        store = open_store(path, read_only=True)
        try:
            return store.verify_audit()
        finally:
            store.close()
    except StoreError as error:
        raise CommandError(str(error)) from None


def audit_verify(args, io) -> int:
    """
    Check the audit log's chain through the daemon or, with C{--file}, in
    a database file read directly, changing nothing in it.
    """
    if args.file is None:
        problems = request(args, "GET", "/v1/audit/verify")["problems"]
    else:
        problems = _problems_in_file(args.file)
    if not problems:
        io.say("the audit log is intact")
        return 0
    for problem in problems:
        io.say(problem)
    io.complain(f"the audit log is broken: {len(problems)} problem(s)")
    return 1
