# -*- test-case-name: tests.store.test_memory,tests.store.test_sqlite -*-
"""
Which values the store accepts: the C{check_*} functions every store runs
before writing, so that every store refuses the same values and nothing
unbounded or malformed reaches the database.
"""

import ipaddress
import re
from collections.abc import Collection

from suto_server.core import wire
from suto_server.core.schemes import identify
from suto_server.store.records import (
    ATTEMPT_NONCE_SIZE,
    FINGERPRINT_SIZE,
    LOCATIONS_PAGE,
    MAX_LOCATIONS,
    MAX_NAME,
    MAX_NETWORKS,
    MAX_REASON,
    MAX_SEALED_KEY,
    MAX_TIME,
    AuditEvent,
    BlacklistEntry,
    EnrollmentWindow,
    Move,
    Profile,
    RotationCommit,
)

#: Counters and generations must fit a signed 64-bit SQLite integer.
_MAX_INTEGER = 2**63 - 1
_KEY_ID = re.compile(r"[0-9a-f]{32}")
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")


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


def check_account(username, password_hash):
    """
    Refuse an account that could never log in: a name no hello could
    carry (L{check_username}), or a hash of a scheme SUTO cannot verify.

    @return: the name of C{password_hash}'s scheme, which the store keeps
        beside it.
    @raise ValueError: C{username} is not a valid name.
    @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme
        is not one SUTO can verify.
    """
    check_username(username)
    return identify(password_hash)


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
        Refused, never made printable (L{suto_server.core.shown}): the
        store keeps what it is given or nothing, and the layers above
        refuse first, each with its own answer.
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
    if commit.attempt_nonce is not None:
        if commit.offline_step is None:
            raise ValueError("an attempt nonce comes with an offline step")
        nonce = commit.attempt_nonce
        if not isinstance(nonce, bytes) or len(nonce) != ATTEMPT_NONCE_SIZE:
            raise ValueError(
                f"an attempt nonce must be {ATTEMPT_NONCE_SIZE} bytes"
            )


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


#: Most event types one read of the audit log selects at once (the
#: alerts are a dozen), so a statement's marks stay few.
MAX_AUDIT_TYPES = 64


def _checked_audit_types(types):
    """
    @param types: L{None}, or the event types a read of the audit log
        selects (any collection of them but a L{str}).
    @return: L{None}, or C{types} as a sorted L{tuple}, so that a store
        writes the same statement for the same set.
    @raise ValueError: C{types} is empty, holds more than
        L{MAX_AUDIT_TYPES} or one that is no event type's text.
    """
    if types is None:
        return None
    if isinstance(types, (str, bytes)) or not isinstance(types, Collection):
        raise ValueError("types must be a collection of event types")
    if not 0 < len(types) <= MAX_AUDIT_TYPES:
        raise ValueError(f"types must name 1 to {MAX_AUDIT_TYPES} event types")
    for kind in types:
        _check_text("an event type", kind, MAX_NAME)
    return tuple(sorted(set(types)))


def checked_audit_filters(username, event, since, until, types):
    """
    Refuse the filters of a read of the audit records, each L{None} when
    not given.

    @return: C{types} as L{_checked_audit_types} gives it.
    @raise ValueError: a filter is neither L{None} nor of its field's type
        and bounds.
    """
    _check_text("username", username, MAX_NAME, optional=True)
    _check_text("event", event, MAX_NAME, optional=True)
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            check_time(name, value)
    return _checked_audit_types(types)


def check_page(newest, skip) -> None:
    """
    @raise ValueError: C{newest}, how many of the newest records to read,
        is neither L{None} nor a positive count, or C{skip}, how many to
        pass over first, is not a count (or not 0 without C{newest}).
    """
    if newest is not None:
        _check_count("newest", newest, 1)
    _check_count("skip", skip, 0)
    if newest is None and skip:
        raise ValueError("skip needs newest")


def check_locations_page(after, count) -> None:
    """
    @raise ValueError: C{after} is neither L{None} nor a user name, or
        C{count} is not from 1 to L{LOCATIONS_PAGE}.
    """
    if after is not None:
        check_username(after)
    _check_count("count", count, 1)
    if count > LOCATIONS_PAGE:
        raise ValueError("count is out of range")


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


def checked_offline_marking(usernames, now, silent_before):
    """
    Refuse the arguments of L{IProfileStore.mark_offline
    <suto_server.store.interfaces.IProfileStore.mark_offline>} that the
    store could not keep faithfully, before anything is marked.

    @return: C{usernames} as a L{list}.
    @raise ValueError: a name is invalid, or a time out of bounds.
    """
    usernames = list(usernames)
    for username in usernames:
        check_username(username)
    check_time("now", now)
    if silent_before is not None:
        check_time("silent_before", silent_before)
    return usernames


def checked_move(
    username,
    time,
    old_address,
    new_address,
    old_location_name,
    new_location_name,
    seen,
):
    """
    Refuse a move the store could not keep faithfully, or a compare-and-swap
    it could not make (see L{IProfileStore.record_move}).

    @return: the L{Move} to record.
    @raise ValueError: a field is of the wrong type or out of bounds.
    """
    move = Move(
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
    )
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
    if seen is not None:
        check_address("seen address", seen)
    return move
