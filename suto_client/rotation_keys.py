# -*- test-case-name: tests.client.test_rotation_keys -*-
"""
What the agent seals and opens in key rotation and reconnection
(docs/PROTOCOL.md §7.5, §9.2 and §10.2), as plain functions of the key
schedule, so that L{suto_client.rotation_machine} says only in what order
they happen and what each outcome means.

Nothing here keeps state or draws randomness of its own: the machine
passes in the fresh junk and key pair it drew, the fingerprint it
recomputed and the keys it holds.  Each key that seals or opens messages
(a rotation's new key: "ok", "ack" and "done", or in a primed rotation
"ack" and the server's next share; a reconnection attempt's key: its junk
and the server's answer) is held as one
L{keyschedule.SealingKey}, as the server holds it, so that its seal
subkey and cipher are made once rather than for every message.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)

from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire

_OK = b"ok"
_ACK = b"ack"
_DONE = b"done"


@dataclass(frozen=True)
class Pending:
    """
    This side's fresh material for the rotation under way.
    """

    junk: bytes = field(repr=False)
    private: X25519PrivateKey = field(repr=False)

    @classmethod
    def draw(cls, random_bytes: Callable[[int], bytes]) -> Pending:
        """
        Fresh junk, then a fresh X25519 key pair, from C{random_bytes}.
        """
        junk = random_bytes(keyschedule.JUNK_SIZE)
        private = X25519PrivateKey.from_private_bytes(
            random_bytes(keyschedule.DH_SIZE)
        )
        return cls(junk, private)

    @property
    def public(self) -> bytes:
        """
        The raw X25519 public key of this side's fresh pair.
        """
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def rotate(self, profile: EnrolledProfile) -> wire.Rotate:
        """
        The C{SUTO_C_ROTATE_} that offers this material for C{profile}.
        """
        return wire.Rotate(profile.key_id, self.junk, self.public, profile.user)


def reconnection(
    profile: EnrolledProfile,
    fingerprint_hash: bytes,
    server_time: int,
    step_length: int,
    junk: bytes,
    nonce: bytes,
) -> tuple[keyschedule.SealingKey, wire.Reconnect]:
    """
    Derive the key of this reconnection attempt, from the offline key of
    C{profile} for the server's time step and the attempt's fresh C{nonce},
    and seal C{junk} under it.  A new nonce for every attempt gives every
    attempt its own key, so a retry within one time step never seals
    under a key that sealed before (docs/PROTOCOL.md §7.5).

    @return: the attempt's key, which opens the server's answer
        (L{welcomed}), and the C{SUTO_C_RECONNECT_N_} to send.
    """
    user = profile.user
    step = keyschedule.time_step(server_time, step_length)
    attempt = keyschedule.SealingKey(
        keyschedule.attempt_key(
            keyschedule.offline_key(profile.key, fingerprint_hash, step, user),
            nonce,
            user,
        ),
        user,
    )
    sealed = attempt.seal(junk, keyschedule.RECONNECT_PURPOSE)
    message = wire.Reconnect(
        profile.key_id,
        keyschedule.reconnect_proof(profile.key, user, sealed, nonce),
        sealed,
        user,
        nonce,
    )
    return attempt, message


def welcomed(attempt: keyschedule.SealingKey, sealed: bytes) -> bool:
    """
    Does the server's reconnection answer open under the C{attempt}'s key?
    """
    return _opens_to(attempt, sealed, _OK, keyschedule.RECONNECT_OK_PURPOSE)


def next_key(
    profile: EnrolledProfile,
    pending: Pending,
    fingerprint_hash: bytes,
    server_public: bytes,
) -> bytes:
    """
    The key that follows C{profile}'s, from this side's C{pending}
    material and the server's half.

    @raise keyschedule.KeyScheduleError: the server's half is unusable.
    """
    shared = keyschedule.dh_shared_secret(pending.private, server_public)
    return keyschedule.next_key(
        profile.key,
        pending.junk,
        fingerprint_hash,
        shared,
        profile.user,
        profile.generation + 1,
    )


def opens_ok(new: keyschedule.SealingKey, sealed: bytes) -> bool:
    """
    Does the server's "ok" open under C{new}, the derived next key?
    """
    return _opens_to(new, sealed, _OK, keyschedule.ROTATE_OK_PURPOSE)


def acknowledgement(new: keyschedule.SealingKey) -> wire.RotateAck:
    """
    The C{SUTO_C_ROTATE_ACK_} that says this side derived C{new} too.
    """
    return wire.RotateAck(new.seal(_ACK, keyschedule.ROTATE_ACK_PURPOSE))


def confirms(new: keyschedule.SealingKey, sealed: bytes) -> bool:
    """
    Does the server's "done" open under C{new}, the new key?
    """
    return _opens_to(new, sealed, _DONE, keyschedule.ROTATE_DONE_PURPOSE)


def next_share(new: keyschedule.SealingKey, sealed: bytes) -> bytes | None:
    """
    The server's share for the next rotation, from its "done" on a
    version-3 connection (C{SUTO_ROTATE_DONE_NEXT_}), which confirms
    C{new} as "done" does.

    @return: the share's raw X25519 public key, or L{None} when C{sealed}
        does not open under C{new}.
    """
    return _opened(new, sealed, keyschedule.ROTATE_DONE_NEXT_PURPOSE)


def primed_rotation(
    profile: EnrolledProfile,
    pending: Pending,
    fingerprint_hash: bytes,
    server_share: bytes,
) -> tuple[bytes, keyschedule.SealingKey, wire.RotatePrimed]:
    """
    A rotation of C{profile} from the server's C{server_share} of the last
    "done": the new key is derived at once, exactly as L{next_key} derives
    it from a C{SUTO_ROTATE_OK_}, and the acknowledgement of the
    two-message form (L{acknowledgement}) travels in the first message.

    @return: the new key, the same held to open the server's answer, and
        the C{SUTO_C_ROTATE_PRIMED_} to send.
    @raise keyschedule.KeyScheduleError: the share is unusable.
    """
    key = next_key(profile, pending, fingerprint_hash, server_share)
    new = keyschedule.SealingKey(key, profile.user)
    message = wire.RotatePrimed(
        profile.key_id,
        pending.junk,
        pending.public,
        acknowledgement(new).sealed,
        profile.user,
    )
    return key, new, message


def _opened(
    sealing: keyschedule.SealingKey, sealed: bytes, purpose: str
) -> bytes | None:
    """
    C{sealed}, the server's rotation or reconnection message for
    C{purpose}, opened under C{sealing}; L{None} if it does not open.
    """
    try:
        return sealing.open(sealed, purpose)
    except keyschedule.SealError:
        return None


def _opens_to(
    sealing: keyschedule.SealingKey, sealed: bytes, expected: bytes, purpose: str
) -> bool:
    """
    Does C{sealed}, the server's rotation or reconnection message for
    C{purpose}, open under C{sealing} to C{expected}?
    """
    plaintext = _opened(sealing, sealed, purpose)
    return plaintext is not None and hmac.compare_digest(plaintext, expected)
