# -*- test-case-name: tests.test_tap,tests.admin.test_deployment -*-
"""
The data folder: where the daemon keeps its state, and where C{suto-admin}
finds it.

Both the daemon's assembly (L{suto_server.tap}) and the admin command line
name the same files in it; they share the names from here so that the
admin never imports the daemon to learn them.
"""

from __future__ import annotations

import os

#: The data folder when none is named: C{suto-data} in the working directory.
DEFAULT_DATA = "suto-data"

#: The SQLite store, which the daemon and C{suto-admin} may open together.
DATABASE_FILE = "suto.db"

#: The UNIX socket the admin API listens on by default.
ADMIN_SOCKET = "admin.sock"

#: The master key from which enrolled profiles' keys are derived.
MASTER_KEY_FILE = "master.key"


def prepare_data_folder(path: str) -> str:
    """
    Create the data folder (mode 0700: it holds keys and the admin socket)
    and return its absolute path.
    """
    path = os.path.abspath(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class NoDataFolder(Exception):
    """
    The data folder, or its store, is not there: the command was run in
    the wrong place or for a server that was never set up.  Nothing is
    created in its stead: only the daemon and C{suto-admin init} create
    them.
    """


def _missing(what: str, data: str) -> NoDataFolder:
    return NoDataFolder(
        f"there is no {what}: run 'suto-admin --data {data} init' or start "
        f"the daemon with it"
    )


def existing_data_folder(path: str) -> str:
    """
    @return: the absolute path of the data folder C{path}.
    @raise NoDataFolder: there is no folder there, saying how to make one.
    """
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise _missing(f"data folder {path}", path)
    return path


def existing_store(data: str) -> str:
    """
    @return: the path of the store in the data folder C{data}.
    @raise NoDataFolder: there is no store there, saying how to make one.
    """
    path = os.path.join(existing_data_folder(data), DATABASE_FILE)
    if not os.path.isfile(path):
        raise _missing(f"store {path}", os.path.abspath(data))
    return path
