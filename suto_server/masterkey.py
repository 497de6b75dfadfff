# -*- test-case-name: tests.test_masterkey -*-
"""
The master key: what keeps enrolled keys secret at rest.

Every profile's key is stored sealed with one random 32-byte master key
kept in its own file (C{master.key} in the data folder, mode 0400), never
in the database.  A copy of the database alone, or of a backup of it,
therefore yields no key.  The two must be backed up separately, and the
master key must never be lost: without it no enrolled device can be
recognised and every one must enroll again.

A sealed key is a fresh 12-byte nonce followed by the key encrypted with
ChaCha20-Poly1305; the associated data binds the seal to its profile and
key id, so a sealed key moved to another profile or row does not open.

The file is created once, atomically and without ever replacing an
existing one: it is written in full under a temporary name, then
hard-linked to its final name, which fails if a master key appeared there
meanwhile (a rename would silently replace it).
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from twisted.logger import Logger

from suto_server.core.atomicfile import sync_directory, write_atomically
from suto_server.core.keyschedule import KEY_SIZE, MAX_PROFILE, encode_parts
from suto_server.core.keyschedule.derivation import hkdf

#: Size of the master key.
MASTER_KEY_SIZE = 32
#: Mode of the master key file: readable by its owner, writable by nobody.
MASTER_KEY_MODE = 0o400
#: Size of the nonce in front of every sealed key.
NONCE_SIZE = 12
#: Size of a sealed key: nonce, encrypted key and tag.
SEALED_KEY_SIZE = NONCE_SIZE + KEY_SIZE + 16
#: Longest key id bound into a seal, in UTF-8 bytes.
MAX_KEY_ID = 64

_LABEL = b"suto/v1/master-key/profile-key"
_CANNOT_OPEN = "the stored key cannot be opened with this master key"


class MasterKeyError(Exception):
    """
    The master key cannot be loaded or created, an input to a seal is
    malformed, or a sealed key does not open.
    """


def _check_binding(username: object, key_id: object) -> None:
    """
    @raise MasterKeyError: C{username} or C{key_id} is not a non-empty
        L{str} of bounded size.
    """
    for name, value, limit in (
        ("username", username, MAX_PROFILE),
        ("key id", key_id, MAX_KEY_ID),
    ):
        if not isinstance(value, str):
            raise MasterKeyError(f"the {name} must be a str")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise MasterKeyError(f"the {name} is not valid Unicode") from None
        if not 0 < size <= limit:
            raise MasterKeyError(
                f"the {name} must be 1 to {limit} UTF-8 bytes"
            )


def _associated_data(username: str, key_id: str) -> bytes:
    """
    What a sealed key is bound to: its profile and its key id, under a
    label no other use of ChaCha20-Poly1305 in SUTO shares.
    """
    return encode_parts(_LABEL, username, key_id)


def _read(path: str) -> bytes:
    """
    Read and check an existing master key file.

    @return: the key.
    @raise FileNotFoundError: there is no file at C{path}.
    @raise MasterKeyError: the file cannot be read, is not a regular file,
        is open to others than its owner, or is not L{MASTER_KEY_SIZE}
        bytes.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise MasterKeyError(
            f"cannot read the master key {path}: {error.strerror}"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise MasterKeyError(f"the master key {path} is not a file")
        data = os.read(fd, MASTER_KEY_SIZE + 1)
    except OSError as error:
        raise MasterKeyError(
            f"cannot read the master key {path}: {error.strerror}"
        ) from None
    finally:
        os.close(fd)
    if stat.S_IMODE(mode) & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(
            f"the master key {path} is open to other users; "
            f"make it readable by its owner only (chmod 0400 {path})"
        )
    if len(data) != MASTER_KEY_SIZE:
        raise MasterKeyError(
            f"the master key {path} must hold exactly {MASTER_KEY_SIZE} "
            f"bytes; restore it from a backup (do not delete it: every "
            f"enrolled key is sealed with it)"
        )
    return data


def _create(path: str) -> None:
    """
    Write a new random master key to C{path}, unless a file is there.

    @raise FileExistsError: a file appeared at C{path} meanwhile; it is
        left as it is.
    @raise OSError: the key could not be written.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, staging = tempfile.mkstemp(prefix=".master-key-", dir=directory)
    os.close(fd)
    try:
        write_atomically(
            staging, secrets.token_bytes(MASTER_KEY_SIZE), MASTER_KEY_MODE
        )
        os.link(staging, path)
    finally:
        os.unlink(staging)
    sync_directory(directory)


class MasterKey:
    """
    Seals and opens profile keys with the master key.
    """

    log = Logger()

    def __init__(self, key: bytes) -> None:
        """
        @param key: the L{MASTER_KEY_SIZE}-byte master key; use
            L{MasterKey.load_or_create} rather than calling this.
        @raise MasterKeyError: C{key} is not L{MASTER_KEY_SIZE} bytes.
        """
        if not isinstance(key, bytes) or len(key) != MASTER_KEY_SIZE:
            raise MasterKeyError(f"a master key is {MASTER_KEY_SIZE} bytes")
        self._cipher = ChaCha20Poly1305(key)
        self._notices = hkdf(
            salt=None, ikm=key, info=b"suto cluster notices", length=KEY_SIZE
        )

    def __repr__(self) -> str:
        return "<MasterKey>"

    @classmethod
    def load_or_create(cls, path: str) -> MasterKey:
        """
        Load the master key from C{path}, creating it first if there is no
        file there.  An existing file is never replaced, whatever it holds.

        @param path: the key file; its folder must exist.
        @return: the L{MasterKey}.
        @raise MasterKeyError: the file cannot be read or created, is open
            to other users, or does not hold a key.
        """
        try:
            return cls(_read(path))
        except FileNotFoundError:
            pass
        try:
            _create(path)
        except FileExistsError:
            # Another process created it first: use that one.
            pass
        except OSError as error:
            raise MasterKeyError(
                f"cannot create the master key {path}: {error}"
            ) from None
        else:
            cls.log.info("created a new master key {path}", path=path)
        try:
            return cls(_read(path))
        except FileNotFoundError:
            raise MasterKeyError(
                f"the master key {path} disappeared while being created"
            ) from None

    def notice_key(self) -> bytes:
        """
        @return: the key that seals the notices the server processes
            sharing a store send each other (L{suto_server.cluster.notice}):
            derived from the master key, which every such process holds and
            a role of the database does not, since PostgreSQL lets any role
            that can connect send a notice on any channel.
        """
        return self._notices

    def seal_key(self, username: str, key_id: str, key: bytes) -> bytes:
        """
        Seal a profile's key for storage.

        @param username: the profile the key belongs to.
        @param key_id: the key's id.
        @param key: the L{KEY_SIZE}-byte key.
        @return: L{SEALED_KEY_SIZE} bytes that only L{open_key}, with this
            master key, the same username and the same key id, opens.
        @raise MasterKeyError: an argument is of the wrong type or size.
        """
        _check_binding(username, key_id)
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise MasterKeyError(f"a profile key must be {KEY_SIZE} bytes")
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self._cipher.encrypt(
            nonce, key, _associated_data(username, key_id)
        )

    def open_key(self, username: str, key_id: str, blob: bytes) -> bytes:
        """
        Open a key sealed by L{seal_key}.

        @return: the key.
        @raise MasterKeyError: for every failure (malformed arguments,
            another master key, another username or key id, tampering),
            with the same message, so nothing tells which check failed.
        """
        try:
            _check_binding(username, key_id)
        except MasterKeyError:
            raise MasterKeyError(_CANNOT_OPEN) from None
        if not isinstance(blob, bytes) or len(blob) != SEALED_KEY_SIZE:
            raise MasterKeyError(_CANNOT_OPEN)
        try:
            return self._cipher.decrypt(
                blob[:NONCE_SIZE],
                blob[NONCE_SIZE:],
                _associated_data(username, key_id),
            )
        except InvalidTag:
            raise MasterKeyError(_CANNOT_OPEN) from None
