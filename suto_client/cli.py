# -*- test-case-name: tests.client.test_cli -*-
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
    suto-client enroll ... --failover HOST[:PORT]  # another server, repeatable
    suto-client failover USER [HOST[:PORT] ...] [--none]
    suto-client fingerprint
    suto-client config check FILE

Every subcommand except C{fingerprint} and C{config} takes C{--state
PATH}; without it the state file is the one the agent's configuration
names (C{suto-client --config FILE}, or the file C{SUTO_CLIENT_CONFIG}
names), else the agent's default.  C{account list} and C{account del}
refuse a state file that is not there; C{account add} and C{enroll} make
it.  The running agent reads
the file at every hello, so changes apply without a restart.  The
password is prompted for, or read from the first line of standard input
with C{--password-stdin}; it is kept in the state file (mode 0600) only
until the first successful authentication replaces it by the salted hash.

C{enroll} proves a one-time password from the server's operator, read the
same way, and stores the enrolled profile's first key in the state file.
Without C{--server} it first waits for the hello with which the server
announces the enrollment window, and enrolls with its sender on port
2021 (see L{suto_client.announcement}).
C{failover} shows or sets the other servers of an enrolled profile's
deployment, which the agent turns to when its server cannot be reached.
C{fingerprint} shows this machine's fingerprint hash and which sources it
was computed from, never what they read.  C{config check} reports every
problem of a C{twistd suto-client --config} file before the agent is
restarted with it.

This module is the parser and the dispatch table, with the two small
commands C{fingerprint} and C{config check}; the account commands and
their trust options are in L{suto_client.account_commands}, C{enroll} in
L{suto_client.enroll_command}, C{failover} in
L{suto_client.failover_command}.  Each command takes the parsed arguments
and a L{Streams} bundle and returns its exit status, run by
L{suto_server.core.commandline} as C{suto-admin}'s commands are, so that
tests call L{main} with injected streams.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TextIO

from suto_client import account_commands, enroll_command, failover_command
from suto_client.agent import DEFAULT_HELLO_PORT
from suto_client.fingerprint import (
    FingerprintError,
    compute_fingerprint,
    default_sources,
)
from suto_client.state import DEFAULT_SERVER_PORT
from suto_client.statefile import DEFAULT_STATE_PATH, StateFileError
from suto_client.tap import Options
from suto_server.core import commandline
from suto_server.core.commandline import CommandError, Streams, check_config
from suto_server.core.version import VERSION


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


#: The environment variable naming the agent's configuration file when no
#: C{--config} is given.
CONFIG_VARIABLE = "SUTO_CLIENT_CONFIG"

#: The dispatch table: a command's words to the function that runs it.
COMMANDS = {
    ("account", "add"): account_commands.add,
    ("account", "list"): account_commands.list_accounts,
    ("account", "del"): account_commands.delete,
    ("enroll", None): enroll_command.enroll_machine,
    ("failover", None): failover_command.failover,
    ("fingerprint", None): _fingerprint,
    ("config", "check"): _config_check,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suto-client",
        description="Manage the accounts of the SUTO endpoint agent.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"the agent's configuration file (twistd suto-client --config), "
        f"whose state key names the state file when --state is not given "
        f"(default: ${CONFIG_VARIABLE})",
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
        _add_state_option(subcommand)

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
        f"{enroll_command.DEFAULT_HELLO_WAIT:g})",
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
        "--failover",
        action="append",
        metavar="HOST[:PORT]",
        help="another server of the same deployment, tried when the "
        "server cannot be reached; repeat for several",
    )
    _add_state_option(enrollment)
    enrollment.set_defaults(action=None, legacy=None)
    failing_over = groups.add_parser(
        "failover",
        help="show or set the other servers an enrolled profile turns to",
    )
    failing_over.add_argument("user")
    failing_over.add_argument(
        "servers",
        nargs="*",
        metavar="HOST[:PORT]",
        help="the other servers of the deployment, in the order tried",
    )
    failing_over.add_argument(
        "--none", action="store_true", help="clear the list"
    )
    _add_state_option(failing_over)
    failing_over.set_defaults(action=None)
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


def _add_state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="PATH",
        help=f"the agent's state file (default: the configuration file's, "
        f"else {DEFAULT_STATE_PATH})",
    )


def _with_state(command, environ):
    """
    @return: C{command}, run once C{args.state} names the state file the
        agent uses: C{--state}, else the C{state} key of the C{--config}
        file, else of the file C{SUTO_CLIENT_CONFIG} names, else the
        default; commands without a state file run as they are.
    """

    def run(args, io: Streams) -> int:
        if hasattr(args, "state") and args.state is None:
            values = commandline.configuration(
                args.config, CONFIG_VARIABLE, environ, lambda: Options
            )
            args.state = values.get("state") or DEFAULT_STATE_PATH
        return command(args, io)

    return run


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


def _prompt_on(stream: TextIO):
    """
    @return: a password prompt writing to C{stream}: the agent's prompts
        go to standard error, with its complaints.
    """
    return lambda prompt: getpass.getpass(prompt, stream=stream)


def _words(args: argparse.Namespace) -> tuple[str, str | None]:
    """
    @return: the dispatch table's key for C{args}: the command group and,
        for a group with subcommands (C{account}, C{config}), the
        subcommand.
    """
    return args.group, args.action


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    getpass=None,
    environ=None,
) -> int:
    """
    Run one C{suto-client} command.

    @param argv: the arguments, without the program name; the process's
        own by default.
    @param getpass: reads a password without echo, given its prompt; by
        default from the terminal, prompting on standard error.
    @param environ: the environment, for C{SUTO_CLIENT_CONFIG}; the
        process's own by default.
    @return: the exit status: 0 on success, 1 when the command failed
        (among the reasons: no state file to list or delete from, an
        unusable configuration file), 2 for a usage error.
    """
    stderr = sys.stderr if stderr is None else stderr
    io = commandline.streams(
        "suto-client", stdin, stdout, stderr, getpass or _prompt_on(stderr)
    )
    environ = os.environ if environ is None else environ
    commands = {
        words: _with_state(command, environ) for words, command in COMMANDS.items()
    }
    return commandline.run(
        _parser(), commands, _words, argv, io, failures=(StateFileError,)
    )
