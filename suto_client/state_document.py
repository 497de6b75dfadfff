# -*- test-case-name: tests.client.test_statefile -*-
"""
The agent's state as one JSON document, and back::

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

A profile may name the other servers of its deployment, tried in turn
when its own cannot be reached: C{"failover": [["192.0.2.11", 2021],
...]}, written only when there are some.

A file without C{"profiles"} (written before enrollment existed) has no
enrolled profiles.  An account without C{"ca"}, C{"client_cert"} and
C{"client_key"} (written before CA trust and client certificates existed)
has none of them.

Reading checks every field, so a document that was edited by hand or
damaged is refused with L{InvalidDocument} naming what is wrong, never
half-used.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re

from suto_client.state import Account, ClientState, EnrolledProfile
from suto_client.tls import normalise_pin
from suto_server.core import wire
from suto_server.core.keyschedule import KEY_SIZE

STATE_VERSION = 1
"""The layout version written into every file, for future migrations."""

MAX_FAILOVER = 16
"""The most failover servers a profile may name."""


def document_from_state(state: ClientState) -> dict:
    """
    @return: C{state} as the document to write, accounts and profiles
        sorted by user name so that the same state writes the same bytes.
    """
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


class InvalidDocument(Exception):
    """
    A field of the document is missing or of the wrong kind; the message
    names it and never contains a secret.
    """


def state_from_document(document: object) -> ClientState:
    """
    @param document: the decoded JSON of a state file.
    @return: the state it describes.
    @raise InvalidDocument: it is not a state document this version reads.
    """
    if not isinstance(document, dict):
        raise InvalidDocument("the top level is not an object")
    version = document.get("version")
    if type(version) is not int:
        raise InvalidDocument("no version number")
    if version > STATE_VERSION:
        raise InvalidDocument(
            f"it has version {version}, written by a newer SUTO client "
            f"(this one reads version {STATE_VERSION})"
        )
    if version < 1:
        raise InvalidDocument(f"unknown version {version}")
    accounts = document.get("accounts")
    if not isinstance(accounts, dict):
        raise InvalidDocument("'accounts' is not an object")
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise InvalidDocument("'profiles' is not an object")
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
        raise InvalidDocument("an account has an empty user name")
    if not isinstance(entry, dict):
        raise InvalidDocument(f"account {user!r} is not an object")
    host = _field(user, entry, "server_host", str)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise InvalidDocument(
            f"account {user!r}: server_host is not an IP address"
        ) from None
    port = _field(user, entry, "server_port", int)
    if not 0 < port < 65536:
        raise InvalidDocument(f"account {user!r}: server_port out of range")
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
            raise InvalidDocument(
                f"{owner}: pin is not a SHA-256 fingerprint"
            ) from None
    if trust["pin"] is not None and trust["ca"] is not None:
        raise InvalidDocument(f"{owner}: pin and ca exclude each other")
    if required and trust["pin"] is None and trust["ca"] is None:
        raise InvalidDocument(f"{owner}: it has neither a pin nor a ca")
    if (trust["client_cert"] is None) != (trust["client_key"] is None):
        raise InvalidDocument(f"{owner}: client_cert and client_key go together")
    return trust


def _field(user: str, entry: dict, name: str, kind: type):
    value = entry.get(name)
    # type() rather than isinstance(): a JSON true must not pass as a port.
    if type(value) is not kind:
        raise InvalidDocument(f"account {user!r}: {name} is not a {kind.__name__}")
    return value


def _optional(user: str, entry: dict, name: str) -> str | None:
    return _optional_field(f"account {user!r}", entry, name)


def _optional_field(owner: str, entry: dict, name: str) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    if type(value) is not str or not value:
        raise InvalidDocument(f"{owner}: {name} is not a non-empty string")
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
    if profile.failover:
        entry["failover"] = [[host, port] for host, port in profile.failover]
    return entry


def _server_address(invalid, name: str, host: object, port: object):
    """
    @param invalid: makes the L{InvalidDocument} naming a field.
    @return: C{(host, port)}, the host in its canonical form.
    @raise InvalidDocument: C{host} is not an IP address or C{port} not a
        TCP port.
    """
    try:
        host = str(ipaddress.ip_address(host)) if type(host) is str else None
    except ValueError:
        host = None
    if host is None:
        raise invalid(name, "an IP address")
    # type() rather than isinstance(), as for accounts.
    if type(port) is not int or not 0 < port < 65536:
        raise invalid(name, "a port in range")
    return host, port


def _failover_from_entry(invalid, entry: dict, enrolled: tuple[str, int]):
    """
    @return: the profile's L{EnrolledProfile.failover} servers: a list of
        at most L{MAX_FAILOVER} C{[address, port]} pairs, none twice and
        none the enrolled server; none when the field is absent (files
        from before it).
    @raise InvalidDocument: it is not such a list.
    """
    given = entry.get("failover", [])
    if type(given) is not list or len(given) > MAX_FAILOVER:
        raise invalid("failover", f"a list of at most {MAX_FAILOVER} servers")
    servers = []
    for pair in given:
        if type(pair) is not list or len(pair) != 2:
            raise invalid("failover", "a list of [address, port] pairs")
        server = _server_address(invalid, "failover", *pair)
        if server == enrolled or server in servers:
            raise invalid("failover", "a list of servers named once each")
        servers.append(server)
    return tuple(servers)


def _profile_from_entry(user: str, entry: object) -> EnrolledProfile:
    if not wire.is_valid_user(user):
        raise InvalidDocument("a profile has an invalid user name")
    if not isinstance(entry, dict):
        raise InvalidDocument(f"profile {user!r} is not an object")

    def value(name: str, *kinds: type):
        found = entry.get(name)
        # type() rather than isinstance(), as for accounts.
        if type(found) not in kinds:
            raise InvalidDocument(
                f"profile {user!r}: {name} is not a {kinds[0].__name__}"
            )
        return found

    def invalid(name: str, what: str) -> InvalidDocument:
        return InvalidDocument(f"profile {user!r}: {name} is not {what}")

    try:
        host = str(ipaddress.ip_address(value("server_host", str)))
    except ValueError:
        raise invalid("server_host", "an IP address") from None
    port = value("server_port", int)
    if not 0 < port < 65536:
        raise invalid("server_port", "in range")
    failover = _failover_from_entry(invalid, entry, (host, port))
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
        failover=failover,
    )
