"""
What the store holds (accounts, enrollment windows, enrolled profiles and
their key rotations and moves, the audit log), and which values it
accepts.

The records are plain frozen dataclasses; the C{check_*} functions are what
every store runs before writing one, so that both stores refuse the same
values and nothing unbounded or malformed reaches the database.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from zope.interface import implementer

from suto_server.core import wire
from suto_server.core.schemes import identify
from suto_server.store.interfaces import IUserRecord


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
#: Most locations one audit event may name (a move names two).
MAX_LOCATIONS = 16
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
#: How many retired key ids the store remembers per profile: enough to
#: recognise a copy of a device that fell a few rotations behind, few
#: enough that the history of a long-lived profile stays small.
RETIRED_KEY_HISTORY = 16

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
    An enrolled device: what the server needs to recognise it and the keys
    it shares with it.  Keys are kept only sealed with the master key (see
    L{suto_server.masterkey}); C{repr} leaves out the fingerprint hash and
    the sealed keys.

    The fields after C{location_name} follow key rotation and have the
    values of a device that has just enrolled, so that enrollment need not
    name them.

    @ivar key_id: the id of the current key, the one the server rotates
        from.
    @ivar generation: how many rotations led to the current key (0 for
        the key made at enrollment).
    @ivar location: the source address the device enrolled from.
    @ivar location_name: the name of the window's location, if it had one.
    @ivar previous_key_sealed: the key the current one replaced, kept
        until the device shows it holds the current one (a device that
        crashed before committing the new key comes back with this one);
        L{None} when there is none.
    @ivar previous_key_id: the id of that key, or L{None} with it.
    @ivar current_confirmed: whether the device has shown it holds the
        current key (by enrolling with it or rotating from it).
    @ivar rotated_at: POSIX time the last rotation was committed, or
        L{None} if the profile never rotated.
    @ivar last_seen: POSIX time the device last used the profile; given
        as L{None}, the enrollment time.
    @ivar last_address: the address the device last used the profile
        from; given as L{None}, the enrollment location.
    @ivar rotation_failures: rotations in a row that failed on the
        device's side since the last committed one.
    """

    username: str
    fingerprint_hash: bytes = field(repr=False)
    key_sealed: bytes = field(repr=False)
    key_id: str
    generation: int
    enrolled_at: float
    location: str
    location_name: str | None
    previous_key_sealed: bytes | None = field(default=None, repr=False)
    previous_key_id: str | None = None
    current_confirmed: bool = True
    rotated_at: float | None = None
    last_seen: float | None = None
    last_address: str | None = None
    rotation_failures: int = 0

    def __post_init__(self):
        # A frozen dataclass sets its fields through object.__setattr__;
        # these two default to other fields, which a field default cannot.
        if self.last_seen is None:
            object.__setattr__(self, "last_seen", self.enrolled_at)
        if self.last_address is None:
            object.__setattr__(self, "last_address", self.location)

    @property
    def previous_held(self) -> bool:
        """
        May a legitimate device still hold the previous key?  Yes while
        the current one is unconfirmed: a device that missed the final
        acknowledgement comes back with it.
        """
        return self.previous_key_id is not None and not self.current_confirmed

    def may_hold(self, key_id: str) -> bool:
        """
        Is C{key_id} one a legitimate device of this profile may hold now:
        the current key's, or the previous one's while L{previous_held}?
        """
        return key_id == self.key_id or (
            self.previous_held and key_id == self.previous_key_id
        )


@dataclass(frozen=True)
class RotationCommit:
    """
    One rotation to commit: a compare-and-swap that makes C{new_key_id} a
    profile's current key, provided its current key is still
    C{expected_key_id}.  C{repr} leaves out the sealed key.

    @ivar expected_key_id: the id of the current key the new one was
        derived from.
    @ivar new_key_sealed: the new key, sealed with the master key.
    @ivar new_generation: the new key's generation, one more than the
        expected key's.
    @ivar now: POSIX time of the commit.
    @ivar address: the address the device rotated from.
    @ivar offline_step: for the rotation that ends a reconnection, the
        offline time step it reconnected with, which the profile may then
        never use again; L{None} for any other rotation.
    """

    username: str
    expected_key_id: str
    new_key_sealed: bytes = field(repr=False)
    new_key_id: str
    new_generation: int
    now: float
    address: str
    offline_step: int | None = None


