"""
The SUTO key schedule: every key a profile ever uses, derived with no I/O.

A profile's keys form a chain.  Enrollment turns the salted password hash
into a I{password secret}, and that secret, the client's random data and
its hardware fingerprint hash into the I{first key}.  Each rotation rolls
the current key forward into the I{next key} with fresh junk data, the
fingerprint hash (which the client never sends again) and an X25519 shared
secret, so that an attacker who copied one key loses track at the next
rotation.  While a client is offline, the I{offline key} ties the last key
to the fingerprint and an approximate time step, like TOTP.  A I{check
proof} shows, without revealing the key, that whoever answers a check
packet holds the profile's current key.

Every derivation is HKDF-SHA256 (RFC 5869) with a label of its own, so no
two derivations can produce the same key from the same inputs, and every
multi-part input goes through L{encode_parts}, which is injective.  Messages
are sealed with ChaCha20-Poly1305 under a subkey of the chain key, with the
profile, purpose, direction and counter bound into the associated data.

Nothing here reads the clock or draws random numbers: callers pass C{now},
random data and X25519 keys in, so every function has test vectors (see
docs/PROTOCOL.md).
"""

from __future__ import annotations

import enum
import hmac
import math

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
#: Size of a check packet's nonce.
CHECK_NONCE_SIZE = 16
#: Size of the proof that answers a check packet.
CHECK_PROOF_SIZE = 16

#: Longest profile name, in UTF-8 bytes.
MAX_PROFILE = 255
#: Longest purpose name, in UTF-8 bytes.
MAX_PURPOSE = 64
#: Longest salted password hash, in UTF-8 bytes (crypt(3) hashes are far
#: shorter; this only bounds the input).
MAX_SALTED_HASH = 512
#: Largest plaintext L{seal} accepts.
MAX_PLAINTEXT = 65536

_UINT32_LIMIT = 2**32
_UINT64_LIMIT = 2**64
_TAG_SIZE = 16

_PASSWORD_SALT = b"suto/v1/password-secret/salt"
_PASSWORD_LABEL = b"suto/v1/password-secret"
_FIRST_KEY_LABEL = b"suto/v1/first-key"
_NEXT_KEY_LABEL = b"suto/v1/next-key"
_OFFLINE_KEY_LABEL = b"suto/v1/offline-key"
_KEY_ID_LABEL = b"suto/v1/key-id"
_SEAL_KEY_LABEL = b"suto/v1/seal-key"
_SEAL_LABEL = b"suto/v1/seal"
_CHECK_KEY_LABEL = b"suto/v1/check-key"
_CHECK_LABEL = b"suto/v1/check"
_RECONNECT_KEY_LABEL = b"suto/v1/reconnect-key"
_RECONNECT_LABEL = b"suto/v1/reconnect"

_CANNOT_OPEN = "the message cannot be opened"


class KeyScheduleError(Exception):
    """
    An input to the key schedule has the wrong type, size or range, or a
    Diffie-Hellman exchange produced no usable secret.
    """


class SealError(KeyScheduleError):
    """
    A sealed message could not be opened.  Deliberately says nothing about
    why (wrong key, tampering, or a message bound to another counter,
    direction, profile or purpose), so a peer learns nothing by probing.
    """


#: Seal purposes of the enrollment conversation (docs/PROTOCOL.md §8):
#: the client's fingerprint hash and random data, and the server's
#: confirmation of the first key.
ENROLL_DATA_PURPOSE = "enroll-data"
ENROLL_CONFIRM_PURPOSE = "enroll-confirm"

#: Seal purposes of one key rotation (docs/PROTOCOL.md §9): the server's
#: success message, the client's acknowledgement, the server's final word.
ROTATE_OK_PURPOSE = "rotate-ok"
ROTATE_ACK_PURPOSE = "rotate-ack"
ROTATE_DONE_PURPOSE = "rotate-done"

#: Seal purposes of a reconnection after an offline spell
#: (docs/PROTOCOL.md §10): the client's junk under its offline key, and the
#: server's confirmation under the same key.
RECONNECT_PURPOSE = "reconnect"
RECONNECT_OK_PURPOSE = "reconnect-ok"

#: The counter each of those messages is sealed at, under its key (the new
#: key of a rotation, the offline key of a reconnection).  Each side
#: numbers its own messages under a key from 0 (§7.5): "ok" is the
#: server's message 0 and "done" its message 1, "ack" the client's message
#: 0; an offline key seals one message each way.  Both keys are new at
#: every rotation or reconnection (their derivations bind the generation or
#: the time step), so the counters restart with them.
SEAL_COUNTERS = {
    ROTATE_OK_PURPOSE: 0,
    ROTATE_ACK_PURPOSE: 0,
    ROTATE_DONE_PURPOSE: 1,
    RECONNECT_PURPOSE: 0,
    RECONNECT_OK_PURPOSE: 0,
}


