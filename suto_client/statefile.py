# -*- test-case-name: tests.client.test_statefile -*-
"""
The endpoint agent's state file: where its accounts and their credentials
live between runs.

The file holds a password or the salted hash that stands in for it, and
the keys of enrolled profiles, so it
must never be readable by anyone else: a file whose mode grants group or
other access is refused rather than used.  Writes go to a temporary file
created with mode 0600 in the same directory, which is flushed, synced and
renamed over the old one, so a crash leaves either the old or the new
document, never a torn one.  What the file says is
L{suto_client.state_document}'s business.
"""

from __future__ import annotations

import json
import os
import stat

from suto_client.state import ClientState
from suto_client.state_document import (
    InvalidDocument,
    document_from_state,
    state_from_document,
)
from suto_server.core.atomicfile import write_atomically

DEFAULT_STATE_PATH = os.path.join("suto-client-data", "client.json")
"""Where the agent and the command line keep their state unless told."""

MAX_STATE_BYTES = 1024 * 1024
"""A state file larger than this is refused instead of being parsed."""


class StateFileError(Exception):
    """
    The state file could not be read or written: it is unreadable, corrupt,
    written by a newer version, or too permissive.  The message names the
    file and never contains a secret.
    """


def load_state(path: str) -> ClientState:
    """
    Read the state file.

    @param path: the file's path.
    @return: the state; an empty one if the file does not exist yet.
    @raise StateFileError: the file cannot be read, is group- or
        world-accessible, is not a valid state document, or was written by
        a newer version.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return ClientState()
    except OSError as e:
        raise StateFileError(f"cannot open {path}: {e.strerror}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise StateFileError(f"{path} is not a regular file")
        if mode & 0o077:
            raise StateFileError(
                f"{path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):04o}); it holds credentials, "
                f"so it must be mode 0600"
            )
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_STATE_BYTES + 1)
    except OSError as e:
        raise StateFileError(f"cannot read {path}: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(raw) > MAX_STATE_BYTES:
        raise StateFileError(f"{path} is larger than {MAX_STATE_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # RecursionError: nesting deeper than the decoder recurses, which
        # a file well under MAX_STATE_BYTES can hold.
        raise StateFileError(f"{path} is not valid JSON") from e
    try:
        return state_from_document(document)
    except InvalidDocument as e:
        raise StateFileError(f"{path} is not a valid state file: {e}") from e


def save_state(path: str, state: ClientState) -> None:
    """
    Replace the state file atomically, creating its directory (mode 0700)
    if needed.

    @param path: the file's path.
    @param state: what to write.
    @raise StateFileError: the file could not be written; the previous
        file, if any, is left as it was.
    """
    payload = json.dumps(document_from_state(state), indent=2, sort_keys=True)
    try:
        os.makedirs(
            os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True
        )
        write_atomically(path, (payload + "\n").encode("utf-8"))
    except OSError as e:
        raise StateFileError(f"cannot write {path}: {e.strerror or e}") from e
