"""
The endpoint agent's durable state: its accounts and their credentials.

Everything lives in one JSON document::

    {"version": 1,
     "accounts": {"alice": {"server_host": "192.0.2.10", "server_port": 2021,
                            "pin": "<64 hex digits>", "legacy": false,
                            "password": null, "salt": "$6$...",
                            "salted_hash": "$6$...$...", "ca": null,
                            "client_cert": null, "client_key": null}},
     "profiles": {"alice": {"server_host": "192.0.2.10", "server_port": 2021,
                            "pin": "<64 hex digits>", "key": "<base64>",
                            "key_id": "<32 hex digits>", "generation": 0,
                            "enrolled_at": 1700000000.0}}}

A profile trusts its server as an account does: by C{"pin"} or through a
CA bundle, C{"ca"}, and it may present a client certificate
(C{"client_cert"} and C{"client_key"}); these three are written only when
set, so a pinned profile without a client certificate reads the same as in
files from before them.

A file without C{"profiles"} (written before enrollment existed) has no
enrolled profiles.  An account without C{"ca"}, C{"client_cert"} and
C{"client_key"} (written before CA trust and client certificates existed)
has none of them.

The file holds a password or the salted hash that stands in for it, and
the keys of enrolled profiles, so it
must never be readable by anyone else: a file whose mode grants group or
other access is refused rather than used.  Writes go to a temporary file
created with mode 0600 in the same directory, which is flushed, synced and
renamed over the old one, so a crash leaves either the old or the new
document, never a torn one.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field

from suto_client.tls import normalise_pin
from suto_server.core import wire
from suto_server.core.atomicfile import write_atomically
from suto_server.core.keyschedule import KEY_SIZE

STATE_VERSION = 1
"""The layout version written into every file, for future migrations."""

DEFAULT_STATE_PATH = os.path.join("suto-client-data", "client.json")
"""Where the agent and the command line keep their state unless told."""

DEFAULT_SERVER_PORT = 2021
"""The TCP port a SUTO server accepts authentication connections on."""

MAX_STATE_BYTES = 1024 * 1024
"""A state file larger than this is refused instead of being parsed."""


class StateFileError(Exception):
    """
    The state file could not be read or written: it is unreadable, corrupt,
    written by a newer version, or too permissive.  The message names the
    file and never contains a secret.
    """


@dataclass
class Account:
    """
    One account the agent authenticates for.

    @ivar user: the user name the server's hellos carry.
    @ivar server_host: the server's IP address; hellos are accepted only
        from it and the agent connects back to it.
    @ivar server_port: the server's TCP port.
    @ivar pin: the SHA-256 fingerprint of the server's TLS certificate
        (lowercase hex, no colons), or L{None} for a legacy account or one
        trusted through C{ca}.
    @ivar legacy: speak the unencrypted SUTO 1.3.2 framing over plain TCP.
    @ivar ca: path of a PEM bundle of the CA certificates that vouch for
        the server's certificate, instead of a C{pin}; the certificate
        must then be issued for C{server_host}.
    @ivar client_cert: path of the PEM client certificate presented to a
        server that demands one (mutual TLS); set with C{client_key}.
    @ivar client_key: path of that certificate's unencrypted PEM key.
    @ivar password: the plaintext password, kept only until the first
        successful authentication teaches the agent the salted hash.
    @ivar salt: the password salt learned from the server.
    @ivar salted_hash: C{crypt(password, salt)}, all the challenge needs.
    """

    user: str
    server_host: str
    server_port: int = DEFAULT_SERVER_PORT
    pin: str | None = None
    legacy: bool = False
    password: str | None = field(default=None, repr=False)
    salt: str | None = None
    salted_hash: str | None = field(default=None, repr=False)
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class EnrolledProfile:
    """
    A profile this machine enrolled with a server: the key both sides
    derived, which later exchanges roll forward.

    @ivar user: the enrolled user name.
    @ivar server_host: the server's IP address.
    @ivar server_port: the server's TCP port.
    @ivar pin: the SHA-256 fingerprint of the server's TLS certificate
        (lowercase hex, no colons) that enrollment was made against, or
        L{None} for a profile trusting its server through C{ca}.
    @ivar key: the current chain key, L{KEY_SIZE} bytes; kept out of
        C{repr}.
    @ivar key_id: the key's public name, 32 lowercase hex digits.
    @ivar generation: how many times the key has been rolled forward (0
        for the first key).
    @ivar enrolled_at: when enrollment completed, as POSIX time.
    @ivar rotated_at: when the last rotation was committed, as POSIX
        time, or L{None} if the key never rotated.
    @ivar offline_since: when this machine found it could not deliver
        junk that was due, as POSIX time; L{None} while it is online.  An
        offline profile reconnects with its offline key.
    @ivar ca: path of the PEM CA bundle that vouches for the server's
        certificate, instead of a C{pin}, as for an L{Account}.
    @ivar client_cert: path of the PEM client certificate presented to a
        server that demands one; set with C{client_key}.
    @ivar client_key: path of that certificate's unencrypted PEM key.
    """

    user: str
    server_host: str
    server_port: int
    pin: str | None
    key: bytes = field(repr=False)
    key_id: str
    generation: int
    enrolled_at: float
    rotated_at: float | None = None
    offline_since: float | None = None
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def last_agreed(self) -> float:
        """
        When the current key was agreed on: its rotation, or enrollment.
        """
        return self.enrolled_at if self.rotated_at is None else self.rotated_at


@dataclass
class ClientState:
    """
    Everything the agent keeps between runs.

    @ivar accounts: the accounts, keyed by user name.
    @ivar profiles: the enrolled profiles, keyed by user name.
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    profiles: dict[str, EnrolledProfile] = field(default_factory=dict)


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
        return _state_from_document(document)
    except _Invalid as e:
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
    payload = json.dumps(_document_from_state(state), indent=2, sort_keys=True)
    try:
        os.makedirs(
            os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True
        )
        write_atomically(path, (payload + "\n").encode("utf-8"))
    except OSError as e:
        raise StateFileError(f"cannot write {path}: {e.strerror or e}") from e


