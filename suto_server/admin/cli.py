# -*- test-case-name: tests.admin.test_cli -*-
"""
C{suto-admin}: the operator's command line.

Account commands work on the daemon's store directly (the data folder's
SQLite file, or the PostgreSQL database C{--store} names), so accounts
can be made before the daemon first starts (L{suto_server.admin.accounts});
C{init}, C{backup} and C{restore} handle the data folder as a whole
(L{suto_server.admin.backup}), and C{store copy} moves a whole store
to another (L{suto_server.admin.storecopy}); the others speak JSON over HTTP to the
running daemon's admin socket (L{suto_server.admin.client}).  Every
command finds the daemon's data folder and admin socket the way
L{suto_server.admin.deployment} says, and no command but C{init} and
C{restore} makes a data folder.  This module is only the parser and the
dispatch table: each command is a function taking the parsed arguments
and a L{Streams} bundle and returning an exit status, so tests call
L{main} with injected streams.

It imports no module of the daemon's assembly: C{suto-admin user list}
should not load Twisted's web server, TLS and metrics to read a table.
A command that needs more (the store, a certificate, the daemon's
options) imports it when it runs.
"""

from __future__ import annotations

import argparse
import getpass
import os

from suto_server.admin import (
    accounts,
    backup,
    daemon,
    deployment,
    enrollment,
    reports,
    storecopy,
)
from suto_server.admin.formatting import duration, page_number, since
from suto_server.audit.paging import LISTING_PAGE
from suto_server.core import commandline, schemes
from suto_server.core.version import VERSION
from suto_server.datafolder import DEFAULT_DATA, NoDataFolder
from suto_server.locations import WIDEST_PREFIX

#: The dispatch table: a command's words to the function that runs it.
COMMANDS = {
    ("init", None): backup.init,
    ("backup", None): backup.backup,
    ("restore", None): backup.restore,
    ("store", "copy"): storecopy.store_copy,
    ("user", "add"): accounts.user_add,
    ("user", "del"): accounts.user_del,
    ("user", "list"): accounts.user_list,
    ("auth", None): daemon.auth,
    ("enroll", None): enrollment.enroll,
    ("windows", None): enrollment.windows,
    ("cancel", None): enrollment.cancel,
    ("blacklist", None): enrollment.blacklist,
    ("unblock", None): enrollment.unblock,
    ("alerts", None): reports.alerts,
    ("clients", None): reports.clients,
    ("history", None): reports.history,
    ("audit", None): reports.audit_list,
    ("audit", "verify"): reports.audit_verify,
    ("status", None): daemon.status,
    ("cert", None): daemon.cert,
    ("reload", None): daemon.reload,
    ("console-link", None): daemon.console_link,
    ("config", "check"): daemon.config_check,
}


