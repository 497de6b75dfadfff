# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres -*-
"""
How the store's records map to the rows of its tables, for every SQL
store: the columns each table is read and written by, in order, and the
conversions between a record and a row.

The SQLite and PostgreSQL stores keep the same tables with the same
columns, so they share these.  A list (a window's networks, an audit record's
locations) is kept as one text column, joined by a separator that no
accepted value contains.
"""

from suto_server.store.records import AuditEvent, EnrollmentWindow, Profile

# No network in CIDR notation contains this.
_NETWORK_SEPARATOR = ","

# The store accepts only printable locations, and a line break is not.
_LOCATION_SEPARATOR = "\n"

WINDOW_COLUMNS = (
    "username, otp_hash, networks, location_name, opened_at, deadline,"
    " attempts, max_attempts, replace_profile"
)

PROFILE_COLUMNS = (
    "username, fingerprint_hash, key_sealed, key_id, generation,"
    " enrolled_at, location, location_name, previous_key_sealed,"
    " previous_key_id, current_confirmed, rotated_at, last_seen,"
    " last_address, rotation_failures"
)

AUDIT_COLUMNS = (
    "time, event, username, source, reason, locations, previous_hash, hash"
)

MOVE_COLUMNS = (
    "username, time, old_address, new_address, old_location_name,"
    " new_location_name"
)

BLACKLIST_COLUMNS = "username, time, reason, source, alert"


def placeholders(columns):
    """
    @param columns: one of the column lists above.
    @return: the parameter marks of a row of C{columns}, joined by commas.
    """
    return ", ".join(["?"] * len(columns.split(",")))


def window_row(window):
    """
    @return: the C{windows} row of C{window}, in L{WINDOW_COLUMNS} order.
    """
    return (
        window.username,
        window.otp_hash,
        _NETWORK_SEPARATOR.join(window.networks),
        window.location_name,
        window.opened_at,
        window.deadline,
        window.attempts,
        window.max_attempts,
        int(window.replace),
    )


def window_from_row(row):
    """
    @return: the L{EnrollmentWindow} a C{windows} row read with
        L{WINDOW_COLUMNS} holds.
    """
    (
        username,
        otp_hash,
        networks,
        location_name,
        opened_at,
        deadline,
        attempts,
        max_attempts,
        replace_profile,
    ) = row
    return EnrollmentWindow(
        username=username,
        otp_hash=otp_hash,
        networks=tuple(networks.split(_NETWORK_SEPARATOR)),
        location_name=location_name,
        opened_at=opened_at,
        deadline=deadline,
        attempts=attempts,
        max_attempts=max_attempts,
        replace=bool(replace_profile),
    )


def profile_row(profile):
    """
    @return: the C{profiles} row of C{profile}, in L{PROFILE_COLUMNS}
        order.
    """
    return (
        profile.username,
        profile.fingerprint_hash,
        profile.key_sealed,
        profile.key_id,
        profile.generation,
        profile.enrolled_at,
        profile.location,
        profile.location_name,
        profile.previous_key_sealed,
        profile.previous_key_id,
        int(profile.current_confirmed),
        profile.rotated_at,
        profile.last_seen,
        profile.last_address,
        profile.rotation_failures,
    )


def profile_from_row(row):
    """
    @return: the L{Profile} a C{profiles} row read with L{PROFILE_COLUMNS}
        holds.
    """
    (
        username,
        fingerprint_hash,
        key_sealed,
        key_id,
        generation,
        enrolled_at,
        location,
        location_name,
        previous_key_sealed,
        previous_key_id,
        current_confirmed,
        rotated_at,
        last_seen,
        last_address,
        rotation_failures,
    ) = row
    return Profile(
        username=username,
        fingerprint_hash=fingerprint_hash,
        key_sealed=key_sealed,
        key_id=key_id,
        generation=generation,
        enrolled_at=enrolled_at,
        location=location,
        location_name=location_name,
        previous_key_sealed=previous_key_sealed,
        previous_key_id=previous_key_id,
        current_confirmed=bool(current_confirmed),
        rotated_at=rotated_at,
        last_seen=last_seen,
        last_address=last_address,
        rotation_failures=rotation_failures,
    )


def locations_from_text(text):
    """
    @return: the locations an audit record's C{locations} column holds.
    """
    return tuple(text.split(_LOCATION_SEPARATOR)) if text else ()


def audit_row(event):
    """
    @return: the C{audit} row of a chained C{event}, in L{AUDIT_COLUMNS}
        order.
    """
    return (
        event.time,
        event.event,
        event.username,
        event.source,
        event.reason,
        _LOCATION_SEPARATOR.join(event.locations),
        event.previous_hash,
        event.hash,
    )


def audit_from_row(row):
    """
    @return: the L{AuditEvent} an C{audit} row read with L{AUDIT_COLUMNS}
        holds.
    """
    time, event, username, source, reason, locations, previous, hash_ = row
    return AuditEvent(
        time=time,
        event=event,
        username=username,
        source=source,
        reason=reason,
        locations=locations_from_text(locations),
        previous_hash=previous,
        hash=hash_,
    )
