# -*- test-case-name: tests.admin.test_enrollment -*-
"""
C{suto-admin enroll|windows|cancel|blacklist|unblock}: how a device's
profile comes in and how it is shut out.

An enrollment window lets one user's device enroll from one location
with a one-time password, for a short while; the blacklist holds the
profiles the daemon stopped trusting, and lifting an entry removes the
profile so that the device must enroll again.  All of it lives in the
running daemon, so each command is one request to its admin socket; the
listings, C{windows} and C{blacklist}, print a header row and then one
row per entry, or with C{--json} the daemon's JSON.
"""

from __future__ import annotations

from suto_server.admin.client import request
from suto_server.admin.formatting import cell, show
from suto_server.core.commandline import CommandError

#: The columns of C{suto-admin windows}.
_WINDOW_COLUMNS = ("user", "location", "time_left", "attempts", "replace")

#: The columns of C{suto-admin blacklist}.
_BLACKLIST_COLUMNS = ("user", "time", "alert", "source", "reason")


def enroll(args, io) -> int:
    body = {"user": args.user, "location": args.location, "timeout": args.timeout}
    if args.password_stdin:
        # The daemon checks the one-time password's length and characters.
        password = io.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("refusing an empty password", 2)
        body["password"] = password
    if args.replace:
        body["replace"] = True
    if args.wide:
        body["wide"] = True
    answer = request(args, "POST", "/v1/enroll", body)
    for warning in answer.get("warnings", ()):
        io.complain(f"warning: {warning}")
    if not args.password_stdin:
        io.say(f"one-time password for {answer['user']}: {answer['password']}")
    io.say(f"window at {answer['location']} until {answer['deadline']}")
    for fingerprint in answer["fingerprints"]:
        io.say(f"server certificate sha256: {fingerprint}")
    return 0


def _window_row(window: dict) -> str:
    """
    @return: a row of C{suto-admin windows}.
    """
    return (
        f"{window['user']}\t{window['location']}\t"
        f"{window['seconds_left']:.0f}s left\t"
        f"{window['attempts']}/{window['max_attempts']} failed"
        + ("\treplaces profile" if window["replace"] else "")
    )


def windows(args, io) -> int:
    answer = request(args, "GET", "/v1/windows")
    return show(io, args, answer["windows"], _WINDOW_COLUMNS, _window_row)


def cancel(args, io) -> int:
    answer = request(args, "POST", "/v1/cancel", {"user": args.user})
    io.say(f"closed the enrollment window for {answer['user']}")
    return 0


def _entry_row(entry: dict) -> str:
    """
    @return: a row of C{suto-admin blacklist}.
    """
    return (
        f"{entry['user']}\t{entry['time']}\t{entry['alert']}\t"
        f"from {cell(entry['source'])}\t{entry['reason']}"
    )


def blacklist(args, io) -> int:
    answer = request(args, "GET", "/v1/blacklist")
    return show(io, args, answer["blacklist"], _BLACKLIST_COLUMNS, _entry_row)


def unblock(args, io) -> int:
    answer = request(args, "POST", "/v1/unblock", {"user": args.user})
    io.say(
        f"lifted the blacklist entry of {answer['user']} and removed its "
        f"profile: enroll the device again (suto-admin enroll)"
    )
    return 0
