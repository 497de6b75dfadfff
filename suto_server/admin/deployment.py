# -*- test-case-name: tests.admin.test_deployment -*-
"""
Where C{suto-admin} finds the daemon it administers: its data folder, its
store and its admin socket.

An operator should not repeat on every command what the daemon's
configuration file already says, nor should a command run in the wrong
directory quietly make an empty server there.  So the data folder is,
in this order: C{--data}; the C{data} key of the daemon's configuration
file, named by C{--config} or, without it, by the environment variable
C{SUTO_CONFIG}; C{./suto-data}.  The file describes one deployment, so it
is read only when C{--data} does not name another.  The store is the
PostgreSQL database of C{--store}, else of that file's C{store} key,
else the SQLite file in the data folder.  The admin socket is the one a
C{unix:} C{admin} endpoint of that file names, else C{admin.sock} in the
data folder.  The folder must exist, except for the commands that make
it.
"""

from __future__ import annotations

import argparse
import os
import re

from suto_server.core import commandline
from suto_server.core.commandline import CommandError
from suto_server.datafolder import (
    ADMIN_SOCKET,
    DATABASE_FILE,
    DEFAULT_DATA,
    existing_data_folder,
)

#: The environment variable naming the daemon's configuration file when
#: no C{--config} is given.
CONFIG_VARIABLE = "SUTO_CONFIG"

#: The commands that make the data folder when it is not there.
_MAKING_DATA_FOLDER = {("init", None), ("restore", None)}

#: A colon that separates the arguments of an endpoint string (one
#: escaped with a backslash belongs to the argument).
_SEPARATOR = re.compile(r"(?<!\\):")


def _uses_data_folder(words, args: argparse.Namespace) -> bool:
    """
    @return: whether the command C{words} works on the data folder: all
        but C{config check}, C{store copy} and C{audit verify --file},
        which read only the stores or file they name.
    """
    if words == ("audit", "verify"):
        return args.file is None
    return words not in {("config", "check"), ("store", "copy")}


def _daemon_options():
    # The daemon's options say which keys its file holds; only a command
    # given a configuration file loads them.
    from suto_server.tap import Options

    return Options


def unix_socket(description: str | None) -> str | None:
    """
    @return: the path a C{unix:} server endpoint string listens on
        (C{unix:PATH:...} or C{unix:address=PATH:...}, colons in the path
        escaped with a backslash); L{None} for another endpoint or none.
    """
    if not description:
        return None
    kind, *arguments = _SEPARATOR.split(description)
    if kind != "unix":
        return None
    arguments = [argument.replace("\\:", ":") for argument in arguments]
    for argument in arguments:
        if argument.startswith("address="):
            return argument[len("address=") :]
    positional = [argument for argument in arguments if "=" not in argument]
    return positional[0] if positional else None


def without_password(uri: str | None) -> str | None:
    """
    @return: C{uri}, a PostgreSQL store's URI (or L{None}), once known to
        carry no password, which a command that names its store would
        otherwise show.
    @raise CommandError: it carries one.
    """
    if uri is None:
        return None
    from suto_server.store.errors import StoreError
    from suto_server.store.postgres.connection import checked_location

    try:
        return checked_location(uri)
    except StoreError as error:
        raise CommandError(str(error)) from None


def store_location(args: argparse.Namespace) -> str:
    """
    @return: where the store of the deployment L{in_deployment} found is:
        its PostgreSQL database's URI, else the path of the data folder's
        SQLite file (which may not exist).
    """
    return args.store or os.path.join(args.data, DATABASE_FILE)


def in_deployment(words, command, environ):
    """
    @return: C{command}, run once C{args.data} names the daemon's data
        folder, C{args.store} its PostgreSQL store (L{None} for the data
        folder's SQLite file), C{args.admin_socket} its admin socket and,
        but for L{_MAKING_DATA_FOLDER}, once that folder is known to
        exist: a command run in the wrong place fails instead of making
        an empty server there.
    @raise suto_server.datafolder.NoDataFolder: (from the command
        returned) the folder is not there.
    """

    def run(args, io) -> int:
        if _uses_data_folder(words, args):
            values = {}
            if args.data is None:
                values = commandline.configuration(
                    args.config, CONFIG_VARIABLE, environ, _daemon_options
                )
            args.data = args.data or values.get("data") or DEFAULT_DATA
            args.store = without_password(args.store or values.get("store"))
            if words not in _MAKING_DATA_FOLDER:
                args.data = existing_data_folder(args.data)
            args.admin_socket = unix_socket(values.get("admin")) or os.path.join(
                args.data, ADMIN_SOCKET
            )
        return command(args, io)

    return run
