"""
C{suto-admin}: the operator's command line.

Account commands work on the data folder's store directly (SQLite allows
the daemon and this tool to share it), so accounts can be made before the
daemon first starts.  Commands that need the running daemon (C{auth},
C{status}, C{alerts}, C{audit}) speak JSON over HTTP to its admin socket;
C{audit verify --file} reads a database file directly instead, read-only.

Every command is a function taking the parsed arguments and an L{_IO}
bundle and returning an exit code; L{main} is only the dispatch table, so
tests call it with injected streams.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import http.client
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO
from urllib.parse import urlencode

from suto_server.audit.log import AuditLog
from suto_server.core import config, schemes
from suto_server.core.timestamps import iso_utc
from suto_server.net import certificate
from suto_server.rules.windows import WIDEST_PREFIX
from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore
from suto_server.store.open import open_store
from suto_server.tap import (
    ADMIN_SOCKET,
    DATABASE_FILE,
    DEFAULT_DATA,
    Options,
    prepare_data_folder,
)

#: Seconds an admin request may take beyond the authentication's own timeout.
ADMIN_SLACK = 10.0

#: Longest password read from standard input or the terminal, so a runaway
#: pipe cannot fill memory before it is refused.
MAX_PASSWORD = 1024


@dataclass
class _IO:
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    getpass: Callable[[str], str]

    def say(self, text: str) -> None:
        print(text, file=self.stdout)

    def complain(self, text: str) -> None:
        print(f"suto-admin: {text}", file=self.stderr)


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


def _call(data: str, method: str, path: str, body=None, timeout: float = 30.0):
    connection = _UnixHTTPConnection(os.path.join(data, ADMIN_SOCKET), timeout)
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
            f"the daemon's admin socket in {data} did not answer ({error})"
        ) from None
    finally:
        connection.close()


def _request(args, io: _IO, method: str, path: str, body=None, timeout=30.0):
    """
    Call the daemon; on any failure say why and return L{None}.
    """
    try:
        code, answer = _call(args.data, method, path, body, timeout=timeout)
    except DaemonUnreachable as error:
        io.complain(str(error))
        return None
    if code != 200:
        io.complain(answer.get("error", f"the daemon answered {code}"))
        return None
    return answer


def _read_password(args, io: _IO, prompt: str) -> str | None:
    """
    Read a password from standard input or the terminal.  The read is
    bounded, and an input that ends before the password (a closed pipe
    without C{--password-stdin}) is one clear line, not a traceback.
    """
    try:
        if args.password_stdin:
            password = io.stdin.readline(MAX_PASSWORD + 2).rstrip("\r\n")
        else:
            password = io.getpass(prompt)
            if io.getpass("Again: ") != password:
                io.complain("the passwords do not match")
                return None
    except EOFError:
        io.complain("no password: the input ended (use --password-stdin in scripts)")
        return None
    if not password:
        io.complain("refusing an empty password")
        return None
    if len(password) > MAX_PASSWORD or "\0" in password:
        io.complain(
            f"the password must be at most {MAX_PASSWORD} characters, without NUL"
        )
        return None
    return password


def _open_store(args) -> IStore:
    data = prepare_data_folder(args.data)
    return open_store(os.path.join(data, DATABASE_FILE))


def _operator() -> str:
    """
    @return: who runs this command, for the audit log: the login name,
        or the user id where there is none.
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _audit_account(store, event: str, user: str, detail: str = "") -> None:
    """
    Record an account change made here in the audit log the daemon keeps
    in the same store.
    """
    AuditLog(store, []).record(
        time.time(), event, user, None, f"by {_operator()}{detail}"
    )


def user_add(args, io: _IO) -> int:
    password = _read_password(args, io, f"Password for {args.user}: ")
    if password is None:
        return 2
    try:
        password_hash = schemes.hash_password(password, args.scheme, args.rounds)
    except ValueError as error:
        io.complain(str(error))
        return 2
    store = _open_store(args)
    try:
        store.add_user(args.user, password_hash, time.time())
        _audit_account(store, "user_added", args.user, f" ({args.scheme})")
    except (StoreError, ValueError) as error:
        io.complain(str(error))
        return 1
    finally:
        store.close()
    io.say(f"added {args.user} ({args.scheme})")
    return 0


