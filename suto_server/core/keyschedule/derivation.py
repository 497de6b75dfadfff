# -*- test-case-name: tests.core.test_keyschedule,tests.core.test_vectors -*-
"""
The SUTO key schedule's derivations: every key a profile ever uses, made
with no I/O.

A profile's keys form a chain.  Enrollment turns the salted password hash
into a I{password secret}, and that secret, the client's random data and
its hardware fingerprint hash into the I{first key}.  Each rotation rolls
the current key forward into the I{next key} with fresh junk data, the
fingerprint hash (which the client never sends again) and an X25519 shared
secret, so that an attacker who copied one key loses track at the next
rotation.  While a client is offline, the I{offline key} ties the last key
to the fingerprint and an approximate time step, like TOTP.  A key's
public name is its L{key_id}.

Every derivation is HKDF-SHA256 (RFC 5869) with a label of its own, so no
two derivations can produce the same key from the same inputs, and every
multi-part input goes through L{encode_parts}, which is injective.  What a
key then protects (sealed messages and proofs of possession) is in
L{suto_server.core.keyschedule.sealing}, which builds on the checks and
encodings here.

Nothing here reads the clock or draws random numbers: callers pass C{now},
random data and X25519 keys in, so every function has test vectors (see
docs/PROTOCOL.md).
"""

from __future__ import annotations

import hmac
import math

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from suto_server.core.timing import DEFAULT_OFFLINE_STEP, DEFAULT_OFFLINE_WINDOW

#: Size of every chain key, of the password secret and of the seal subkey.
KEY_SIZE = 32
#: Size of the junk data the client sends at each rotation.
JUNK_SIZE = 32
#: Size of the random data the client sends at enrollment.
RANDOM_SIZE = 32
#: Size of a hardware fingerprint hash (SHA-256).
FINGERPRINT_SIZE = 32
#: Size of an X25519 public key and of the shared secret.
DH_SIZE = 32
#: Size of a key identifier, in bytes (it is shown as twice as many hex digits).
KEY_ID_SIZE = 16
#: Size of the random nonce a client draws for each reconnection attempt.
ATTEMPT_NONCE_SIZE = 16

#: Longest profile name, in UTF-8 bytes.
MAX_PROFILE = 255
#: Longest salted password hash, in UTF-8 bytes (crypt(3) hashes are far
#: shorter; this only bounds the input).
MAX_SALTED_HASH = 512

_UINT32_LIMIT = 2**32
_UINT64_LIMIT = 2**64

_PASSWORD_SALT = b"suto/v1/password-secret/salt"
_PASSWORD_LABEL = b"suto/v1/password-secret"
_FIRST_KEY_LABEL = b"suto/v1/first-key"
_NEXT_KEY_LABEL = b"suto/v1/next-key"
_OFFLINE_KEY_LABEL = b"suto/v1/offline-key"
_KEY_ID_LABEL = b"suto/v1/key-id"
_ATTEMPT_KEY_LABEL = b"suto/v1/reconnect-attempt"


class KeyScheduleError(Exception):
    """
    An input to the key schedule has the wrong type, size or range, or a
    Diffie-Hellman exchange produced no usable secret.
    """



def encode_parts(*parts: bytes | str) -> bytes:
    """
    The canonical encoding of a sequence of byte strings: each part as a
    4-byte big-endian length followed by its bytes; a L{str} part is its
    UTF-8 encoding.

    Length prefixes make the encoding injective: no two different
    sequences of parts encode to the same bytes, so concatenated inputs
    can never be re-split into a different meaning.

    @param parts: L{bytes} or L{str} values, each shorter than 2**32 bytes.
    @return: the encoding.
    @raise KeyScheduleError: a part is of another type, is a string that
        cannot be encoded as UTF-8, or is too long.
    """
    encoded = []
    for part in parts:
        if isinstance(part, str):
            try:
                part = part.encode("utf-8")
            except UnicodeEncodeError:
                raise KeyScheduleError("a text part is not valid Unicode") from None
        elif not isinstance(part, bytes):
            raise KeyScheduleError("a part must be bytes or str")
        if len(part) >= _UINT32_LIMIT:
            raise KeyScheduleError("a part is too long to encode")
        encoded.append(len(part).to_bytes(4, "big"))
        encoded.append(part)
    return b"".join(encoded)


def require_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise KeyScheduleError(f"{name} must be {size} bytes")
    return value


