"""
What the store holds (accounts, enrollment windows, enrolled profiles, the
audit log), and which values it accepts.

The records are plain frozen dataclasses; the C{check_*} functions are what
every store runs before writing one, so that both stores refuse the same
values and nothing unbounded or malformed reaches the database.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from zope.interface import implementer

from suto_server import wire
from suto_server.interfaces import IUserRecord
from suto_server.schemes import identify


def check_username(username):
    """
    Refuse a name that could not travel in a SUTO hello.  The store accepts
    exactly the names the wire does (1 to 64 of C{A-Z a-z 0-9 . _ -}, not
    starting with C{-}), so no account can exist that no peer could ever
    ask for, and no leading C{-} can be mistaken for an option by tools.

    @param username: the proposed account name.
    @raise ValueError: C{username} is not a L{str} following that rule.
    """
    if not wire.is_valid_user(username):
        raise ValueError("invalid user name")


@implementer(IUserRecord)
@dataclass(frozen=True)
class UserRecord:
    """
    One account as listed; it names the hash scheme but never carries the
    hash, so a listing can be shown or logged without leaking secrets.
    """

    username: str
    scheme: str
    created: float
    updated: float


#: Most networks one enrollment window may name.
MAX_NETWORKS = 256
#: Longest location name, event name and source address the store keeps.
MAX_NAME = 255
#: Longest audit reason the store keeps.
MAX_REASON = 16384
#: Size of a hardware fingerprint hash (SHA-256).
FINGERPRINT_SIZE = 32
#: Largest sealed key the store keeps (a master-key seal of a 32-byte key
#: is 60 bytes; this only bounds the input).
MAX_SEALED_KEY = 1024
#: Latest POSIX time the store keeps: every int up to it is exactly a
#: float, so both stores give back the same value.  (NaN fails the
#: comparison and infinity is out of range.)
MAX_TIME = 2**53
#: Counters and generations must fit a signed 64-bit SQLite integer.
_MAX_INTEGER = 2**63 - 1

_KEY_ID = re.compile(r"[0-9a-f]{32}")
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class EnrollmentWindow:
    """
    IT's permission for one user to enroll one device, from one location,
    until a deadline, with a one-time password.  The password itself is
    never kept, only its hash, which C{repr} leaves out so a window can be
    logged.

    @ivar networks: the location's networks in canonical CIDR notation
        (as C{str(ipaddress.ip_network(...))} writes them).
    @ivar opened_at: POSIX time the window was opened.
    @ivar deadline: POSIX time after which it accepts nobody; absolute, so
        a restart does not extend it.
    @ivar replace: whether completing it may replace an existing profile.
    """

    username: str
    otp_hash: str = field(repr=False)
    networks: tuple[str, ...]
    location_name: str | None
    opened_at: float
    deadline: float
    attempts: int
    max_attempts: int
    replace: bool


@dataclass(frozen=True)
class Profile:
    """
    An enrolled device: what the server needs to recognise it and the key
    it shares with it.  The key is kept only sealed with the master key
    (see L{suto_server.masterkey}); C{repr} leaves out the fingerprint hash
    and the sealed key.

    @ivar location: the source address the device enrolled from.
    @ivar location_name: the name of the window's location, if it had one.
    """

    username: str
    fingerprint_hash: bytes = field(repr=False)
    key_sealed: bytes = field(repr=False)
    key_id: str
    generation: int
    enrolled_at: float
    location: str
    location_name: str | None


@dataclass(frozen=True)
class AuditEvent:
    """
    One line of the audit log: what happened to whom, from where, and why.

    @ivar event: a machine-readable name, e.g. C{"enrollment_failed"}.
    @ivar username: the user concerned, if any.
    @ivar source: the peer's address, if a peer was involved.
    @ivar reason: the detail, e.g. C{"wrong_location"}.
    """

    time: float
    event: str
    username: str | None
    source: str | None
    reason: str


def _check_type(record, kind):
    """
    @raise ValueError: C{record} is not exactly a C{kind} (a subclass
        could change what the checks below rely on).
    """
    if type(record) is not kind:
        raise ValueError(f"{kind.__name__} record expected")


def check_time(name, value):
    """
    @param name: what C{value} is, for the message.
    @raise ValueError: C{value} is not an L{int} or L{float} from 0 to
        L{MAX_TIME}.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    if not 0 <= value <= MAX_TIME:
        raise ValueError(f"{name} must be a POSIX time from 0 to 2**53")