def user_del(args, io: _IO) -> int:
    store = _open_store(args)
    try:
        store.remove_user(args.user)
        _audit_account(store, "user_removed", args.user)
    except (StoreError, ValueError) as error:
        io.complain(str(error))
        return 1
    finally:
        store.close()
    io.say(f"removed {args.user}")
    return 0


def _unusable(password_hash: str) -> str:
    """
    @return: why a stored hash can no longer be used (one stored before a
        limit it breaks, such as L{schemes.MAX_ROUNDS}), as a last column
        of C{user list}; empty when it is usable.
    """
    try:
        schemes.identify(password_hash)
    except schemes.UnsupportedScheme as error:
        return f"\tunusable: {error}"
    return ""


def user_list(args, io: _IO) -> int:
    store = _open_store(args)
    try:
        rows = [
            (record, _unusable(store.hash_for(record.username)))
            for record in store.list_users()
        ]
    finally:
        store.close()
    for record, problem in rows:
        created = iso_utc(record.created)
        io.say(f"{record.username}\t{record.scheme}\t{created}{problem}")
    return 0


def auth(args, io: _IO) -> int:
    body = {"user": args.user, "target": args.target}
    if args.accept:
        body["accept"] = args.accept
    if args.timeout is not None:
        body["timeout"] = args.timeout
    wait = (args.timeout or 600.0) + ADMIN_SLACK
    answer = _request(args, io, "POST", "/v1/auth", body, timeout=wait)
    if answer is None:
        return 1
    verdict = answer["verdict"]
    line = f"{answer['user']}: {verdict}"
    if answer.get("source"):
        line += f" from {answer['source']}"
    if answer.get("reason") and verdict != "accepted":
        line += f" ({answer['reason']})"
    io.say(line)
    return 0 if verdict == "accepted" else 1


def status(args, io: _IO) -> int:
    answer = _request(args, io, "GET", "/v1/status", timeout=10.0)
    if answer is None:
        return 1
    io.say(f"up {answer['uptime']:.0f}s")
    for listener in answer["listeners"]:
        io.say(f"listening: {listener['name']} on {listener['address']}")
    io.say(f"pending authentications: {len(answer['pending'])}")
    io.say(f"open enrollment windows: {answer['enrollment_windows']}")
    io.say(f"endpoints: {answer['connected']} connected, {answer['offline']} offline")
    last = answer["last_alert"]
    if last is None:
        io.say("last alert: none since the server started")
    else:
        io.say(f"last alert: {last['type']} at {last['time']} ({last['reason']})")
    return 0


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds_in(text: str) -> float:
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


def _duration(text: str) -> float:
    """
    A duration of up to 24 hours, as seconds.
    """
    value = _seconds_in(text)
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError("a duration must be between 0 and 24h")
    return value


def _since(text: str) -> float:
    """
    C{--since}: a duration meaning that long ago (C{1h}, C{7d}), or an ISO
    8601 time (C{2026-11-22T07:00:00Z}; UTC unless it names its offset),
    as a POSIX time.
    """
    now = time.time()
    try:
        ago = _seconds_in(text)
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


def _since_query(path: str, since: float | None) -> str:
    """
    @return: C{path} asking for what happened at or after C{since}.
    """
    if since is None:
        return path
    return f"{path}?{urlencode({'since': repr(since)})}"


def _cell(value) -> str:
    """
    @return: C{value} as a column of a listing: C{-} for nothing.
    """
    if isinstance(value, list):
        value = ", ".join(value)
    return value or "-"