@dataclass(frozen=True)
class BlacklistEntry:
    """
    A profile refused for good until an operator lifts the entry (and the
    device enrolls again).

    @ivar time: POSIX time it was blacklisted.
    @ivar reason: why, for people; never a secret.
    @ivar source: the address the offending connection came from.
    @ivar alert: the type of the alert it raised.
    """

    username: str
    time: float
    reason: str
    source: str | None
    alert: str


@dataclass(frozen=True)
class AuditEvent:
    """
    One line of the audit log: what happened to whom, from where, and why.

    The log is a hash chain (see L{suto_server.store.chain}): the store
    sets C{previous_hash} and C{hash} when it appends an event, whatever
    the event carried, so that no caller can fork the chain.  They take
    no part in comparisons, so an event read back equals the one
    appended.

    @ivar event: a machine-readable name, e.g. C{"enrollment_failed"}.
    @ivar username: the user concerned, if any.
    @ivar source: the peer's address, if a peer was involved.
    @ivar reason: the detail, e.g. C{"wrong_location"}.
    @ivar locations: the places the event concerns, as operators name
        them (e.g. C{"10.2.3.17 (bldg2-f3-jack17)"}), possibly none.
    @ivar previous_hash: the hash of the event appended before this one
        (32 zero bytes for the first), or L{None} before it is stored.
    @ivar hash: this event's link in the chain, or L{None} before it is
        stored.
    """

    time: float
    event: str
    username: str | None
    source: str | None
    reason: str
    locations: tuple[str, ...] = ()
    previous_hash: bytes | None = field(default=None, compare=False)
    hash: bytes | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Move:
    """
    One move of an enrolled profile from one address to another, kept for
    its history after the profile itself is gone.

    @ivar time: POSIX time the move was accepted.
    @ivar old_location_name: the named location of C{old_address}, if
        any.
    @ivar new_location_name: the named location of C{new_address}, if
        any.
    """

    username: str
    time: float
    old_address: str
    new_address: str
    old_location_name: str | None
    new_location_name: str | None


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
    @raise suto_server.core.schemes.UnsupportedScheme: its password hash is not
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


def _check_sealed_key(name, value):
    """
    @raise ValueError: C{value} is not L{bytes} of 1 to L{MAX_SEALED_KEY}.
    """
    if not isinstance(value, bytes) or not 0 < len(value) <= MAX_SEALED_KEY:
        raise ValueError(f"{name} must be 1 to {MAX_SEALED_KEY} bytes")


def check_address(name, value):
    """
    @param name: what C{value} is, for the message.
    @raise ValueError: C{value} is not a L{str} holding one IP address,
        printable and at most L{MAX_NAME} characters (L{ipaddress} accepts
        any IPv6 scope, line breaks included).
    """
    _check_text(name, value, MAX_NAME)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{name} must be an IP address") from None


def check_key_id(value, name="a key id"):
    """
    Refuse a key id the store could never hold, so that a lookup by key id
    is bounded like every other input.

    @param name: what C{value} is, for the message.
    @raise ValueError: C{value} is not 32 lowercase hex digits, as
        L{suto_server.core.keyschedule.key_id} writes them.
    """
    if not isinstance(value, str) or not _KEY_ID.fullmatch(value):
        raise ValueError(f"{name} must be 32 lowercase hex digits")


