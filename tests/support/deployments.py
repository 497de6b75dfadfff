"""
A deployment with rows in every table of the store, written through the
store's own interfaces, for the tests that move whole stores: accounts
of two schemes, windows open and half-used, profiles enrolled, rotated
(with a previous key held, and keys retired), moved, offline, reconnected
and blacklisted, and an audit log.
"""

from dataclasses import astuple

from passlib.hash import sha256_crypt

from suto_server.store.records import AuditEvent, BlacklistEntry
from tests.support.store_suite.values import (
    HASH,
    MOVE,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
    profile_for,
    window_for,
)

#: An account's hash of another scheme, with rounds of its own.
ROUNDS_HASH = sha256_crypt.using(rounds=6000).hash("pw")


def _enroll(store, username, **changes):
    """
    Open a window for C{username} and use it up with a profile whose key
    is the one numbered 0.
    """
    store.open_window(window_for(username))
    store.complete_enrollment(
        profile_for(
            username,
            key_id=numbered_key_id(0),
            key_sealed=numbered_seal(0),
            **changes,
        )
    )


def populate(store):
    """
    Fill C{store} with a deployment touching every table.
    """
    store.add_user("alice", HASH, 1000.0)
    store.add_user("carol", ROUNDS_HASH, 1001.5)
    store.set_password_hash("carol", HASH, 1002.0)
    store.open_window(window_for("dave", location_name=None))
    store.open_window(window_for("erin", replace=True))
    store.record_failed_attempt("erin")
    _enroll(store, "alice")
    _enroll(store, "bob", location_name=None)
    _enroll(store, "frank")
    store.commit_rotations(
        [
            numbered_rotation("alice", 0, 1, 2000.0),
            numbered_rotation(
                "alice", 1, 2, 2100.0, offline_step=70, attempt_nonce=bytes(range(16))
            ),
            numbered_rotation("frank", 0, 1, 2200.0),
        ]
    )
    store.confirm_current("frank", numbered_key_id(1), 2300.0, "10.2.3.50")
    store.record_rotation_failure("bob")
    # Alice's rotations set her address (numbered_rotation's) before she moved.
    store.record_move(*astuple(MOVE), seen=numbered_rotation("alice", 1, 2, 0).address)
    store.record_move("bob", 3100.0, "10.2.3.17", "10.9.0.5", None, None)
    store.mark_offline(["bob"], 4000.0)
    store.add_to_blacklist(
        BlacklistEntry(
            username="frank",
            time=5000.0,
            reason="a copy of the key chain came back",
            source="10.9.0.4",
            alert="clone_suspected",
        )
    )
    store.append_audits(
        [
            AuditEvent(
                time=1000.0 + number,
                event="rotation",
                username="alice" if number % 2 else None,
                source="10.2.3.17" if number % 3 else None,
                reason=f"reason {number}",
                locations=("lab-east", "bldg2") if number % 2 else (),
            )
            for number in range(7)
        ]
    )