def alerts(args, io: _IO) -> int:
    answer = _request(args, io, "GET", _since_query("/v1/alerts", args.since))
    if answer is None:
        return 1
    for alert in answer["alerts"]:
        io.say(
            "\t".join(
                _cell(alert[name])
                for name in ("time", "type", "profile", "source", "locations", "reason")
            )
        )
    return 0


def _place(address, name) -> str:
    """
    @return: an address as a listing shows it, with its location name when
        the locations file maps it.
    """
    if address and name:
        return f"{name} ({address})"
    return _cell(address)


def _age(seconds: float) -> str:
    """
    @return: C{seconds} as the largest whole unit: C{42s}, C{5m}, C{3h},
        C{2d}.
    """
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _print_json(io: _IO, value) -> None:
    io.say(json.dumps(value, indent=2, sort_keys=True))


def clients(args, io: _IO) -> int:
    answer = _request(args, io, "GET", "/v1/clients")
    if answer is None:
        return 1
    if args.json:
        _print_json(io, answer["clients"])
        return 0
    for row in answer["clients"]:
        io.say(
            "\t".join(
                [
                    row["user"],
                    _place(row["address"], row["location"]),
                    row["state"]
                    + (f" since {row['offline_since']}" if row["offline_since"] else ""),
                    _cell(row["last_rotation"]),
                    f"{row['key_id']} ({_age(row['key_age'])} old)",
                ]
            )
        )
    return 0


def history(args, io: _IO) -> int:
    path = f"/v1/history?{urlencode({'user': args.user})}"
    answer = _request(args, io, "GET", path)
    if answer is None:
        return 1
    if args.json:
        _print_json(io, answer)
        return 0
    lines = [
        (
            move["time"],
            f"{move['time']}\tmoved\t{_place(move['from'], move['from_location'])}"
            f" -> {_place(move['to'], move['to_location'])}",
        )
        for move in answer["moves"]
    ] + [
        (
            alert["time"],
            "\t".join(
                _cell(alert[name])
                for name in ("time", "type", "source", "locations", "reason")
            ),
        )
        for alert in answer["alerts"]
    ]
    for _, line in sorted(lines, key=lambda pair: pair[0]):
        io.say(line)
    return 0


def audit_list(args, io: _IO) -> int:
    answer = _request(args, io, "GET", _since_query("/v1/audit", args.since))
    if answer is None:
        return 1
    for event in answer["events"]:
        io.say(
            "\t".join(
                _cell(event[name])
                for name in ("time", "event", "user", "source", "locations", "reason")
            )
        )
    return 0


def audit_verify(args, io: _IO) -> int:
    """
    Check the audit log's chain through the daemon or, with C{--file}, in
    a database file read directly (a copy, or the store of a daemon that
    is down), changing nothing in it.
    """
    if args.file is None:
        answer = _request(args, io, "GET", "/v1/audit/verify")
        if answer is None:
            return 1
        problems = answer["problems"]
    else:
        try:
            store = open_store(args.file, read_only=True)
            try:
                problems = store.verify_audit()
            finally:
                store.close()
        except StoreError as error:
            io.complain(str(error))
            return 1
    if not problems:
        io.say("the audit log is intact")
        return 0
    for problem in problems:
        io.say(problem)
    io.complain(f"the audit log is broken: {len(problems)} problem(s)")
    return 1


def enroll(args, io: _IO) -> int:
    body = {"user": args.user, "location": args.location, "timeout": args.timeout}
    if args.password_stdin:
        password = io.stdin.readline().rstrip("\r\n")
        if not password:
            io.complain("refusing an empty password")
            return 2
        body["password"] = password
    if args.replace:
        body["replace"] = True
    if args.wide:
        body["wide"] = True
    answer = _request(args, io, "POST", "/v1/enroll", body)
    if answer is None:
        return 1
    if not args.password_stdin:
        io.say(f"one-time password for {answer['user']}: {answer['password']}")
    io.say(f"window at {answer['location']} until {answer['deadline']}")
    for fingerprint in answer["fingerprints"]:
        io.say(f"server certificate sha256: {fingerprint}")
    return 0


