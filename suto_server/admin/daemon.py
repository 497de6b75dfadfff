# -*- test-case-name: tests.admin.test_daemon,tests.admin.test_console_link -*-
"""
C{suto-admin auth|status|cert|reload|console-link|config check}: the
daemon itself.

C{auth} asks the running daemon to authenticate a user at a device now
and waits for the verdict, which its exit status tells apart
(L{AUTH_STATUS}); C{status}, C{cert} and C{reload} show or renew
what it serves; C{console-link} asks it for a one-time login link to its
web console.  C{cert} falls back to the certificate file in the data
folder when no daemon answers, and C{config check} reads a configuration
file as C{twistd suto --config} would, without any daemon.
"""

from __future__ import annotations

import os

from suto_server.admin.accounts import operator_name
from suto_server.admin.client import DaemonUnreachable, answer_of, call, request
from suto_server.admin.formatting import as_json
from suto_server.core.commandline import CommandError, check_config

#: Seconds an admin request may take beyond the authentication's own timeout.
ADMIN_SLACK = 10.0

#: The exit status of C{suto-admin auth} for each verdict, so that a script
#: can tell a wrong password from a device that never connected, one that
#: does not trust the server's certificate, and one the connection limits
#: refused (README, "Using it").
AUTH_STATUS = {
    "accepted": 0,
    "rejected": 1,
    "timeout": 3,
    "tls_trust_failure": 4,
    "refused_by_limits": 5,
    "cancelled": 6,
    "error": 6,
}

#: C{suto-admin auth}'s exit status when the daemon refused the request
#: itself (a malformed or too wide target, an unknown account, addresses
#: another authentication waits for), as for any usage error.
AUTH_REFUSED = 2

#: C{suto-admin auth}'s exit status when the daemon is down or failed.
AUTH_SERVER_ERROR = 6


def auth(args, io) -> int:
    body = {"user": args.user, "target": args.target}
    if args.accept:
        body["accept"] = args.accept
    if args.timeout is not None:
        body["timeout"] = args.timeout
    if args.wide:
        body["wide"] = True
    wait = (args.timeout or 600.0) + ADMIN_SLACK
    try:
        code, answer = call(args.admin_socket, "POST", "/v1/auth", body, timeout=wait)
    except DaemonUnreachable as error:
        raise CommandError(str(error), AUTH_SERVER_ERROR) from None
    try:
        answer = answer_of(code, answer)
    except CommandError as error:
        error.status = AUTH_REFUSED if code < 500 else AUTH_SERVER_ERROR
        raise
    verdict = answer["verdict"]
    line = f"{answer['user']}: {verdict}"
    if answer.get("source"):
        line += f" from {answer['source']}"
    if answer.get("reason") and verdict != "accepted":
        line += f" ({answer['reason']})"
    io.say(line)
    return AUTH_STATUS.get(verdict, AUTH_SERVER_ERROR)


def status(args, io) -> int:
    answer = request(args, "GET", "/v1/status", timeout=10.0)
    if args.json:
        io.say(as_json(answer))
        return 0
    io.say(f"up {answer['uptime']:.0f}s")
    io.say(f"version: {answer['version']}")
    for listener in answer["listeners"]:
        io.say(f"listening: {listener['name']} on {listener['address']}")
    io.say(f"pending authentications: {len(answer['pending'])}")
    io.say(f"open enrollment windows: {answer['enrollment_windows']}")
    io.say(
        f"endpoints: {answer['connected']} connected, {answer['offline']} offline,"
        f" {answer['blacklisted']} blacklisted"
    )
    for line in expiry_lines(answer):
        io.say(line)
    last = answer["last_alert"]
    if last is None:
        io.say("last alert: none since the server started")
    else:
        io.say(f"last alert: {last['type']} at {last['time']} ({last['reason']})")
    return 0


def expiry_lines(answer: dict) -> list[str]:
    """
    @return: the lines of C{suto-admin status} on the served certificates
        and the loaded CRLs of the daemon's status C{answer}: when each
        runs out and, after a colon, the warning the expiry watch raises
        of it, if any.
    """
    lines = [
        f"certificate: {each['subject']} (sha256 {each['fingerprint']}) expires"
        f" {each['not_after']}{_warned(each)}"
        for each in answer["certificates"]
    ]
    lines += [
        f"crl: {each['issuer']} on the {each['listener']} listener, next update"
        f" {each['next_update'] or 'never'}{_warned(each)}"
        for each in answer["crls"]
    ]
    return lines


def _warned(entry: dict) -> str:
    return "" if entry["warning"] is None else f": {entry['warning']}"


def console_link(args, io) -> int:
    """
    Print a login link to the daemon's web console, for the login name
    this runs under (which the console's audit records then name); it
    works once, within its lifetime, from this host.
    """
    answer = request(args, "POST", "/v1/console-link", {"operator": operator_name()})
    io.say(answer["url"])
    io.complain(
        f"valid once, for {answer['expires_in']:.0f} seconds, in a browser on "
        f"this host"
    )
    return 0


def reload(args, io) -> int:
    answer = request(args, "POST", "/v1/reload", {})
    failed = False
    for result in answer["certificates"]:
        # The device listeners come unnamed, the others by name.
        where = f"{result['listener']}: " if "listener" in result else ""
        if "error" in result:
            failed = True
            io.complain(f"{where}kept the old certificate: {result['error']}")
        else:
            io.say(
                f"{where}serving {result['subject']} sha256 "
                f"{result['fingerprint']}"
            )
            if "warning" in result:
                io.complain(f"warning: {result['warning']}")
    return 1 if failed else 0


def _certificate_file(data: str, unreachable: DaemonUnreachable, io) -> list[dict]:
    """
    @return: the generated certificate in the data folder C{data}, as the
        daemon would describe it, saying on standard error that it is the
        file since the daemon did not answer.
    @raise CommandError: the file cannot be read either.
    """
    # Reading a certificate loads the cryptography package: only this
    # fallback pays for it.
    from suto_server.net import certificate

    path = os.path.join(data, certificate.CERT_FILE)
    try:
        with open(path, "rb") as handle:
            info = certificate.describe(handle.read())
    except (OSError, ValueError) as file_error:
        raise CommandError(
            f"{unreachable}; cannot read the certificate {path}: {file_error}"
        ) from None
    io.complain(f"{unreachable}; showing the certificate file {path}")
    return [
        {
            "subject": info.subject,
            "fingerprint": info.fingerprint,
            "not_after": info.not_after.isoformat(),
        }
    ]


def cert(args, io) -> int:
    """
    The certificates the running daemon serves (whatever --listen named,
    after any reload); with no daemon answering, the generated one in the
    data folder, saying so.
    """
    try:
        code, answer = call(args.admin_socket, "GET", "/v1/status", timeout=10.0)
    except DaemonUnreachable as error:
        served = _certificate_file(args.data, error, io)
    else:
        served = answer_of(code, answer)["certificates"]
        if not served:
            raise CommandError("the daemon serves no TLS listener")
    for info in served:
        io.say(f"subject: {info['subject']}")
        io.say(f"sha256: {info['fingerprint']}")
        io.say(f"expires: {info['not_after']}")
    return 0


def config_check(args, io) -> int:
    """
    Check a configuration file as C{twistd suto --config} would read it,
    so that a restart is only attempted with a file the server accepts.
    """
    # The daemon's options are the definition of a valid file; they import
    # the daemon's assembly, which only this command needs.
    from suto_server.tap import Options

    return check_config(io, args.file, Options)
