"""
C{suto-admin enroll|windows|cancel|blacklist|unblock}: how a device's
profile comes in and how it is shut out.

An enrollment window lets one user's device enroll from one location
with a one-time password, for a short while; the blacklist holds the
profiles the daemon stopped trusting, and lifting an entry removes the
profile so that the device must enroll again.  All of it lives in the
running daemon, so each command is one request to its admin socket.
"""

from __future__ import annotations

from suto_server.admin.client import request
from suto_server.admin.formatting import cell
from suto_server.core.commandline import CommandError


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


def windows(args, io) -> int:
    answer = request(args, "GET", "/v1/windows")
    for window in answer["windows"]:
        io.say(
            f"{window['user']}\t{window['location']}\t"
            f"{window['seconds_left']:.0f}s left\t"
            f"{window['attempts']}/{window['max_attempts']} failed"
            + ("\treplaces profile" if window["replace"] else "")
        )
    return 0


def cancel(args, io) -> int:
    answer = request(args, "POST", "/v1/cancel", {"user": args.user})
    io.say(f"closed the enrollment window for {answer['user']}")
    return 0


def blacklist(args, io) -> int:
    answer = request(args, "GET", "/v1/blacklist")
    for entry in answer["blacklist"]:
        io.say(
            f"{entry['user']}\t{entry['time']}\t{entry['alert']}\t"
            f"from {cell(entry['source'])}\t{entry['reason']}"
        )
    return 0


def unblock(args, io) -> int:
    answer = request(args, "POST", "/v1/unblock", {"user": args.user})
    io.say(
        f"lifted the blacklist entry of {answer['user']} and removed its "
        f"profile: enroll the device again (suto-admin enroll)"
    )
    return 0
