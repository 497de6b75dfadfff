"""
The values the store suites store, shared by every concept's tests and by
the other tests that need a window, a profile or a rotation.
"""

from dataclasses import replace

from passlib.hash import sha512_crypt

from suto_server.store.records import (
    AuditEvent,
    BlacklistEntry,
    EnrollmentWindow,
    Move,
    Profile,
    RotationCommit,
)

# Real hashes, made once: hashing is slow and the tests only store them.
_SHA512 = sha512_crypt.using(rounds=5000)

HASH = _SHA512.hash("pw")

OTHER_HASH = _SHA512.hash("other")

HASH_SCHEME = "sha512_crypt"


# Empty, plain text, locked, traditional DES, an unknown scheme, a setting
# without its digest, a cost above the limit, not a str.
UNSUPPORTED_HASHES = [
    "",
    "pw",
    "*",
    "!" + HASH,
    "abJnggxhB/yWI",
    "$99$salt$checksum",
    HASH[: HASH.rindex("$")],
    "$6$rounds=999999999$salt$" + HASH[-86:],
    None,
]

BAD_NAMES = [
    "",
    "-alice",
    "a" * 65,
    "al ice",
    "alice\n",
    "al/ice",
    "al:ice",
    "al@ice",
    "\u00e5lice",
    b"alice",
    None,
    7,
]

EDGE_NAMES = ["a", "a" * 64, "_", ".x", "x-", "A.b_c-9"]


def not_refused(error, call, values):
    """
    @return: those of C{values} for which C{call(value)} did not raise
        C{error}, so that a failing test names every value let through.
    """
    accepted = []
    for value in values:
        try:
            call(value)
        except error:
            continue
        accepted.append(value)
    return accepted


WINDOW = EnrollmentWindow(
    username="alice",
    otp_hash=HASH,
    networks=("10.2.3.0/24", "2001:db8:9::/64"),
    location_name="lab-east",
    opened_at=1000.0,
    deadline=1900.0,
    attempts=0,
    max_attempts=5,
    replace=False,
)

PROFILE = Profile(
    username="alice",
    fingerprint_hash=bytes(range(32)),
    key_sealed=bytes(range(100, 160)),
    key_id="0123456789abcdef" * 2,
    generation=0,
    enrolled_at=1200.5,
    location="10.2.3.17",
    location_name="lab-east",
)

AUDIT = AuditEvent(
    time=1000.0,
    event="enrollment_failed",
    username="alice",
    source="10.2.3.17",
    reason="wrong_location",
)


def window_for(username, **changes):
    """
    @return: L{WINDOW} for C{username}, with C{changes}.
    """
    return replace(WINDOW, username=username, **changes)


def profile_for(username, **changes):
    """
    @return: L{PROFILE} for C{username}, with C{changes}.
    """
    return replace(PROFILE, username=username, **changes)


def numbered_key_id(number):
    """
    @return: a key id, different for every C{number}.
    """
    return f"{number:032x}"


def numbered_seal(number):
    """
    @return: a sealed key standing for the key numbered C{number}.
    """
    return b"sealed-%d" % (number,)


def enroll_numbered(store, username, replacing=False):
    """
    Open a window for C{username} and complete it with key number 0.
    """
    store.open_window(window_for(username, replace=replacing))
    store.complete_enrollment(
        profile_for(username, key_sealed=numbered_seal(0), key_id=numbered_key_id(0))
    )


def numbered_rotation(username, old, new, now, **changes):
    """
    @return: a L{RotationCommit} of C{username}'s profile from the key of
        number C{old} at generation C{old} to the key of number C{new},
        with C{changes}.
    """
    commit = RotationCommit(
        username=username,
        expected_key_id=numbered_key_id(old),
        new_key_sealed=numbered_seal(new),
        new_key_id=numbered_key_id(new),
        new_generation=old + 1,
        now=now,
        address="10.2.3.99",
    )
    return replace(commit, **changes)


MOVE = Move(
    username="alice",
    time=3000.0,
    old_address="10.2.3.17",
    new_address="10.9.0.4",
    old_location_name="bldg2-f3-jack17",
    new_location_name="lab-east",
)

BLACKLISTED = BlacklistEntry(
    username="alice",
    time=5000.0,
    reason="the reconnection did not open under the offline key",
    source="10.9.0.4",
    alert="reconnect_failed",
)