def _document_from_state(state: ClientState) -> dict:
    return {
        "version": STATE_VERSION,
        "accounts": {
            user: {
                "server_host": account.server_host,
                "server_port": account.server_port,
                "pin": account.pin,
                "legacy": account.legacy,
                "password": account.password,
                "salt": account.salt,
                "salted_hash": account.salted_hash,
                "ca": account.ca,
                "client_cert": account.client_cert,
                "client_key": account.client_key,
            }
            for user, account in sorted(state.accounts.items())
        },
        "profiles": {
            user: _entry_from_profile(profile)
            for user, profile in sorted(state.profiles.items())
        },
    }


class _Invalid(Exception):
    """A field of the document is missing or of the wrong kind."""


def _state_from_document(document: object) -> ClientState:
    if not isinstance(document, dict):
        raise _Invalid("the top level is not an object")
    version = document.get("version")
    if type(version) is not int:
        raise _Invalid("no version number")
    if version > STATE_VERSION:
        raise _Invalid(
            f"it has version {version}, written by a newer SUTO client "
            f"(this one reads version {STATE_VERSION})"
        )
    if version < 1:
        raise _Invalid(f"unknown version {version}")
    accounts = document.get("accounts")
    if not isinstance(accounts, dict):
        raise _Invalid("'accounts' is not an object")
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise _Invalid("'profiles' is not an object")
    return ClientState(
        {
            user: _account_from_entry(user, entry)
            for user, entry in accounts.items()
        },
        {
            user: _profile_from_entry(user, entry)
            for user, entry in profiles.items()
        },
    )


def _account_from_entry(user: str, entry: object) -> Account:
    if not user:
        raise _Invalid("an account has an empty user name")
    if not isinstance(entry, dict):
        raise _Invalid(f"account {user!r} is not an object")
    host = _field(user, entry, "server_host", str)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise _Invalid(
            f"account {user!r}: server_host is not an IP address"
        ) from None
    port = _field(user, entry, "server_port", int)
    if not 0 < port < 65536:
        raise _Invalid(f"account {user!r}: server_port out of range")
    return Account(
        user=user,
        server_host=host,
        server_port=port,
        legacy=_field(user, entry, "legacy", bool),
        password=_optional(user, entry, "password"),
        salt=_optional(user, entry, "salt"),
        salted_hash=_optional(user, entry, "salted_hash"),
        **_trust_from_entry(f"account {user!r}", entry),
    )


#: How an account or a profile trusts its server and proves itself to it.
_TRUST_FIELDS = ("pin", "ca", "client_cert", "client_key")