def check_profile(profile):
    """
    Refuse a profile the store could not keep faithfully, or whose
    rotation state is impossible (a previous key without its id, or
    the same as the current one, or before the first generation).

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
    _check_sealed_key("a sealed key", profile.key_sealed)
    check_key_id(profile.key_id)
    _check_count("generation", profile.generation, 0)
    check_time("enrolled_at", profile.enrolled_at)
    check_address("location", profile.location)
    _check_text(
        "location name", profile.location_name, MAX_NAME, optional=True
    )
    if (profile.previous_key_sealed is None) != (
        profile.previous_key_id is None
    ):
        raise ValueError("a previous key needs both its seal and its id")
    if profile.previous_key_id is not None:
        _check_sealed_key("a sealed previous key", profile.previous_key_sealed)
        check_key_id(profile.previous_key_id, "a previous key id")
        if profile.previous_key_id == profile.key_id:
            raise ValueError("the previous key must differ from the current")
        if profile.generation == 0:
            raise ValueError("a key of generation 0 replaced no other")
    if type(profile.current_confirmed) is not bool:
        raise ValueError("current_confirmed must be a bool")
    if profile.rotated_at is not None:
        check_time("rotated_at", profile.rotated_at)
    check_time("last_seen", profile.last_seen)
    check_address("last address", profile.last_address)
    _check_count("rotation_failures", profile.rotation_failures, 0)


def check_key_use(username, key_id, now, address):
    """
    Refuse the arguments of a device's use of a key (confirming it, or
    rolling back to it) that the store could not keep faithfully.

    @raise ValueError: one of them is of the wrong type or out of bounds.
    """
    check_username(username)
    check_key_id(key_id)
    check_time("now", now)
    check_address("address", address)


def check_rotation_commit(commit):
    """
    Refuse a rotation the store could not commit faithfully.

    @raise ValueError: C{commit} is not a L{RotationCommit}, or a field is
        of the wrong type or out of bounds, or the new key is the expected
        one or of generation 0.
    """
    _check_type(commit, RotationCommit)
    check_username(commit.username)
    check_key_id(commit.expected_key_id, "the expected key id")
    _check_sealed_key("a sealed key", commit.new_key_sealed)
    check_key_id(commit.new_key_id, "the new key id")
    if commit.new_key_id == commit.expected_key_id:
        raise ValueError("the new key must differ from the expected one")
    _check_count("new_generation", commit.new_generation, 1)
    check_time("now", commit.now)
    check_address("address", commit.address)
    if commit.offline_step is not None:
        _check_count("offline_step", commit.offline_step, 0)


def check_blacklist_entry(entry):
    """
    Refuse a blacklist entry the store could not keep faithfully.

    @raise ValueError: C{entry} is not a L{BlacklistEntry}, or a field is
        of the wrong type or out of bounds.
    """
    _check_type(entry, BlacklistEntry)
    check_username(entry.username)
    check_time("time", entry.time)
    _check_text("reason", entry.reason, MAX_NAME)
    _check_text("source", entry.source, MAX_NAME, optional=True)
    if not isinstance(entry.alert, str) or not _EVENT.fullmatch(entry.alert):
        raise ValueError("an alert type must be 1 to 64 of a-z 0-9 _")


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
    if (
        not isinstance(event.locations, tuple)
        or len(event.locations) > MAX_LOCATIONS
    ):
        raise ValueError(
            f"locations must be a tuple of at most {MAX_LOCATIONS}"
        )
    for location in event.locations:
        _check_text("location", location, MAX_NAME)


def checked_audit_events(events):
    """
    @return: C{events} as a L{list}, each checked (L{check_audit_event}),
        so that a batch is refused whole before anything is stored.
    @raise ValueError: one of them is refused.
    """
    events = list(events)
    for event in events:
        check_audit_event(event)
    return events


def check_move(move):
    """
    Refuse a move the store could not keep faithfully.

    @raise ValueError: C{move} is not a L{Move}, or a field is of the
        wrong type or out of bounds.
    """
    _check_type(move, Move)
    check_username(move.username)
    check_time("time", move.time)
    check_address("old address", move.old_address)
    check_address("new address", move.new_address)
    _check_text(
        "old location name", move.old_location_name, MAX_NAME, optional=True
    )
    _check_text(
        "new location name", move.new_location_name, MAX_NAME, optional=True
    )