def _check_count(name, value, minimum):
    """
    @raise ValueError: C{value} is not an L{int} (L{bool} excluded) from
        C{minimum} to the largest SQLite integer.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int")
    if not minimum <= value <= _MAX_INTEGER:
        raise ValueError(f"{name} is out of range")


def _check_text(name, value, maximum, optional=False):
    """
    @param optional: whether L{None} is accepted.
    @raise ValueError: C{value} is not a L{str} of 1 to C{maximum}
        printable characters: nothing that could forge a line in a log.
    """
    if value is None and optional:
        return
    if not isinstance(value, str) or not 0 < len(value) <= maximum:
        raise ValueError(f"{name} must be a str of 1 to {maximum} characters")
    if not value.isprintable():
        raise ValueError(f"{name} must be printable")


def _check_network(network):
    """
    Refuse anything but one network in canonical CIDR notation: the store
    joins a window's networks with commas, and a canonical form compares
    and displays the same everywhere.
    """
    try:
        canonical = str(ipaddress.ip_network(network))
    except (TypeError, ValueError):
        raise ValueError("a network must be in CIDR notation") from None
    if canonical != network:
        raise ValueError("a network must be in canonical CIDR notation")


def check_window(window):
    """
    Refuse a window the store could not keep faithfully or that could never
    be used.

    @raise ValueError: C{window} is not an L{EnrollmentWindow}, or a field
        is of the wrong type or out of bounds.
    @raise suto_server.schemes.UnsupportedScheme: its password hash is not
        one SUTO can verify.
    """
    _check_type(window, EnrollmentWindow)
    check_username(window.username)
    identify(window.otp_hash)
    if not isinstance(window.networks, tuple) or not (
        0 < len(window.networks) <= MAX_NETWORKS
    ):
        raise ValueError(f"a window needs 1 to {MAX_NETWORKS} networks")
    for network in window.networks:
        _check_network(network)
    _check_text("location name", window.location_name, MAX_NAME, optional=True)
    check_time("opened_at", window.opened_at)
    check_time("deadline", window.deadline)
    if window.deadline < window.opened_at:
        raise ValueError("a window cannot close before it opens")
    _check_count("attempts", window.attempts, 0)
    _check_count("max_attempts", window.max_attempts, 1)
    if type(window.replace) is not bool:
        raise ValueError("replace must be a bool")


def check_profile(profile):
    """
    Refuse a profile the store could not keep faithfully.

    @raise ValueError: C{profile} is not a L{Profile}, or a field is of the
        wrong type or out of bounds.
    """
    _check_type(profile, Profile)
    check_username(profile.username)
    if (
        not isinstance(profile.fingerprint_hash, bytes)
        or len(profile.fingerprint_hash) != FINGERPRINT_SIZE
    ):
        raise ValueError(
            f"a fingerprint hash must be {FINGERPRINT_SIZE} bytes"
        )
    if not isinstance(profile.key_sealed, bytes) or not (
        0 < len(profile.key_sealed) <= MAX_SEALED_KEY
    ):
        raise ValueError(f"a sealed key must be 1 to {MAX_SEALED_KEY} bytes")
    if not isinstance(profile.key_id, str) or not _KEY_ID.fullmatch(
        profile.key_id
    ):
        raise ValueError("a key id must be 32 lowercase hex digits")
    _check_count("generation", profile.generation, 0)
    check_time("enrolled_at", profile.enrolled_at)
    try:
        ipaddress.ip_address(profile.location)
    except (TypeError, ValueError):
        raise ValueError("a location must be an IP address") from None
    _check_text(
        "location name", profile.location_name, MAX_NAME, optional=True
    )


def check_audit_event(event):
    """
    Refuse an audit event the store could not keep faithfully.

    @raise ValueError: C{event} is not an L{AuditEvent}, or a field is of
        the wrong type or out of bounds.
    """
    _check_type(event, AuditEvent)
    check_time("time", event.time)
    if not isinstance(event.event, str) or not _EVENT.fullmatch(event.event):
        raise ValueError("an event name must be 1 to 64 of a-z 0-9 _")
    if event.username is not None:
        check_username(event.username)
    _check_text("source", event.source, MAX_NAME, optional=True)
    if not isinstance(event.reason, str) or len(event.reason) > MAX_REASON:
        raise ValueError(
            f"a reason must be a str of at most {MAX_REASON} characters"
        )
    if not event.reason.isprintable():
        raise ValueError("a reason must be printable")
