# -*- test-case-name: tests.client.pam.test_config -*-
"""
The root-owned TOML file that tells C{suto-pam} which server to ask, how
to trust it, what certificate the host presents and for whom it decides.

A PAM helper runs as root on every C{sudo}, so the file and the host's key
are refused when another user could have written them (or, for the key,
read it): an attacker who can edit the file can point the host at a
server of their own.  The check applies when C{suto-pam} runs as root, as
it does under PAM; C{--check} run by an operator reports it the same way.

Every problem is a L{PamConfigError} naming the file, the setting and
what is wrong, never the contents of a key; under PAM it is a denial.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import stat
from dataclasses import dataclass

from suto_client.tls import normalise_pin
from suto_server.core.config import ConfigError, read_toml

#: Where C{suto-pam} reads its configuration unless C{--config} says.
DEFAULT_PATH = "/etc/suto/pam.toml"

#: The default deadline, in seconds, for the whole decision.
DEFAULT_DEADLINE = 10.0

#: The longest deadline taken: a login prompt that hangs longer than this
#: is an outage, not a slow device.
MAX_DEADLINE = 60.0

#: The offline grace taken at most: three days, a long weekend away.
MAX_OFFLINE_GRACE = 72 * 3600.0

_KNOWN = {"server", "ca", "pin", "certificate", "key", "deadline", "users", "group", "offline"}
_KNOWN_OFFLINE = {"enabled", "users", "grace", "stamps"}


class PamConfigError(ValueError):
    """
    The configuration, or a file it names, is unusable.
    """


@dataclass(frozen=True)
class Offline:
    """
    The offline policy for laptops (see L{suto_client.pam.offline}).

    @ivar users: who may be let in while the server cannot be reached.
    @ivar grace: seconds since the user's last accepted verification
        during which that is allowed.
    @ivar stamps: the root-only folder the acceptances are recorded in.
    """

    users: frozenset[str]
    grace: float
    stamps: str


@dataclass(frozen=True)
class PamConfig:
    """
    One host's C{suto-pam} settings, checked.

    @ivar host: the server's address or DNS name.
    @ivar port: the port of its verification API.
    @ivar ca: the CA bundle the server's certificate must lead to, or
        L{None} when C{pin} is used.
    @ivar pin: the server certificate's SHA-256 fingerprint, or L{None}.
    @ivar certificate: the host's client certificate file.
    @ivar key: its private key file.
    @ivar deadline: seconds allowed for the whole decision.
    @ivar users: the users it decides for, listed by name.
    @ivar group: a group whose members it decides for too, or L{None}.
    @ivar offline: the offline policy, or L{None} (the default: off).
    """

    host: str
    port: int
    ca: str | None
    pin: str | None
    certificate: str
    key: str
    deadline: float
    users: frozenset[str]
    group: str | None
    offline: Offline | None

    def covers(self, user: str) -> bool:
        """
        Whether C{user} is one this configuration decides for: listed, or
        a member of the group (its supplementary members, or a user whose
        primary group it is).
        """
        if user in self.users:
            return True
        if self.group is None:
            return False
        try:
            group = grp.getgrnam(self.group)
        except KeyError:
            return False
        if user in group.gr_mem:
            return True
        try:
            return pwd.getpwnam(user).pw_gid == group.gr_gid
        except KeyError:
            return False


def check_owner(path: str, what: str, *, secret: bool = False) -> None:
    """
    Refuse a file another user than root could have changed: owned by
    someone else, or writable by its group or by others; a C{secret} file
    readable by others too.  Applies only when running as root, where a
    file others control would let them decide for root.

    @raise PamConfigError: the file cannot be examined or is refused.
    """
    try:
        status = os.stat(path)
    except OSError as failure:
        raise PamConfigError(
            f"cannot read the {what} {path!r}: {failure.strerror}"
        ) from failure
    if os.geteuid() != 0:
        return
    if status.st_uid != 0:
        raise PamConfigError(f"the {what} {path!r} is not owned by root")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PamConfigError(
            f"the {what} {path!r} is writable by users other than root "
            f"(mode {stat.S_IMODE(status.st_mode):04o})"
        )
    if secret and status.st_mode & stat.S_IROTH:
        raise PamConfigError(
            f"the {what} {path!r} is readable by every user "
            f"(mode {stat.S_IMODE(status.st_mode):04o})"
        )


def load(path: str = DEFAULT_PATH) -> PamConfig:
    """
    Read and check the configuration file at C{path}, and the ownership
    of the key and certificate files it names (their contents are read
    when the connection is made, by L{suto_client.tls}).

    @raise PamConfigError: anything is wrong, with the first problem.
    """
    check_owner(path, "configuration file")
    try:
        document = read_toml(path)
    except ConfigError as failure:
        raise PamConfigError(str(failure)) from failure
    config = parse(document, path)
    check_owner(config.certificate, "host certificate")
    check_owner(config.key, "host key", secret=True)
    return config


def parse(document: dict, path: str) -> PamConfig:
    """
    Check the settings of a parsed configuration document.

    @param path: the file it came from, for the messages.
    @raise PamConfigError: a setting is missing, unknown or out of range.
    """
    _refuse_unknown(document, _KNOWN, path, "")
    host, port = _server(_string(document, "server", path), path)
    ca = _optional_string(document, "ca", path)
    pin = _optional_string(document, "pin", path)
    if (ca is None) == (pin is None):
        raise PamConfigError(
            f"{path}: give exactly one of 'ca' (the CA bundle that issued "
            f"the server's certificate) and 'pin' (its SHA-256 fingerprint)"
        )
    if pin is not None:
        try:
            pin = normalise_pin(pin)
        except ValueError as failure:
            raise PamConfigError(f"{path}: 'pin': {failure}") from failure
    deadline = document.get("deadline", DEFAULT_DEADLINE)
    deadline = _duration(deadline, "deadline", 1.0, MAX_DEADLINE, path)
    users = _names(document.get("users", []), "users", path)
    group = _optional_string(document, "group", path)
    if not users and group is None:
        raise PamConfigError(
            f"{path}: name the users it decides for with 'users', 'group' "
            f"or both; everyone else (root, the break-glass account) is "
            f"never decided for"
        )
    offline = None
    section = document.get("offline")
    if section is not None:
        offline = _offline(section, path)
    return PamConfig(
        host=host,
        port=port,
        ca=ca,
        pin=pin,
        certificate=_string(document, "certificate", path),
        key=_string(document, "key", path),
        deadline=deadline,
        users=users,
        group=group,
        offline=offline,
    )


def _offline(section: object, path: str) -> Offline | None:
    if not isinstance(section, dict):
        raise PamConfigError(f"{path}: 'offline' must be a table")
    _refuse_unknown(section, _KNOWN_OFFLINE, path, "offline.")
    enabled = section.get("enabled", False)
    if not isinstance(enabled, bool):
        raise PamConfigError(f"{path}: 'offline.enabled' must be true or false")
    if not enabled:
        return None
    users = _names(section.get("users", []), "offline.users", path)
    if not users:
        raise PamConfigError(
            f"{path}: 'offline.users' must list who may log in while the "
            f"server cannot be reached"
        )
    grace = _duration(section.get("grace", 8 * 3600.0), "offline.grace", 60.0, MAX_OFFLINE_GRACE, path)
    stamps = section.get("stamps", "/var/lib/suto-pam")
    if not isinstance(stamps, str) or not os.path.isabs(stamps):
        raise PamConfigError(f"{path}: 'offline.stamps' must be an absolute path")
    return Offline(users, grace, stamps)


def _refuse_unknown(table: dict, known: set[str], path: str, prefix: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise PamConfigError(
            f"{path}: unknown setting '{prefix}{unknown[0]}' (known: "
            f"{', '.join(prefix + name for name in sorted(known))})"
        )


def _string(document: dict, name: str, path: str) -> str:
    value = _optional_string(document, name, path)
    if value is None:
        raise PamConfigError(f"{path}: the setting {name!r} is required")
    return value


def _optional_string(document: dict, name: str, path: str) -> str | None:
    value = document.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise PamConfigError(f"{path}: {name!r} must be a non-empty string")
    return value


def _duration(value: object, name: str, least: float, most: float, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PamConfigError(f"{path}: {name!r} must be a number of seconds")
    if not math.isfinite(value) or not least <= value <= most:
        raise PamConfigError(
            f"{path}: {name!r} must be between {least:g} and {most:g} seconds"
        )
    return float(value)


def _names(value: object, name: str, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(
        isinstance(each, str) and each and len(each) <= 256 for each in value
    ):
        raise PamConfigError(f"{path}: {name!r} must be a list of user names")
    return frozenset(value)


def _server(text: str, path: str) -> tuple[str, int]:
    """
    Split C{HOST:PORT}, C{[V6]:PORT}: the verification API has no default
    port, so the port is required.
    """
    host, separator, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PamConfigError(
            f"{path}: 'server' must be HOST:PORT (an IPv6 address in "
            f"brackets), not {text!r}"
        )
    return host, int(port)
