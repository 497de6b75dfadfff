# -*- test-case-name: tests.admin.test_cli -*-
"""
C{suto-admin user add|del|list}: the accounts, in the store itself.

These commands open the daemon's store directly (the data folder's
SQLite file, which SQLite lets the daemon and this tool share, or the
PostgreSQL database of C{--store}), so accounts can be made before the
daemon first starts, once C{suto-admin init} has made the store; they
never make one themselves.  Each change is recorded in the audit log the
daemon keeps in the same store, naming who made it.

The store and the audit log load Twisted's logger and zope interfaces;
they are imported when a command opens the store, so that the commands
which only talk to the daemon do not pay for them.
"""

from __future__ import annotations

import getpass
import os
import time

from suto_server.admin.formatting import show
from suto_server.core import schemes
from suto_server.core.commandline import CommandError, read_password
from suto_server.core.timestamps import iso_utc
from suto_server.datafolder import existing_store
from suto_server.store.errors import StoreError

#: The columns of C{user list}, as its C{--json} names them.
_ACCOUNT_COLUMNS = ("user", "scheme", "created", "unusable")


def _open_store(args):
    """
    @return: the PostgreSQL store C{args.store}, else the store of the
        data folder C{args.data}.
    @raise NoDataFolder: the data folder holds none: it is made by
        C{suto-admin init} or the daemon, never by a command run in the
        wrong place.
    @raise CommandError: the PostgreSQL store cannot be opened.
    """
    from suto_server.store.open import open_store

    try:
        return open_store(args.store or existing_store(args.data))
    except StoreError as error:
        raise CommandError(str(error)) from None


def operator_name() -> str:
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
    from suto_server.audit.log import AuditLog

    AuditLog(store, []).record(
        time.time(), event, user, None, f"by {operator_name()}{detail}"
    )


def _change(args, change, event: str, detail: str = "") -> None:
    """
    Make one account change in the store and record it in the audit log.

    @raise CommandError: the store refused it.
    """
    store = _open_store(args)
    try:
        change(store)
        _audit_account(store, event, args.user, detail)
    except (StoreError, ValueError) as error:
        raise CommandError(str(error)) from None
    finally:
        store.close()


def user_add(args, io) -> int:
    password = read_password(
        io,
        args.password_stdin,
        f"Password for {args.user}: ",
        again="Again: ",
        mismatch="the passwords do not match",
        status=2,
    )
    try:
        password_hash = schemes.hash_password(password, args.scheme, args.rounds)
    except ValueError as error:
        raise CommandError(str(error), 2) from None
    _change(
        args,
        lambda store: store.add_user(args.user, password_hash, time.time()),
        "user_added",
        f" ({args.scheme})",
    )
    io.say(f"added {args.user} ({args.scheme})")
    return 0


def user_del(args, io) -> int:
    _change(args, lambda store: store.remove_user(args.user), "user_removed")
    io.say(f"removed {args.user}")
    return 0


def _unusable(password_hash: str) -> str | None:
    """
    @return: why a stored hash can no longer be used (one stored before a
        limit it breaks, such as L{schemes.MAX_ROUNDS}), or L{None} when
        it is usable.
    """
    try:
        schemes.identify(password_hash)
    except schemes.UnsupportedScheme as error:
        return str(error)
    return None


def _account_row(account: dict) -> str:
    """
    @return: a row of C{user list}: an unusable hash adds a last column
        saying why, never the hash.
    """
    line = f"{account['user']}\t{account['scheme']}\t{account['created']}"
    if account["unusable"]:
        line += f"\tunusable: {account['unusable']}"
    return line


def user_list(args, io) -> int:
    store = _open_store(args)
    try:
        accounts = [
            {
                "user": record.username,
                "scheme": record.scheme,
                "created": iso_utc(record.created),
                "unusable": _unusable(store.hash_for(record.username)),
            }
            for record in store.list_users()
        ]
    finally:
        store.close()
    return show(io, args, accounts, _ACCOUNT_COLUMNS, _account_row)