def require_text(name: str, value: object, max_size: int) -> str:
    if not isinstance(value, str):
        raise KeyScheduleError(f"{name} must be a string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise KeyScheduleError(f"{name} is not valid Unicode") from None
    if not 0 < size <= max_size:
        raise KeyScheduleError(f"{name} must be 1 to {max_size} UTF-8 bytes")
    return value


def uint64(name: str, value: object) -> bytes:
    """
    An unsigned integer as 8 bytes big-endian, for binding counters into
    derivations.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise KeyScheduleError(f"{name} must be an integer")
    if not 0 <= value < _UINT64_LIMIT:
        raise KeyScheduleError(f"{name} must be in [0, 2**64)")
    return value.to_bytes(8, "big")


def hkdf(*, salt: bytes | None, ikm: bytes, info: bytes, length: int) -> bytes:
    """
    HKDF-SHA256; a salt of L{None} is RFC 5869's absent salt (32 zero
    bytes), used where the input key material is already a uniform key.
    """
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=salt, info=info
    ).derive(ikm)


def password_secret(salted_hash: str, profile: str) -> bytes:
    """
    The secret client and server share once the salted challenge has
    passed: both hold C{crypt(password, salt)}, the client because it
    computed it, the server because it stores it.  It seals the enrollment
    payload and is the salt of the first key.

    @param salted_hash: the salted password hash, e.g. C{"$6$salt$..."}.
    @param profile: the profile being enrolled.
    @return: L{KEY_SIZE} bytes.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    require_text("salted hash", salted_hash, MAX_SALTED_HASH)
    require_text("profile", profile, MAX_PROFILE)
    return hkdf(
        salt=_PASSWORD_SALT,
        ikm=salted_hash.encode("utf-8"),
        info=encode_parts(_PASSWORD_LABEL, profile),
        length=KEY_SIZE,
    )


def first_key(
    random_data: bytes, fingerprint_hash: bytes, secret: bytes, profile: str
) -> bytes:
    """
    The first chain key of a profile, from what the client sent at
    enrollment (its random data and fingerprint hash) keyed by the password
    secret, so that neither the payload alone nor the password alone yields
    the key.

    @param random_data: L{RANDOM_SIZE} bytes the client drew.
    @param fingerprint_hash: the client's L{FINGERPRINT_SIZE}-byte hash.
    @param secret: the result of L{password_secret}.
    @param profile: the profile being enrolled.
    @return: L{KEY_SIZE} bytes, key generation 0.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    require_bytes("random data", random_data, RANDOM_SIZE)
    require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    require_bytes("password secret", secret, KEY_SIZE)
    require_text("profile", profile, MAX_PROFILE)
    return hkdf(
        salt=secret,
        ikm=encode_parts(random_data, fingerprint_hash),
        info=encode_parts(_FIRST_KEY_LABEL, profile),
        length=KEY_SIZE,
    )


def next_key(
    current_key: bytes,
    junk: bytes,
    fingerprint_hash: bytes,
    dh_shared: bytes,
    profile: str,
    generation: int,
) -> bytes:
    """
    Roll a chain key forward.

    The junk and the current key are what the seed's design relies on; the
    fingerprint hash ties the new key to the enrolled machine (the client
    recomputes it and never sends it); the X25519 shared secret is what
    makes the chain heal: someone who copied the current key but did not
    take part in this exchange cannot derive the next one.

    @param current_key: the key being replaced.
    @param junk: L{JUNK_SIZE} bytes the client drew for this rotation.
    @param fingerprint_hash: the enrolled L{FINGERPRINT_SIZE}-byte hash.
    @param dh_shared: the result of L{dh_shared_secret} for this rotation.
    @param profile: the profile whose key this is.
    @param generation: the generation number of the key being derived
        (the first key is generation 0, so the first rotation passes 1),
        in [0, 2**64).
    @return: L{KEY_SIZE} bytes.
    @raise KeyScheduleError: an input is of the wrong type, size or range.
    """
    require_bytes("current key", current_key, KEY_SIZE)
    require_bytes("junk", junk, JUNK_SIZE)
    require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    require_bytes("shared secret", dh_shared, DH_SIZE)
    require_text("profile", profile, MAX_PROFILE)
    return hkdf(
        salt=current_key,
        ikm=encode_parts(junk, fingerprint_hash, dh_shared),
        info=encode_parts(_NEXT_KEY_LABEL, profile, uint64("generation", generation)),
        length=KEY_SIZE,
    )


def dh_shared_secret(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    """
    The X25519 shared secret with a peer's raw public key.

    A low-order peer key forces an all-zero result that anyone can
    predict; it is refused, whether the backend reports it or returns the
    zeros.

    @param private: our private key for this rotation.
    @param peer_public: the peer's L{DH_SIZE}-byte raw public key.
    @return: L{DH_SIZE} bytes.
    @raise KeyScheduleError: C{private} is not an X25519 key, the public
        key is malformed, or the exchange gives no usable secret.
    """
    if not isinstance(private, X25519PrivateKey):
        raise KeyScheduleError("private must be an X25519 private key")
    require_bytes("peer public key", peer_public, DH_SIZE)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise KeyScheduleError("the peer's public key gives no shared secret") from None
    if hmac.compare_digest(shared, bytes(DH_SIZE)):
        raise KeyScheduleError("the peer's public key gives no shared secret")
    return shared


def offline_key(
    last_key: bytes, fingerprint_hash: bytes, time_step: int, profile: str
) -> bytes:
    """
    The offline rolling authenticator: a key both sides can compute
    without talking, from the last agreed key, the machine's fingerprint
    and the current time step.  Copied credentials alone do not give it
    (the fingerprint is not stored with them), and it changes every step.

    @param last_key: the last chain key both sides agreed on.
    @param fingerprint_hash: the enrolled L{FINGERPRINT_SIZE}-byte hash.
    @param time_step: a step from L{time_step} or L{candidate_steps}.
    @param profile: the profile whose key this is.
    @return: L{KEY_SIZE} bytes.
    @raise KeyScheduleError: an input is of the wrong type, size or range.
    """
    require_bytes("last key", last_key, KEY_SIZE)
    require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    require_text("profile", profile, MAX_PROFILE)
    return hkdf(
        salt=last_key,
        ikm=encode_parts(fingerprint_hash),
        info=encode_parts(_OFFLINE_KEY_LABEL, profile, uint64("time step", time_step)),
        length=KEY_SIZE,
    )


def attempt_key(offline_key: bytes, nonce: bytes, profile: str) -> bytes:
    """
    The key of one reconnection attempt: a fresh key for every attempt,
    even within one time step, so that the offline key itself never seals
    anything and a retry never reuses a seal's nonce and counter (a key
    seals one message per direction, at counter 0).

    @param offline_key: from L{offline_key}.
    @param nonce: the attempt's L{ATTEMPT_NONCE_SIZE} random bytes, which
        the client sends with it.
    @param profile: the profile reconnecting.
    @return: L{KEY_SIZE} bytes.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    require_bytes("offline key", offline_key, KEY_SIZE)
    require_bytes("attempt nonce", nonce, ATTEMPT_NONCE_SIZE)
    require_text("profile", profile, MAX_PROFILE)
    return hkdf(
        salt=offline_key,
        ikm=encode_parts(nonce),
        info=encode_parts(_ATTEMPT_KEY_LABEL, profile),
        length=KEY_SIZE,
    )


