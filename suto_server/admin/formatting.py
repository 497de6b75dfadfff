# -*- test-case-name: tests.admin.test_formatting -*-
"""
How C{suto-admin} reads and shows durations, times and listings.

The daemon answers in JSON with RFC 3339 UTC times already formatted
(L{alert_json} and L{event_json} are the records as both the admin API
and the daemon-less fallbacks show them); the command line prints a
listing either as that JSON (C{--json}, for scripts) or as tab-separated
columns under a header row naming them (C{-} for nothing), shows ages in
their largest whole unit, and reads the durations and times its options
take.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time

from suto_server.audit.paging import MOST_PAGES, parsed_page
from suto_server.core.timestamps import iso_utc

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds_in(text: str) -> float:
    """
    C{120}, C{120s}, C{2m}, C{1h} or C{1d} as seconds.

    @raise argparse.ArgumentTypeError: C{text} is not a duration.
    """
    scale = _DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        return float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration like 120s or 2m"
        ) from None


def duration(text: str) -> float:
    """
    A duration of up to 24 hours, as seconds.
    """
    value = seconds_in(text)
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError("a duration must be between 0 and 24h")
    return value


def page_number(text: str) -> int:
    """
    C{--page}: a page number from 1 to L{MOST_PAGES}.
    """
    number = parsed_page(text)
    if number is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a page number from 1 to {MOST_PAGES}"
        )
    return number


def since(text: str) -> float:
    """
    C{--since}: a duration meaning that long ago (C{1h}, C{7d}), or an ISO
    8601 time (C{2026-11-22T07:00:00Z}; UTC unless it names its offset),
    as a POSIX time.
    """
    now = time.time()
    try:
        ago = seconds_in(text)
    except argparse.ArgumentTypeError:
        ago = None
    if ago is not None:
        if not 0 < ago <= now:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
        return now - ago
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration like 1h nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, moment.timestamp())


def cell(value) -> str:
    """
    @return: C{value} as a column of a listing: C{-} for nothing.
    """
    if isinstance(value, list):
        value = ", ".join(value)
    return value or "-"


def row(record: dict, names: tuple[str, ...]) -> str:
    """
    @return: the fields C{names} of C{record} as one line of a listing.
    """
    return "\t".join(cell(record[name]) for name in names)


def header(columns: tuple[str, ...]) -> str:
    """
    @return: the header row of a listing whose columns are named
        C{columns}, in capitals so that it stands apart from the rows.
    """
    return "\t".join(name.upper() for name in columns)


def show(io, args, records: list[dict], columns: tuple[str, ...], line=None) -> int:
    """
    Print a listing: C{records} as one JSON document when C{args.json},
    else a header row naming C{columns} and one row per record.

    @param line: makes a record's row; by default the record's fields
        C{columns}, in that order (L{row}).
    @return: the exit status, 0.
    """
    if args.json:
        io.say(as_json(records))
        return 0
    io.say(header(columns))
    for record in records:
        io.say(row(record, columns) if line is None else line(record))
    return 0


def alert_json(alert) -> dict:
    """
    @return: an L{suto_server.audit.alerts.Alert} as the admin API and
        C{suto-admin} show it: as the alert sinks send it, less the POSIX
        C{timestamp} (an operator reads the C{time} beside it).
    """
    shown = alert.to_json()
    del shown["timestamp"]
    return shown


def event_json(event) -> dict:
    """
    @return: an audit record (L{suto_server.store.records.AuditEvent}) as
        the admin API and C{suto-admin audit} show it.
    """
    return {
        "time": iso_utc(event.time),
        "event": event.event,
        "user": event.username,
        "source": event.source,
        "reason": event.reason,
        "locations": list(event.locations),
        "hash": event.hash.hex(),
    }


def place(address, name) -> str:
    """
    @return: an address as a listing shows it, with its location name when
        the locations file maps it.
    """
    if address and name:
        return f"{name} ({address})"
    return cell(address)


def age(seconds: float) -> str:
    """
    @return: C{seconds} as the largest whole unit: C{42s}, C{5m}, C{3h},
        C{2d}.
    """
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def as_json(value) -> str:
    """
    @return: C{value} as C{--json} prints it, for scripts: indented, with
        sorted keys.
    """
    return json.dumps(value, indent=2, sort_keys=True)