def _trust_from_entry(
    owner: str, entry: dict, *, required: bool = False
) -> dict[str, str | None]:
    """
    Read and check an entry's L{_TRUST_FIELDS}, alike for accounts and
    profiles: a pin is a SHA-256 fingerprint, a pin and a CA bundle
    exclude each other, and a client certificate comes with its key.

    @param owner: names the entry in messages (C{"account 'alice'"}).
    @param required: the entry must have a pin or a CA bundle.
    @return: the fields, as keyword arguments.
    """
    trust = {name: _optional_field(owner, entry, name) for name in _TRUST_FIELDS}
    if trust["pin"] is not None:
        try:
            trust["pin"] = normalise_pin(trust["pin"])
        except ValueError:
            raise _Invalid(
                f"{owner}: pin is not a SHA-256 fingerprint"
            ) from None
    if trust["pin"] is not None and trust["ca"] is not None:
        raise _Invalid(f"{owner}: pin and ca exclude each other")
    if required and trust["pin"] is None and trust["ca"] is None:
        raise _Invalid(f"{owner}: it has neither a pin nor a ca")
    if (trust["client_cert"] is None) != (trust["client_key"] is None):
        raise _Invalid(f"{owner}: client_cert and client_key go together")
    return trust


def _field(user: str, entry: dict, name: str, kind: type):
    value = entry.get(name)
    # type() rather than isinstance(): a JSON true must not pass as a port.
    if type(value) is not kind:
        raise _Invalid(f"account {user!r}: {name} is not a {kind.__name__}")
    return value


def _optional(user: str, entry: dict, name: str) -> str | None:
    return _optional_field(f"account {user!r}", entry, name)


def _optional_field(owner: str, entry: dict, name: str) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    if type(value) is not str or not value:
        raise _Invalid(f"{owner}: {name} is not a non-empty string")
    return value


_KEY_ID = re.compile(r"[0-9a-f]{32}")
_MAX_GENERATION = 2**64


#: The times a profile entry holds only once they happened.
_OPTIONAL_TIMES = ("rotated_at", "offline_since")


def _entry_from_profile(profile: EnrolledProfile) -> dict:
    entry = {
        "server_host": profile.server_host,
        "server_port": profile.server_port,
        "pin": profile.pin,
        "key": base64.b64encode(profile.key).decode("ascii"),
        "key_id": profile.key_id,
        "generation": profile.generation,
        "enrolled_at": profile.enrolled_at,
    }
    # Written only when set, so a profile that never rotated nor went
    # offline, pinned and without a client certificate, reads the same as
    # in files from before these fields.
    for name in (*_OPTIONAL_TIMES, *_TRUST_FIELDS[1:]):
        if getattr(profile, name) is not None:
            entry[name] = getattr(profile, name)
    return entry


def _profile_from_entry(user: str, entry: object) -> EnrolledProfile:
    if not wire.is_valid_user(user):
        raise _Invalid("a profile has an invalid user name")
    if not isinstance(entry, dict):
        raise _Invalid(f"profile {user!r} is not an object")

    def value(name: str, *kinds: type):
        found = entry.get(name)
        # type() rather than isinstance(), as for accounts.
        if type(found) not in kinds:
            raise _Invalid(
                f"profile {user!r}: {name} is not a {kinds[0].__name__}"
            )
        return found

    def invalid(name: str, what: str) -> _Invalid:
        return _Invalid(f"profile {user!r}: {name} is not {what}")

    try:
        host = str(ipaddress.ip_address(value("server_host", str)))
    except ValueError:
        raise invalid("server_host", "an IP address") from None
    port = value("server_port", int)
    if not 0 < port < 65536:
        raise invalid("server_port", "in range")
    trust = _trust_from_entry(f"profile {user!r}", entry, required=True)
    encoded_key = value("key", str)
    try:
        key = base64.b64decode(encoded_key, validate=True)
    except binascii.Error:
        raise invalid("key", "base64") from None
    # Only the canonical encoding of a key of the right size is accepted.
    if len(key) != KEY_SIZE or base64.b64encode(key).decode() != encoded_key:
        raise invalid("key", f"a base64 {KEY_SIZE}-byte key")
    key_id = value("key_id", str)
    if not _KEY_ID.fullmatch(key_id):
        raise invalid("key_id", "32 lowercase hex digits")
    generation = value("generation", int)
    if not 0 <= generation < _MAX_GENERATION:
        raise invalid("generation", "in range")
    enrolled_at = value("enrolled_at", float, int)
    if not (math.isfinite(enrolled_at) and enrolled_at >= 0):
        raise invalid("enrolled_at", "a time after the epoch")
    times = {}
    for name in _OPTIONAL_TIMES:
        if name in entry:
            time = value(name, float, int)
            if not (math.isfinite(time) and time >= 0):
                raise invalid(name, "a time after the epoch")
            times[name] = float(time)
    return EnrolledProfile(
        user=user,
        server_host=host,
        server_port=port,
        key=key,
        key_id=key_id,
        generation=generation,
        enrolled_at=float(enrolled_at),
        **times,
        **trust,
    )