def _store(value: str) -> str:
    """
    @return: C{value}, the URI of a PostgreSQL store.
    @raise argparse.ArgumentTypeError: it is not one.
    """
    from suto_server.store.open import postgres_location

    try:
        return postgres_location(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _words(args: argparse.Namespace) -> tuple[str, str | None]:
    """
    @return: the dispatch table's key for C{args}: the command and, for a
        command with subcommands (C{user}, C{audit}, C{config}), the
        subcommand, kept by the parser as C{<command>_command}.
    """
    return args.command, getattr(args, f"{args.command}_command", None)


def _listing(commands, name: str, help: str) -> argparse.ArgumentParser:
    """
    @return: the parser of the listing command C{name}, which takes
        C{--json} as every listing does.
    """
    parser = commands.add_parser(name, help=help)
    parser.add_argument("--json", action="store_true", help="JSON for scripts")
    return parser


def _paged_listing(commands, name: str, help: str) -> argparse.ArgumentParser:
    """
    @return: the parser of the listing of audit records C{name}, which
        takes C{--since} and, past its newest page, C{--page}.
    """
    parser = _listing(commands, name, help)
    parser.add_argument(
        "--since", type=since, default=None, help="a duration like 1h, or an ISO time"
    )
    _page_option(parser)
    return parser


def _page_option(parser) -> None:
    """
    Give C{parser} the C{--page} of a listing of audit records.
    """
    parser.add_argument(
        "--page",
        type=page_number,
        default=1,
        help=f"the page, {LISTING_PAGE} records each, counting back from the newest",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suto-admin", description="Administer a SUTO server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.add_argument(
        "--data",
        default=None,
        help=f"the server's data folder (default: the one in the configuration "
        f"file, else {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--store",
        default=None,
        type=_store,
        metavar="URI",
        help="the server's PostgreSQL store, postgresql://USER@HOST/DB "
        "(default: the one in the configuration file, else the data "
        "folder's SQLite file)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"the daemon's configuration file, to find its data folder "
        f"(default: ${deployment.CONFIG_VARIABLE})",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser(
        "init", help="create the data folder, its store and master key"
    )
    saving = commands.add_parser(
        "backup", help="copy the store, master key and TLS files, live"
    )
    saving.add_argument("destination", help="a new folder to create")
    restoring = commands.add_parser(
        "restore", help="put a backup back while the daemon is stopped"
    )
    restoring.add_argument("source", help="a folder made by suto-admin backup")
    copying = (
        commands.add_parser("store", help="the store as a whole")
        .add_subparsers(dest="store_command", required=True)
        .add_parser(
            "copy", help="move a whole deployment to another store, and verify it"
        )
    )
    copying.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="LOCATION",
        help="the store to copy: a SQLite file or postgresql://USER@HOST/DB",
    )
    copying.add_argument(
        "--to",
        dest="destination",
        required=True,
        metavar="LOCATION",
        help="the store to copy into (a SQLite file is made if missing)",
    )
    copying.add_argument(
        "--master-key",
        metavar="FILE",
        help="check first that this master key (the one the copy will be "
        "served with) opens every profile's key",
    )
    copying.add_argument(
        "--replace",
        action="store_true",
        help="replace everything the destination holds (refused otherwise)",
    )

    user = commands.add_parser("user", help="manage accounts").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create an account")
    add.add_argument("user")
    add.add_argument(
        "--scheme", choices=schemes.SCHEMES, default=schemes.DEFAULT_SCHEME
    )
    add.add_argument("--rounds", type=int, default=None)
    add.add_argument("--password-stdin", action="store_true")
    delete = user.add_parser("del", help="delete an account")
    delete.add_argument("user")
    _listing(user, "list", "list accounts")

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
    authenticate.add_argument(
        "--wide",
        action="store_true",
        help=f"allow a target wider than /{WIDEST_PREFIX[4]} (IPv4) or "
        f"/{WIDEST_PREFIX[6]} (IPv6), as enroll --wide does",
    )

    enrolling = commands.add_parser(
        "enroll", help="open an enrollment window for a user at a location"
    )
    enrolling.add_argument("user")
    enrolling.add_argument(
        "--location", required=True, help="address, CIDR, or a locations-file name"
    )
    enrolling.add_argument("--timeout", type=duration, default=120.0)
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
    _listing(commands, "windows", "list open enrollment windows")
    cancelling = commands.add_parser("cancel", help="close an enrollment window")
    cancelling.add_argument("user")

    _listing(commands, "blacklist", "list the blacklisted profiles")
    unblocking = commands.add_parser(
        "unblock", help="lift a blacklist entry (the device must enroll again)"
    )
    unblocking.add_argument("user")

    _paged_listing(commands, "alerts", "list the alerts")
    _listing(commands, "clients", "every enrolled profile: location, state, key age")
    moving = _listing(commands, "history", "a profile's moves and the alerts about it")
    moving.add_argument("user")
    _page_option(moving)
    auditing = _paged_listing(commands, "audit", "list or verify the audit log")
    verifying = auditing.add_subparsers(dest="audit_command").add_parser(
        "verify", help="check the audit log's hash chain"
    )
    verifying.add_argument(
        "--file",
        default=None,
        help="check this database file directly, read-only, instead of asking "
        "the daemon (a copy, or the store while the daemon is down)",
    )

    _listing(commands, "status", "is the daemon up")
    commands.add_parser("cert", help="the TLS certificate")
    commands.add_parser(
        "reload", help="re-read renewed TLS certificates without a restart"
    )
    commands.add_parser(
        "console-link", help="a one-time login link to the web console"
    )
    configuration = commands.add_parser(
        "config", help="the server's configuration file"
    ).add_subparsers(dest="config_command", required=True)
    checking = configuration.add_parser(
        "check", help="report every problem of a configuration file"
    )
    checking.add_argument("file")
    return parser


def main(
    argv: list[str] | None = None,
    stdin=None,
    stdout=None,
    stderr=None,
    getpass=getpass.getpass,
    environ=None,
) -> int:
    """
    Run one C{suto-admin} command.

    @param argv: the arguments, without the program name; the process's
        own by default.
    @param getpass: reads a password without echo, given its prompt.
    @param environ: the environment, for C{SUTO_CONFIG}; the process's
        own by default.
    @return: the exit status: 0 on success, 1 when the command failed
        (among the reasons: no data folder or store, an unusable
        configuration file), 2 for a usage error or a refused password.
    """
    io = commandline.streams("suto-admin", stdin, stdout, stderr, getpass)
    environ = os.environ if environ is None else environ
    commands = {
        words: deployment.in_deployment(words, command, environ)
        for words, command in COMMANDS.items()
    }
    return commandline.run(
        _parser(), commands, _words, argv, io, failures=(NoDataFolder,)
    )
