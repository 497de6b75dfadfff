"""
C{suto-client}: manage the endpoint agent's accounts.

    suto-client account add USER --server HOST[:PORT] --pin SHA256
    suto-client account add USER --server HOST[:PORT] --legacy
    suto-client account list
    suto-client account del USER

Every subcommand takes C{--state PATH} (default: the agent's default state
file).  The running agent reads the file at every hello, so changes apply
without a restart.  The password is prompted for, or read from the first
line of standard input with C{--password-stdin}; it is kept in the state
file (mode 0600) only until the first successful authentication replaces it
by the salted hash.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import TextIO

from suto_client.statefile import (
    DEFAULT_SERVER_PORT,
    DEFAULT_STATE_PATH,
    Account,
    StateFileError,
    load_state,
    save_state,
)
from suto_client.tls import normalise_pin
from suto_server import wire

MAX_PASSWORD = 1024
"""The longest password accepted, in characters."""


class CommandError(Exception):
    """
    The command cannot be carried out; the message says why, for the
    person who typed it.
    """


def parse_server(text: str) -> tuple[str, int]:
    """
    Read C{HOST[:PORT]}, where HOST is an IP address and an IPv6 address
    with a port is bracketed (C{[::1]:2021}).

    @return: the address in its canonical form, and the port.
    @raise CommandError: C{text} is not of that form.
    """
    host, port = text, str(DEFAULT_SERVER_PORT)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise CommandError(f"cannot read the server address {text!r}")
        if rest:
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise CommandError(
            f"the server must be an IP address, not {host!r}: hellos are "
            f"accepted only from that address"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"the server port must be 1-65535, not {port!r}")
    return str(address), int(port)


def _check_user(user: str) -> None:
    try:
        wire.Hello(user, None, wire.HelloForm.UDP_HELLO)
    except wire.ProtocolError:
        raise CommandError(
            f"{user!r} cannot appear in a SUTO hello: use letters, digits, "
            f"'.', '_' and '-', at most 64 characters"
        ) from None


def _read_password(args, stdin: TextIO, stderr: TextIO) -> str:
    if args.password_stdin:
        password = stdin.readline(MAX_PASSWORD + 2).rstrip("\r\n")
    else:
        prompt = f"Password for {args.user}: "
        password = getpass.getpass(prompt, stream=stderr)
        if getpass.getpass("Repeat it: ", stream=stderr) != password:
            raise CommandError("the passwords differ")
    if not password:
        raise CommandError("refusing an empty password")
    if len(password) > MAX_PASSWORD or "\0" in password:
        raise CommandError(
            f"the password must be at most {MAX_PASSWORD} characters, "
            f"without NUL"
        )
    return password


def _add(args, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
    _check_user(args.user)
    host, port = parse_server(args.server)
    if args.legacy and args.pin is not None:
        raise CommandError(
            "--pin has no use with --legacy: legacy accounts speak plain TCP"
        )
    if not args.legacy and args.pin is None:
        raise CommandError(
            "a TLS account needs --pin with the SHA-256 fingerprint of the "
            "server's certificate (shown by 'suto-admin cert'); use "
            "--legacy only for a SUTO 1.3.2 server without TLS"
        )
    pin = None
    if args.pin is not None:
        try:
            pin = normalise_pin(args.pin)
        except ValueError as e:
            raise CommandError(f"--pin: {e}") from None
    state = load_state(args.state)
    if args.user in state.accounts:
        raise CommandError(
            f"{args.user} already has an account; delete it first"
        )
    password = _read_password(args, stdin, stderr)
    state.accounts[args.user] = Account(
        user=args.user,
        server_host=host,
        server_port=port,
        pin=pin,
        legacy=args.legacy,
        password=password,
    )
    save_state(args.state, state)
    stdout.write(f"added {args.user} for {_server(host, port)}\n")


def _list(args, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
    accounts = load_state(args.state).accounts
    if not accounts:
        stdout.write("no accounts\n")
        return
    rows = [("USER", "SERVER", "TRANSPORT", "SALT")]
    for user, account in sorted(accounts.items()):
        rows.append(
            (
                user,
                _server(account.server_host, account.server_port),
                "legacy" if account.legacy else "tls",
                "cached" if account.salted_hash else "not cached",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        stdout.write("  ".join(cells + [row[3]]) + "\n")


def _delete(args, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
    state = load_state(args.state)
    if state.accounts.pop(args.user, None) is None:
        raise CommandError(f"no account for {args.user}")
    save_state(args.state, state)
    stdout.write(f"deleted {args.user}\n")


def _server(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


_COMMANDS = {
    ("account", "add"): _add,
    ("account", "list"): _list,
    ("account", "del"): _delete,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suto-client",
        description="Manage the accounts of the SUTO endpoint agent.",
    )
    groups = parser.add_subparsers(dest="group", required=True)
    account = groups.add_parser("account", help="manage accounts")
    actions = account.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="add an account")
    add.add_argument("user", help="the user name the server's hellos carry")
    add.add_argument(
        "--server",
        required=True,
        metavar="HOST[:PORT]",
        help=f"the server's IP address and port (default "
        f"{DEFAULT_SERVER_PORT}); IPv6 as [::1]:{DEFAULT_SERVER_PORT}",
    )
    add.add_argument(
        "--pin",
        metavar="SHA256",
        help="SHA-256 fingerprint of the server's TLS certificate",
    )
    add.add_argument(
        "--legacy",
        action="store_true",
        help="plain TCP in SUTO 1.3.2 framing, for servers without TLS",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    actions.add_parser("list", help="list the accounts, without secrets")
    delete = actions.add_parser("del", help="delete an account")
    delete.add_argument("user")
    for subcommand in (add, actions.choices["list"], delete):
        subcommand.add_argument(
            "--state",
            default=DEFAULT_STATE_PATH,
            metavar="PATH",
            help=f"the agent's state file (default {DEFAULT_STATE_PATH})",
        )
    return parser


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """
    Run one C{suto-client} command.

    @param argv: the arguments, without the program name; the process's
        own by default.
    @return: the exit status: 0 on success, 1 when the command failed, 2
        for a usage error.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            args = _parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    command = _COMMANDS[args.group, args.action]
    try:
        command(args, stdin, stdout, stderr)
    except (CommandError, StateFileError) as e:
        stderr.write(f"suto-client: {e}\n")
        return 1
    return 0
