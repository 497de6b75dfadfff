"""
C{suto-client}: manage the endpoint agent's accounts.

    suto-client account add USER --server HOST[:PORT] --pin SHA256
    suto-client account add USER --server HOST[:PORT] --ca BUNDLE.pem
    suto-client account add USER --server HOST[:PORT] --legacy
    suto-client account list
    suto-client account del USER
    suto-client enroll --server HOST[:PORT] --user USER --pin SHA256
    suto-client enroll --server HOST[:PORT] --user USER --ca BUNDLE.pem
    suto-client enroll --user USER --pin SHA256    # the server from its hello
    suto-client fingerprint
    suto-client config check FILE

Every subcommand except C{fingerprint} and C{config} takes C{--state
PATH} (default: the agent's default state file).  The running agent reads
the file at every hello, so changes apply without a restart.  The
password is prompted for, or read from the first line of standard input
with C{--password-stdin}; it is kept in the state file (mode 0600) only
until the first successful authentication replaces it by the salted hash.

C{enroll} proves a one-time password from the server's operator, read the
same way, and stores the enrolled profile's first key in the state file.
Without C{--server} it first waits for the hello with which the server
announces the enrollment window, and enrolls with its sender on port
2021 (see L{suto_client.announcement}).
C{fingerprint} shows this machine's fingerprint hash and which sources it
was computed from, never what they read.  C{config check} reports every
problem of a C{twistd suto-client --config} file before the agent is
restarted with it.

A TLS account trusts the server either by the SHA-256 pin of its
certificate or through a CA bundle (C{--ca}); with C{--client-cert} and
C{--client-key} it presents a client certificate to a server that demands
one.  The files are read once when the account is added, to catch a wrong
path at once, and again at every authentication, so renewed files need no
change to the account.  C{enroll} takes the same options, with the same
rules, and the enrolled profile keeps them for its rotations.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import sys
from typing import TextIO

from twisted.internet.defer import succeed
from twisted.internet.error import CannotListenError
from twisted.internet.task import react

from suto_client.agent import DEFAULT_HELLO_PORT
from suto_client.announcement import NoAnnouncement, wait_for_announcement
from suto_client.enrollment import EnrollOutcome, EnrollResult, enroll
from suto_client.fingerprint import (
    FingerprintError,
    compute_fingerprint,
    default_sources,
)
from suto_client.protocol import account_trust
from suto_client.statefile import (
    DEFAULT_SERVER_PORT,
    DEFAULT_STATE_PATH,
    Account,
    StateFileError,
    load_state,
    save_state,
)
from suto_client.tap import Options
from suto_client.tls import normalise_pin
from suto_server.core import commandline, wire
from suto_server.core.commandline import (
    CommandError,
    Streams,
    check_config,
    read_password,
)


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


def _check_transport(args) -> None:
    """
    Refuse contradictory or missing transport options: a legacy account
    speaks plain TCP, so it takes no TLS option; a TLS account needs
    exactly one way to trust the server; a client certificate needs its
    key.
    """
    tls_options = [
        option
        for option, value in (
            ("--pin", args.pin),
            ("--ca", args.ca),
            ("--client-cert", args.client_cert),
            ("--client-key", args.client_key),
        )
        if value is not None
    ]
    if args.legacy:  # None for enroll, which has no --legacy
        if tls_options:
            raise CommandError(
                f"{tls_options[0]} has no use with --legacy: legacy "
                f"accounts speak plain TCP"
            )
        return
    if args.pin is None and args.ca is None:
        raise CommandError(
            "a TLS account needs --pin with the SHA-256 fingerprint of the "
            "server's certificate (shown by 'suto-admin cert'), or --ca "
            "with the CA bundle that vouches for it"
            + (
                "; use --legacy only for a SUTO 1.3.2 server without TLS"
                if args.legacy is not None
                else ""
            )
        )
    if args.pin is not None and args.ca is not None:
        raise CommandError(
            "give --pin or --ca, not both: the server is trusted one way"
        )
    if (args.client_cert is None) != (args.client_key is None):
        raise CommandError("--client-cert and --client-key go together")


def _absolute(path: str | None) -> str | None:
    """
    The agent may run from another directory than the command: keep
    paths absolute.
    """
    return None if path is None else os.path.abspath(path)


def _transport(args) -> dict:
    """
    The checked transport options, as L{Account} fields: the normalised
    pin and absolute paths.

    @raise CommandError: they contradict each other, or the pin is
        malformed.
    """
    _check_transport(args)
    pin = None
    if args.pin is not None:
        try:
            pin = normalise_pin(args.pin)
        except ValueError as e:
            raise CommandError(f"--pin: {e}") from None
    return dict(
        pin=pin,
        ca=_absolute(args.ca),
        client_cert=_absolute(args.client_cert),
        client_key=_absolute(args.client_key),
    )


def _add(args, io: Streams) -> int:
    _check_user(args.user)
    host, port = parse_server(args.server)
    account = Account(
        user=args.user,
        server_host=host,
        server_port=port,
        legacy=args.legacy,
        **_transport(args),
    )
    if not account.legacy:
        try:
            account_trust(account)
        except ValueError as e:
            raise CommandError(str(e)) from None
    state = load_state(args.state)
    if args.user in state.accounts:
        raise CommandError(
            f"{args.user} already has an account; delete it first"
        )
    account.password = _password(args, io)
    state.accounts[args.user] = account
    save_state(args.state, state)
    io.say(f"added {args.user} for {_server(host, port)}")
    return 0


def _list(args, io: Streams) -> int:
    accounts = load_state(args.state).accounts
    if not accounts:
        io.say("no accounts")
        return 0
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
        io.say("  ".join(cells + [row[3]]))
    return 0


def _delete(args, io: Streams) -> int:
    state = load_state(args.state)
    if state.accounts.pop(args.user, None) is None:
        raise CommandError(f"no account for {args.user}")
    save_state(args.state, state)
    io.say(f"deleted {args.user}")
    return 0


#: Seconds C{suto-client enroll} waits for the server's hello by default:
#: longer than the default window, so the command may be started first.
DEFAULT_HELLO_WAIT = 300.0


def _enroll(args, io: Streams) -> int:
    if not wire.can_enroll(args.user):
        raise CommandError(
            f"{args.user!r} cannot be enrolled: use letters, digits, '.', "
            f"'_' and '-', at most 64 characters, not starting with 'DATA_'"
        )
    hello = _hello_options(args)
    if hello is None:
        host, port = parse_server(args.server)
    else:
        host, port = None, DEFAULT_SERVER_PORT
    transport = _transport(args)
    existing = load_state(args.state).profiles.get(args.user)
    if existing is not None and not args.replace:
        raise CommandError(
            f"{args.user} is already enrolled with "
            f"{_server(existing.server_host, existing.server_port)}; "
            f"use --replace to enroll again"
        )
    password = _password(args, io)
    if hello is not None:
        print(
            f"waiting up to {hello[2]:g} s for the server's hello for "
            f"{args.user} on UDP port {hello[0]}",
            file=io.stderr,
        )
    result = _run_enrollment(
        hello,
        host=host,
        port=port,
        **transport,
        user=args.user,
        password=password,
    )
    if result.outcome is not EnrollOutcome.ENROLLED:
        raise CommandError(f"{args.user} was not enrolled: {result.reason}")
    profile = result.profile
    try:
        # Read again: the agent may have changed the file meanwhile.
        state = load_state(args.state)
        state.profiles[args.user] = profile
        save_state(args.state, state)
    except StateFileError as e:
        raise CommandError(
            f"the server enrolled {args.user}, but the key could not be "
            f"saved ({e}); ask for a new enrollment window to replace it"
        ) from None
    io.say(
        f"enrolled {args.user} with "
        f"{_server(profile.server_host, profile.server_port)}, "
        f"key id {profile.key_id[:8]}\u2026"
    )
    return 0


def _hello_options(args) -> tuple[int, str, float] | None:
    """
    Where and how long to wait for the server's hello: L{None} with
    C{--server}, which the hello options then may not accompany.
    """
    given = [
        option
        for option, value in (
            ("--hello-port", args.hello_port),
            ("--hello-interface", args.hello_interface),
            ("--hello-wait", args.hello_wait),
        )
        if value is not None
    ]
    if args.server is not None:
        if given:
            raise CommandError(
                f"{given[0]} has no use with --server: the hello is waited "
                f"for only to learn the server's address"
            )
        return None
    port = DEFAULT_HELLO_PORT if args.hello_port is None else args.hello_port
    wait = DEFAULT_HELLO_WAIT if args.hello_wait is None else args.hello_wait
    if not 0 < port < 65536:
        raise CommandError(f"--hello-port must be 1-65535, not {port}")
    if not 0 < wait <= 86400:
        raise CommandError("--hello-wait must be more than 0 and at most 86400 s")
    return port, args.hello_interface or "", wait


def _run_enrollment(hello, **arguments) -> EnrollResult:
    """
    Run the reactor for as long as L{enroll} with C{arguments} takes; with
    C{hello} (port, interface, seconds), first for as long as the server's
    hello takes to come, which then names the host.

    @raise CommandError: no hello came, or the enrollment was interrupted
        before it ended.
    """
    results: list = []

    def run(reactor):
        if hello is None:
            found = succeed(arguments["host"])
        else:
            port, interface, wait = hello
            try:
                found = wait_for_announcement(
                    reactor, arguments["user"], port, interface, wait
                )
            except CannotListenError as e:
                results.append(
                    CommandError(
                        f"cannot listen for the server's hello on UDP port "
                        f"{port} ({e.socketError}); stop the agent while "
                        f"enrolling, or give --server"
                    )
                )
                return None

        def not_announced(failure):
            failure.trap(NoAnnouncement)
            results.append(
                CommandError(f"{failure.value}; check the window, or give --server")
            )

        found.addCallback(
            lambda host: enroll(reactor, **{**arguments, "host": host})
        ).addCallbacks(results.append, not_announced)
        return found

    try:
        react(run)
    except SystemExit:
        # react always exits; the result says how the enrollment went.
        pass
    if not results:
        raise CommandError("the enrollment was interrupted")
    if isinstance(results[0], CommandError):
        raise results[0]
    return results[0]


def _fingerprint(args, io: Streams) -> int:
    try:
        fingerprint = compute_fingerprint(default_sources())
    except FingerprintError as e:
        raise CommandError(str(e)) from None
    io.say(fingerprint.hexdigest())
    io.say(f"sources: {', '.join(fingerprint.used)}")
    return 0


def _config_check(args, io: Streams) -> int:
    return check_config(io, args.file, Options)


def _server(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


_COMMANDS = {
    ("account", "add"): _add,
    ("account", "list"): _list,
    ("account", "del"): _delete,
    ("enroll", None): _enroll,
    ("fingerprint", None): _fingerprint,
    ("config", "check"): _config_check,
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
    _add_tls_options(add)
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

    enrollment = groups.add_parser(
        "enroll",
        help="enroll this machine for a user with a one-time password",
    )
    enrollment.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        help=f"the server's IP address and port (default "
        f"{DEFAULT_SERVER_PORT}); IPv6 as [::1]:{DEFAULT_SERVER_PORT}; "
        f"without it, the sender of the server's hello, port "
        f"{DEFAULT_SERVER_PORT}",
    )
    enrollment.add_argument(
        "--user", required=True, help="the user the window was opened for"
    )
    enrollment.add_argument(
        "--hello-port",
        type=int,
        metavar="PORT",
        help=f"without --server: the UDP port to wait for the hello on "
        f"(default {DEFAULT_HELLO_PORT})",
    )
    enrollment.add_argument(
        "--hello-interface",
        metavar="ADDRESS",
        help="without --server: the local address to wait for the hello "
        "on (default: all)",
    )
    enrollment.add_argument(
        "--hello-wait",
        type=float,
        metavar="SECONDS",
        help=f"without --server: how long to wait for the hello (default "
        f"{DEFAULT_HELLO_WAIT:g})",
    )
    _add_tls_options(enrollment)
    enrollment.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the one-time password from the first line of standard "
        "input",
    )
    enrollment.add_argument(
        "--replace",
        action="store_true",
        help="replace the profile already enrolled for the user",
    )
    enrollment.add_argument(
        "--state",
        default=DEFAULT_STATE_PATH,
        metavar="PATH",
        help=f"the agent's state file (default {DEFAULT_STATE_PATH})",
    )
    enrollment.set_defaults(action=None, legacy=None)
    groups.add_parser(
        "fingerprint",
        help="show this machine's fingerprint hash and its sources",
    ).set_defaults(action=None)
    configuration = groups.add_parser(
        "config", help="the agent's configuration file"
    ).add_subparsers(dest="action", required=True)
    checking = configuration.add_parser(
        "check", help="report every problem of a configuration file"
    )
    checking.add_argument("file")
    return parser


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    """
    The options that say how a TLS connection trusts the server and
    whether it presents a client certificate.
    """
    parser.add_argument(
        "--pin",
        metavar="SHA256",
        help="SHA-256 fingerprint of the server's TLS certificate",
    )
    parser.add_argument(
        "--ca",
        metavar="PATH",
        help="PEM bundle of the CA certificates that vouch for the server's "
        "certificate, instead of --pin; the certificate must be issued for "
        "the server's IP address",
    )
    parser.add_argument(
        "--client-cert",
        metavar="PATH",
        help="PEM client certificate to present to a server that demands "
        "one (mutual TLS); needs --client-key",
    )
    parser.add_argument(
        "--client-key",
        metavar="PATH",
        help="unencrypted PEM key of the client certificate",
    )


def _password(args, io: Streams) -> str:
    return read_password(
        io,
        args.password_stdin,
        f"Password for {args.user}: ",
        again="Repeat it: ",
        mismatch="the passwords differ",
        status=1,
    )


def _prompt_on(stream: TextIO):
    """
    @return: a password prompt writing to C{stream}: the agent's prompts
        go to standard error, with its complaints.
    """
    return lambda prompt: getpass.getpass(prompt, stream=stream)


def _words(args: argparse.Namespace) -> tuple[str, str | None]:
    return args.group, args.action


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    getpass=None,
) -> int:
    """
    Run one C{suto-client} command.

    @param argv: the arguments, without the program name; the process's
        own by default.
    @param getpass: reads a password without echo, given its prompt; by
        default from the terminal, prompting on standard error.
    @return: the exit status: 0 on success, 1 when the command failed, 2
        for a usage error.
    """
    stderr = sys.stderr if stderr is None else stderr
    io = commandline.streams(
        "suto-client", stdin, stdout, stderr, getpass or _prompt_on(stderr)
    )
    return commandline.run(
        _parser(), _COMMANDS, _words, argv, io, failures=(StateFileError,)
    )