class Direction(enum.Enum):
    """
    Which way a sealed message travels.  Bound into every seal so a
    message cannot be reflected back to its sender.
    """

    SERVER_TO_CLIENT = "s2c"
    CLIENT_TO_SERVER = "c2s"


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


def _require_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise KeyScheduleError(f"{name} must be {size} bytes")
    return value


def _require_text(name: str, value: object, max_size: int) -> str:
    if not isinstance(value, str):
        raise KeyScheduleError(f"{name} must be a string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise KeyScheduleError(f"{name} is not valid Unicode") from None
    if not 0 < size <= max_size:
        raise KeyScheduleError(f"{name} must be 1 to {max_size} UTF-8 bytes")
    return value


def _uint64(name: str, value: object) -> bytes:
    """
    An unsigned integer as 8 bytes big-endian, for binding counters into
    derivations.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise KeyScheduleError(f"{name} must be an integer")
    if not 0 <= value < _UINT64_LIMIT:
        raise KeyScheduleError(f"{name} must be in [0, 2**64)")
    return value.to_bytes(8, "big")


def _hkdf(*, salt: bytes | None, ikm: bytes, info: bytes, length: int) -> bytes:
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
    _require_text("salted hash", salted_hash, MAX_SALTED_HASH)
    _require_text("profile", profile, MAX_PROFILE)
    return _hkdf(
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
    _require_bytes("random data", random_data, RANDOM_SIZE)
    _require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    _require_bytes("password secret", secret, KEY_SIZE)
    _require_text("profile", profile, MAX_PROFILE)
    return _hkdf(
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
    _require_bytes("current key", current_key, KEY_SIZE)
    _require_bytes("junk", junk, JUNK_SIZE)
    _require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    _require_bytes("shared secret", dh_shared, DH_SIZE)
    _require_text("profile", profile, MAX_PROFILE)
    return _hkdf(
        salt=current_key,
        ikm=encode_parts(junk, fingerprint_hash, dh_shared),
        info=encode_parts(_NEXT_KEY_LABEL, profile, _uint64("generation", generation)),
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
    _require_bytes("peer public key", peer_public, DH_SIZE)
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
    _require_bytes("last key", last_key, KEY_SIZE)
    _require_bytes("fingerprint hash", fingerprint_hash, FINGERPRINT_SIZE)
    _require_text("profile", profile, MAX_PROFILE)
    return _hkdf(
        salt=last_key,
        ikm=encode_parts(fingerprint_hash),
        info=encode_parts(_OFFLINE_KEY_LABEL, profile, _uint64("time step", time_step)),
        length=KEY_SIZE,
    )


def _check_time(now: object, step: object) -> None:
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise KeyScheduleError("now must be a number")
    if not (math.isfinite(now) and now >= 0):
        raise KeyScheduleError("now must be a finite time after the epoch")
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise KeyScheduleError("step must be a positive integer")


def time_step(now: float, step: int = 30) -> int:
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


def candidate_steps(now: float, step: int = 30, window: int = 2) -> list[int]:
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


def key_id(key: bytes) -> str:
    """
    A public name for a chain key (the seed's "session ID"), so logs,
    the store and the wire can refer to a key without revealing it: a
    one-way function of the key under its own label.

    @param key: a chain key.
    @return: L{KEY_ID_SIZE} bytes as lowercase hex.
    @raise KeyScheduleError: C{key} is not L{KEY_SIZE} bytes.
    """
    _require_bytes("key", key, KEY_SIZE)
    return _hkdf(
        salt=None, ikm=key, info=encode_parts(_KEY_ID_LABEL), length=KEY_ID_SIZE
    ).hex()


def check_proof(key: bytes, nonce: bytes, user: str) -> bytes:
    """
    The answer to a check packet: proof that the answering agent holds
    C{key}, bound to the check's C{nonce} (so no answer can be replayed to
    another check) and to the profile (so no other profile's key answers
    for it).

    The MAC key is a subkey of C{key} under its own label, for the same
    reason seals use one: a chain key also serves as an HKDF salt and
    input, and must never key two different constructions.

    @param key: the profile's current chain key.
    @param nonce: the check's L{CHECK_NONCE_SIZE}-byte nonce.
    @param user: the profile being checked.
    @return: L{CHECK_PROOF_SIZE} bytes, HMAC-SHA256 truncated.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    _require_bytes("nonce", nonce, CHECK_NONCE_SIZE)
    return _key_proof(key, _CHECK_KEY_LABEL, _CHECK_LABEL, user, nonce)


def reconnect_proof(key: bytes, user: str, sealed: bytes) -> bytes:
    """
    Proof, sent with a reconnection, that the client holds C{key} itself,
    bound to the profile and to the sealed junk it comes with.  It lets the
    server tell a holder of the key whose offline seal fails (copied state:
    another fingerprint, or a stale time) from someone who only knows the
    key's public id, so only the former can get a profile blacklisted.

    @param key: the last chain key the client agreed on.
    @param user: the profile reconnecting.
    @param sealed: the junk as sealed under the offline key.
    @return: L{CHECK_PROOF_SIZE} bytes, HMAC-SHA256 truncated.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    _require_bytes("sealed", sealed, JUNK_SIZE + _TAG_SIZE)
    return _key_proof(key, _RECONNECT_KEY_LABEL, _RECONNECT_LABEL, user, sealed)


def _key_proof(
    key: bytes, key_label: bytes, label: bytes, user: str, data: bytes
) -> bytes:
    """
    HMAC-SHA256 of C{user} and C{data}, truncated, under a subkey of C{key}
    with its own C{key_label}: a proof of possession of a chain key that
    is never any other construction's output.
    """
    _require_bytes("key", key, KEY_SIZE)
    _require_text("user", user, MAX_PROFILE)
    subkey = _hkdf(salt=None, ikm=key, info=encode_parts(key_label), length=KEY_SIZE)
    mac = hmac.digest(subkey, encode_parts(label, user, data), "sha256")
    return mac[:CHECK_PROOF_SIZE]


def _seal_parameters(
    key: object,
    profile: object,
    purpose: object,
    direction: object,
    counter: object,
) -> tuple[ChaCha20Poly1305, bytes, bytes]:
    """
    The cipher, nonce and associated data of one sealed message.

    The cipher is keyed with a subkey of C{key}, never C{key} itself,
    because chain keys also serve as HKDF salts and inputs.
    """
    _require_bytes("key", key, KEY_SIZE)
    _require_text("profile", profile, MAX_PROFILE)
    _require_text("purpose", purpose, MAX_PURPOSE)
    if not isinstance(direction, Direction):
        raise KeyScheduleError("direction must be a Direction")
    packed_counter = _uint64("counter", counter)
    subkey = _hkdf(
        salt=None, ikm=key, info=encode_parts(_SEAL_KEY_LABEL), length=KEY_SIZE
    )
    tag = direction.value.encode("ascii") + b"\x00"
    nonce = tag + packed_counter
    associated = encode_parts(
        _SEAL_LABEL, profile, purpose, direction.value, packed_counter
    )
    return ChaCha20Poly1305(subkey), nonce, associated


def seal(
    key: bytes,
    plaintext: bytes,
    *,
    profile: str,
    purpose: str,
    direction: Direction,
    counter: int,
) -> bytes:
    """
    Encrypt and authenticate a message with ChaCha20-Poly1305.

    The nonce is derived from C{direction} and C{counter} alone.  That is
    safe only under this invariant, which callers must keep: B{a key never
    seals two messages with the same direction and counter}.  Each side
    counts its own messages per key (a new key starts again at 0), and the
    direction keeps the two sides' counters apart.

    The associated data binds the profile, purpose, direction and counter,
    so a sealed message opens only where it was meant to: not under
    another counter (replay), not in the other direction (reflection), not
    for another profile or purpose.

    @param key: a chain key or the password secret.
    @param plaintext: at most L{MAX_PLAINTEXT} bytes.
    @param profile: the profile the message belongs to.
    @param purpose: what the message is for (e.g. C{"enrollment"}).
    @param direction: which way it travels.
    @param counter: the sender's message number under this key, in
        [0, 2**64).
    @return: the ciphertext followed by the 16-byte tag.
    @raise KeyScheduleError: an input is of the wrong type, size or range.
    """
    if not isinstance(plaintext, bytes) or len(plaintext) > MAX_PLAINTEXT:
        raise KeyScheduleError(f"plaintext must be at most {MAX_PLAINTEXT} bytes")
    cipher, nonce, associated = _seal_parameters(
        key, profile, purpose, direction, counter
    )
    return cipher.encrypt(nonce, plaintext, associated)


def open_sealed(
    key: bytes,
    sealed: bytes,
    *,
    profile: str,
    purpose: str,
    direction: Direction,
    counter: int,
) -> bytes:
    """
    Check and decrypt a message made by L{seal} with the same arguments.

    @return: the plaintext.
    @raise SealError: for every failure, including malformed arguments,
        and never any other exception: the caller has one case to handle
        and the peer learns nothing from which check failed.
    """
    try:
        cipher, nonce, associated = _seal_parameters(
            key, profile, purpose, direction, counter
        )
    except KeyScheduleError:
        raise SealError(_CANNOT_OPEN) from None
    if not isinstance(sealed, bytes) or not (
        _TAG_SIZE <= len(sealed) <= MAX_PLAINTEXT + _TAG_SIZE
    ):
        raise SealError(_CANNOT_OPEN)
    try:
        return cipher.decrypt(nonce, sealed, associated)
    except InvalidTag:
        raise SealError(_CANNOT_OPEN) from None
