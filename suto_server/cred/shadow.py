# -*- test-case-name: tests.cred.test_shadow -*-
"""
Password hashes from a shadow(5)-format file, for sites that keep their
accounts there.

The file is read whole at construction, and every usable hash in it must
be one this system can verify, so a bad file is reported at startup rather
than at some user's login.  Each lookup stats the file; when it has changed
(another inode, size or modification time) it is read again, and if the new
contents do not load the old ones stay in use and the problem is logged.
Errors name the line and the user, never a hash.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from twisted.logger import Logger
from zope.interface import implementer

from suto_server.core import schemes
from suto_server.cred.interfaces import IPasswordHashSource

# Far above any real shadow file (a million accounts), far below trouble.
MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_USERNAME_LENGTH = 256

# user:password:lastchg:min:max:warn:inactive:expire:reserved
_FIELD_COUNT = 9
_NUMERIC_FIELDS = slice(2, 8)
_EXPIRE_FIELD = 7
_NUMBER = re.compile(r"-?[0-9]{1,18}")
_USERNAME = re.compile(r"[^\s:\x00-\x1f\x7f]+")

_SECONDS_PER_DAY = 86400


class ShadowFileError(ValueError):
    """
    A shadow file could not be read, or a line in it is malformed or holds
    a hash this system cannot verify.  The message names the file, the line
    and the user, never a hash.
    """


@dataclass(frozen=True)
class _Entry:
    """
    One account: its hash (L{None} when locked, disabled or empty) and the
    day, counted from 1970-01-01, from which the account is expired
    (L{None} when it never expires).
    """

    password_hash: str | None = field(repr=False)
    expires: int | None

    def usable_hash(self, today: int) -> str | None:
        """
        @return: the hash, unless there is none or the account has expired
            (as pam_unix decides: from the expiry day on).
        """
        if self.expires is not None and today >= self.expires:
            return None
        return self.password_hash


def _signature(status: os.stat_result) -> tuple:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _parse_line(text: str, where: str) -> tuple[str, _Entry]:
    """
    @param where: how to name this line in errors.
    @return: the user and the entry of one line.
    @raise ShadowFileError: the line is malformed or its hash unusable.
    """
    fields = text.split(":")
    if not 2 <= len(fields) <= _FIELD_COUNT:
        raise ShadowFileError(
            f"{where}: expected 2 to {_FIELD_COUNT} colon-separated fields"
        )
    fields += [""] * (_FIELD_COUNT - len(fields))
    username, password_hash = fields[0], fields[1]
    if len(username) > MAX_USERNAME_LENGTH or not _USERNAME.fullmatch(username):
        raise ShadowFileError(f"{where}: invalid user name")
    for number in fields[_NUMERIC_FIELDS]:
        if number and not _NUMBER.fullmatch(number):
            raise ShadowFileError(
                f"{where}: user {username}: a date field is not a number"
            )
    # An empty or negative expiry day means the account never expires.
    expires = int(fields[_EXPIRE_FIELD] or -1)
    if schemes.is_disabled(password_hash):
        password_hash = None
    else:
        try:
            schemes.ensure_computable(password_hash)
        except schemes.UnsupportedScheme as error:
            raise ShadowFileError(f"{where}: user {username}: {error}") from None
    return username, _Entry(password_hash, expires if expires >= 0 else None)


def _parse(data: bytes, path: str) -> dict[str, _Entry]:
    """
    @return: the entries of a whole file, by user.
    @raise ShadowFileError: a line is malformed, not UTF-8, unusable, or
        repeats a user.
    """
    entries: dict[str, _Entry] = {}
    first_lines: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{path} line {number}"
        if not raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ShadowFileError(f"{where}: not UTF-8 text") from None
        username, entry = _parse_line(text, where)
        if username in entries:
            raise ShadowFileError(
                f"{where}: user {username} already appears on line "
                f"{first_lines[username]}"
            )
        entries[username] = entry
        first_lines[username] = number
    return entries


def _load(path: str) -> tuple[tuple, dict[str, _Entry]]:
    """
    Read and parse a shadow file.

    @return: the file's signature as read (to notice later changes) and its
        entries.
    @raise ShadowFileError: it cannot be read, is too large, or does not
        parse.
    """
    try:
        with open(path, "rb") as stream:
            status = os.fstat(stream.fileno())
            data = stream.read(MAX_FILE_SIZE + 1)
    except OSError as error:
        raise ShadowFileError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise ShadowFileError(f"{path} is larger than {MAX_FILE_SIZE} bytes")
    return _signature(status), _parse(data, path)


@implementer(IPasswordHashSource)
class ShadowFile:
    """
    The accounts of a shadow(5)-format file, reloaded when it changes.
    """

    log = Logger()

    def __init__(self, path: str, now: Callable[[], float] = time.time) -> None:
        """
        @param path: the file.
        @param now: the current POSIX time, to tell expired accounts.
        @raise ShadowFileError: the file cannot be loaded.
        """
        self._path = path
        self._now = now
        self._seen, self._entries = _load(path)

    def _refresh(self) -> None:
        """
        Load the file again if it changed since last looked at, keeping the
        current entries when the new contents fail to load.  A failure is
        logged once per change of the file, not on every lookup.
        """
        try:
            signature = _signature(os.stat(self._path))
        except OSError as error:
            signature = error.strerror
        if signature == self._seen:
            return
        self._seen = signature
        try:
            self._seen, self._entries = _load(self._path)
        except ShadowFileError as error:
            self.log.error(
                "could not reload the shadow file {path}, keeping its "
                "previous contents: {error}",
                path=self._path,
                error=str(error),
            )

    def hash_for(self, username: str) -> str | None:
        """
        See L{IPasswordHashSource.hash_for}.  Locked, disabled, empty and
        expired entries have no usable hash.
        """
        self._refresh()
        entry = self._entries.get(username)
        if entry is None:
            return None
        return entry.usable_hash(int(self._now() // _SECONDS_PER_DAY))