def windows(args, io: _IO) -> int:
    answer = _request(args, io, "GET", "/v1/windows")
    if answer is None:
        return 1
    for window in answer["windows"]:
        io.say(
            f"{window['user']}\t{window['location']}\t"
            f"{window['seconds_left']:.0f}s left\t"
            f"{window['attempts']}/{window['max_attempts']} failed"
            + ("\treplaces profile" if window["replace"] else "")
        )
    return 0


def cancel(args, io: _IO) -> int:
    answer = _request(args, io, "POST", "/v1/cancel", {"user": args.user})
    if answer is None:
        return 1
    io.say(f"closed the enrollment window for {answer['user']}")
    return 0


def blacklist(args, io: _IO) -> int:
    answer = _request(args, io, "GET", "/v1/blacklist")
    if answer is None:
        return 1
    for entry in answer["blacklist"]:
        io.say(
            f"{entry['user']}\t{entry['time']}\t{entry['alert']}\t"
            f"from {_cell(entry['source'])}\t{entry['reason']}"
        )
    return 0


def unblock(args, io: _IO) -> int:
    answer = _request(args, io, "POST", "/v1/unblock", {"user": args.user})
    if answer is None:
        return 1
    io.say(
        f"lifted the blacklist entry of {answer['user']} and removed its "
        f"profile: enroll the device again (suto-admin enroll)"
    )
    return 0


def reload(args, io: _IO) -> int:
    answer = _request(args, io, "POST", "/v1/reload", {})
    if answer is None:
        return 1
    failed = False
    for result in answer["certificates"]:
        if "error" in result:
            failed = True
            io.complain(f"kept the old certificate: {result['error']}")
        else:
            io.say(f"serving {result['subject']} sha256 {result['fingerprint']}")
    return 1 if failed else 0


def cert(args, io: _IO) -> int:
    """
    The certificates the running daemon serves (whatever --listen named,
    after any reload); with no daemon answering, the generated one in the
    data folder, saying so.
    """
    try:
        code, answer = _call(args.data, "GET", "/v1/status", timeout=10.0)
    except DaemonUnreachable as error:
        path = os.path.join(args.data, certificate.CERT_FILE)
        try:
            with open(path, "rb") as handle:
                info = certificate.describe(handle.read())
        except (OSError, ValueError) as file_error:
            io.complain(f"{error}; cannot read the certificate {path}: {file_error}")
            return 1
        io.complain(f"{error}; showing the certificate file {path}")
        served = [
            {
                "subject": info.subject,
                "fingerprint": info.fingerprint,
                "not_after": info.not_after.isoformat(),
            }
        ]
    else:
        if code != 200:
            io.complain(answer.get("error", f"the daemon answered {code}"))
            return 1
        served = answer["certificates"]
        if not served:
            io.complain("the daemon serves no TLS listener")
            return 1
    for info in served:
        io.say(f"subject: {info['subject']}")
        io.say(f"sha256: {info['fingerprint']}")
        io.say(f"expires: {info['not_after']}")
    return 0


