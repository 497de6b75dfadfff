# -*- test-case-name: tests.client.test_account_commands -*-
"""
C{suto-client account add|list|del}: the agent's accounts in its state
file, and how a command reads the server an account or an enrollment
talks to.

C{account add} (like C{enroll}) makes the state file when there is none:
an agent's state legitimately starts empty, and its first account or
enrollment is what sets a machine up.  C{list} and C{del} only read an
existing file and fail without one, so that a wrong path shows as such.

A TLS account trusts the server either by the SHA-256 pin of its
certificate or through a CA bundle (C{--ca}); with C{--client-cert} and
C{--client-key} it presents a client certificate to a server that demands
one.  The files are read once when the account is added, to catch a wrong
path at once, and again at every authentication, so renewed files need no
change to the account.  C{suto-client enroll} checks the same options with
the same rules (L{transport}), and the enrolled profile keeps them for its
rotations.
"""

from __future__ import annotations

import ipaddress
import os

from suto_client.protocol import account_trust
from suto_client.state import DEFAULT_SERVER_PORT, Account, server_text
from suto_client.statefile import load_state, save_state
from suto_client.tls import normalise_pin
from suto_server.core import wire
from suto_server.core.commandline import CommandError, Streams, read_password


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


def transport(args) -> dict:
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


def add(args, io: Streams) -> int:
    _check_user(args.user)
    host, port = parse_server(args.server)
    account = Account(
        user=args.user,
        server_host=host,
        server_port=port,
        legacy=args.legacy,
        **transport(args),
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
    account.password = ask_password(args, io)
    state.accounts[args.user] = account
    save_state(args.state, state)
    io.say(f"added {args.user} for {server_text(host, port)}")
    return 0


def existing_state(path: str):
    """
    @return: the state in the file C{path}, which must exist: listing or
        deleting reads an agent's state, and a command run with the wrong
        path or in the wrong directory says so instead of showing an
        empty one.
    @raise CommandError: there is no file there.
    """
    if not os.path.lexists(path):
        raise CommandError(
            f"there is no state file {os.path.abspath(path)}: the agent's "
            f"first 'account add' or 'enroll' makes it"
        )
    return load_state(path)


def list_accounts(args, io: Streams) -> int:
    accounts = existing_state(args.state).accounts
    if not accounts:
        io.say("no accounts")
        return 0
    rows = [("USER", "SERVER", "TRANSPORT", "SALT")]
    for user, account in sorted(accounts.items()):
        rows.append(
            (
                user,
                server_text(account.server_host, account.server_port),
                "legacy" if account.legacy else "tls",
                "cached" if account.salted_hash else "not cached",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        io.say("  ".join(cells + [row[3]]))
    return 0


def delete(args, io: Streams) -> int:
    state = existing_state(args.state)
    if state.accounts.pop(args.user, None) is None:
        raise CommandError(f"no account for {args.user}")
    save_state(args.state, state)
    io.say(f"deleted {args.user}")
    return 0


def ask_password(args, io: Streams) -> str:
    """
    @return: the password of C{args.user}, from the first line of standard
        input with C{--password-stdin}, else asked for twice.
    @raise CommandError: none usable was given.
    """
    return read_password(
        io,
        args.password_stdin,
        f"Password for {args.user}: ",
        again="Repeat it: ",
        mismatch="the passwords differ",
        status=1,
    )
