"""
C{suto-admin}: the operator's command line.

Account commands work on the data folder's store directly (SQLite allows
the daemon and this tool to share it), so accounts can be made before the
daemon first starts.  Commands that need the running daemon (C{auth},
C{status}) speak JSON over HTTP to its admin socket.

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

from suto_server import certificate, schemes
from suto_server.store.errors import StoreError
from suto_server.store.sqlite import SQLiteStore
from suto_server.tap import ADMIN_SOCKET, DATABASE_FILE, DEFAULT_DATA, prepare_data_folder

#: Seconds an admin request may take beyond the authentication's own timeout.
ADMIN_SLACK = 10.0


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


def _read_password(args, io: _IO, prompt: str) -> str | None:
    if args.password_stdin:
        password = io.stdin.readline().rstrip("\r\n")
    else:
        password = io.getpass(prompt)
        if io.getpass("Again: ") != password:
            io.complain("the passwords do not match")
            return None
    if not password:
        io.complain("refusing an empty password")
        return None
    return password


def _open_store(args) -> SQLiteStore:
    data = prepare_data_folder(args.data)
    return SQLiteStore.open(os.path.join(data, DATABASE_FILE))


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
    except (StoreError, ValueError) as error:
        io.complain(str(error))
        return 1
    finally:
        store.close()
    io.say(f"removed {args.user}")
    return 0


def user_list(args, io: _IO) -> int:
    store = _open_store(args)
    try:
        records = store.list_users()
    finally:
        store.close()
    for record in records:
        created = datetime.datetime.fromtimestamp(
            record.created, datetime.timezone.utc
        ).strftime("%Y-%m-%d %H:%M:%SZ")
        io.say(f"{record.username}\t{record.scheme}\t{created}")
    return 0


def auth(args, io: _IO) -> int:
    body = {"user": args.user, "target": args.target}
    if args.accept:
        body["accept"] = args.accept
    if args.timeout is not None:
        body["timeout"] = args.timeout
    wait = (args.timeout or 600.0) + ADMIN_SLACK
    try:
        status, answer = _call(args.data, "POST", "/v1/auth", body, timeout=wait)
    except DaemonUnreachable as error:
        io.complain(str(error))
        return 1
    if status != 200:
        io.complain(answer.get("error", f"the daemon answered {status}"))
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
    try:
        code, answer = _call(args.data, "GET", "/v1/status", timeout=10.0)
    except DaemonUnreachable as error:
        io.complain(str(error))
        return 1
    if code != 200:
        io.complain(f"the daemon answered {code}")
        return 1
    io.say(f"up {answer['uptime']:.0f}s")
    for listener in answer["listeners"]:
        io.say(f"listening: {listener['name']} on {listener['address']}")
    io.say(f"pending authentications: {len(answer['pending'])}")
    return 0


def reload(args, io: _IO) -> int:
    try:
        code, answer = _call(args.data, "POST", "/v1/reload", {}, timeout=30.0)
    except DaemonUnreachable as error:
        io.complain(str(error))
        return 1
    failed = False
    for result in answer.get("certificates", []):
        if "error" in result:
            failed = True
            io.complain(f"kept the old certificate: {result['error']}")
        else:
            io.say(f"serving {result['subject']} sha256 {result['fingerprint']}")
    return 1 if failed or code != 200 else 0


def cert(args, io: _IO) -> int:
    path = os.path.join(args.data, certificate.CERT_FILE)
    try:
        with open(path, "rb") as handle:
            info = certificate.describe(handle.read())
    except (OSError, ValueError) as error:
        io.complain(f"cannot read the certificate {path}: {error}")
        return 1
    io.say(f"subject: {info.subject}")
    io.say(f"sha256: {info.fingerprint}")
    io.say(f"expires: {info.not_after.isoformat()}")
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

    commands.add_parser("status", help="is the daemon up").set_defaults(run=status)
    commands.add_parser("cert", help="the TLS certificate").set_defaults(run=cert)
    commands.add_parser(
        "reload", help="re-read renewed TLS certificates without a restart"
    ).set_defaults(run=reload)
    return parser


def main(argv=None, stdin=None, stdout=None, stderr=None, getpass=getpass.getpass) -> int:
    io = _IO(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr, getpass)
    args = _parser().parse_args(argv)
    return args.run(args, io)