def config_check(args, io: _IO) -> int:
    """
    Check a configuration file as C{twistd suto --config} would read it,
    so that a restart is only attempted with a file the server accepts.
    Every problem goes to standard error as C{FILE:LINE: message}.
    """
    problems = config.check(args.file, Options)
    for problem in problems:
        print(problem.describe(args.file), file=io.stderr)
    if problems:
        io.complain(f"{len(problems)} problem(s) in {args.file}")
        return 1
    io.say(f"{args.file}: ok")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suto-admin", description="Administer a SUTO server."
    )
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help="the server's data folder"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    user = commands.add_parser("user", help="manage accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create an account")
    add.add_argument("user")
    add.add_argument("--scheme", choices=schemes.SCHEMES, default=schemes.DEFAULT_SCHEME)
    add.add_argument("--rounds", type=int, default=None)
    add.add_argument("--password-stdin", action="store_true")
    add.set_defaults(run=user_add)
    delete = user.add_parser("del", help="delete an account")
    delete.add_argument("user")
    delete.set_defaults(run=user_del)
    user.add_parser("list", help="list accounts").set_defaults(run=user_list)

    authenticate = commands.add_parser(
        "auth", help="authenticate a user at a device now"
    )
    authenticate.add_argument("user")
    authenticate.add_argument(
        "--target", required=True, help="address, IPv4 network, or list"
    )
    authenticate.add_argument(
        "--accept", help="networks allowed to answer a 255.255.255.255 hello"
    )
    authenticate.add_argument("--timeout", type=float, default=None)
    authenticate.set_defaults(run=auth)

    enrolling = commands.add_parser(
        "enroll", help="open an enrollment window for a user at a location"
    )
    enrolling.add_argument("user")
    enrolling.add_argument(
        "--location", required=True, help="address, CIDR, or a locations-file name"
    )
    enrolling.add_argument("--timeout", type=_duration, default=120.0)
    enrolling.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the one-time password instead of generating one",
    )
    enrolling.add_argument(
        "--replace", action="store_true", help="re-enroll an enrolled user"
    )
    enrolling.add_argument(
        "--wide",
        action="store_true",
        help=f"allow a location wider than /{WIDEST_PREFIX[4]} (IPv4) or "
        f"/{WIDEST_PREFIX[6]} (IPv6); no hello goes to such a network",
    )
    enrolling.set_defaults(run=enroll)
    commands.add_parser("windows", help="list open enrollment windows").set_defaults(
        run=windows
    )
    cancelling = commands.add_parser("cancel", help="close an enrollment window")
    cancelling.add_argument("user")
    cancelling.set_defaults(run=cancel)

    commands.add_parser(
        "blacklist", help="list the blacklisted profiles"
    ).set_defaults(run=blacklist)
    unblocking = commands.add_parser(
        "unblock", help="lift a blacklist entry (the device must enroll again)"
    )
    unblocking.add_argument("user")
    unblocking.set_defaults(run=unblock)

    alerting = commands.add_parser("alerts", help="list the alerts")
    alerting.add_argument(
        "--since", type=_since, default=None, help="a duration like 1h, or an ISO time"
    )
    alerting.set_defaults(run=alerts)
    listing = commands.add_parser(
        "clients", help="every enrolled profile: location, state, key age"
    )
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    listing.set_defaults(run=clients)
    moving = commands.add_parser(
        "history", help="a profile's moves and the alerts about it"
    )
    moving.add_argument("user")
    moving.add_argument("--json", action="store_true", help="JSON for scripts")
    moving.set_defaults(run=history)
    auditing = commands.add_parser("audit", help="list or verify the audit log")
    auditing.add_argument(
        "--since", type=_since, default=None, help="a duration like 1h, or an ISO time"
    )
    auditing.set_defaults(run=audit_list)
    verifying = auditing.add_subparsers(dest="audit_command").add_parser(
        "verify", help="check the audit log's hash chain"
    )
    verifying.add_argument(
        "--file",
        default=None,
        help="check this database file directly, read-only, instead of asking "
        "the daemon (a copy, or the store while the daemon is down)",
    )
    verifying.set_defaults(run=audit_verify)

    commands.add_parser("status", help="is the daemon up").set_defaults(run=status)
    commands.add_parser("cert", help="the TLS certificate").set_defaults(run=cert)
    commands.add_parser(
        "reload", help="re-read renewed TLS certificates without a restart"
    ).set_defaults(run=reload)
    configuration = commands.add_parser(
        "config", help="the server's configuration file"
    ).add_subparsers(dest="config_command", required=True)
    checking = configuration.add_parser(
        "check", help="report every problem of a configuration file"
    )
    checking.add_argument("file")
    checking.set_defaults(run=config_check)
    return parser


def main(argv=None, stdin=None, stdout=None, stderr=None, getpass=getpass.getpass) -> int:
    io = _IO(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr, getpass)
    args = _parser().parse_args(argv)
    return args.run(args, io)