def _check_time(now: object, step: object) -> None:
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise KeyScheduleError("now must be a number")
    if not (math.isfinite(now) and now >= 0):
        raise KeyScheduleError("now must be a finite time after the epoch")
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise KeyScheduleError("step must be a positive integer")


def time_step(now: float, step: int = DEFAULT_OFFLINE_STEP) -> int:
    """
    The time step C{now} falls in, C{floor(now / step)}, as TOTP counts.

    @param now: POSIX time, passed in so nothing here reads the clock.
    @param step: the step length in seconds.
    @return: the step number.
    @raise KeyScheduleError: C{now} is negative or not finite, or C{step}
        is not a positive integer.
    """
    _check_time(now, step)
    return int(now // step)


def candidate_steps(
    now: float,
    step: int = DEFAULT_OFFLINE_STEP,
    window: int = DEFAULT_OFFLINE_WINDOW,
) -> list[int]:
    """
    The steps to try when checking an offline key made on a clock that may
    disagree with ours: the current step and up to C{window} on each side,
    ordered by how far C{now} is from each step's interval, so the likely
    match is tried first.  A tie goes to the earlier step.  Steps before
    the epoch are left out.

    @param now: POSIX time.
    @param step: the step length in seconds.
    @param window: how many steps either side to allow.
    @return: the step numbers, nearest first.
    @raise KeyScheduleError: as L{time_step}, or C{window} is not a
        non-negative integer.
    """
    current = time_step(now, step)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise KeyScheduleError("window must be a non-negative integer")

    def distance(candidate: int) -> float:
        if candidate < current:
            return now - (candidate + 1) * step
        if candidate > current:
            return candidate * step - now
        return 0

    candidates = range(max(0, current - window), current + window + 1)
    return sorted(candidates, key=lambda candidate: (distance(candidate), candidate))


#: The HKDF info of every key id: one label, encoded once.
_KEY_ID_INFO = encode_parts(_KEY_ID_LABEL)


def key_id(key: bytes) -> str:
    """
    A public name for a chain key (the seed's "session ID"), so logs,
    the store and the wire can refer to a key without revealing it: a
    one-way function of the key under its own label.

    @param key: a chain key.
    @return: L{KEY_ID_SIZE} bytes as lowercase hex.
    @raise KeyScheduleError: C{key} is not L{KEY_SIZE} bytes.
    """
    require_bytes("key", key, KEY_SIZE)
    return hkdf(salt=None, ikm=key, info=_KEY_ID_INFO, length=KEY_ID_SIZE).hex()

