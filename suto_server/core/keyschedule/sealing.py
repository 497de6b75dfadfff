# -*- test-case-name: tests.core.test_keyschedule,tests.core.test_vectors -*-
"""
What a chain key protects, each use under a subkey of its own: messages
sealed with ChaCha20-Poly1305 (L{seal}, L{open_sealed}), and proofs that
a peer holds a key without showing it (L{check_proof},
L{reconnect_proof}).

A seal binds the profile, purpose, direction and counter into its
associated data, so a message opens only where it was meant to.  The keys
themselves come from L{suto_server.core.keyschedule.derivation}.
"""

from __future__ import annotations

import enum
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from suto_server.core.keyschedule.derivation import (
    ATTEMPT_NONCE_SIZE,
    JUNK_SIZE,
    KEY_SIZE,
    MAX_PROFILE,
    KeyScheduleError,
    encode_parts,
    hkdf,
    require_bytes,
    require_text,
    uint64,
)

#: Size of a check packet's nonce.
CHECK_NONCE_SIZE = 16
#: Size of the proof that answers a check packet.
CHECK_PROOF_SIZE = 16

#: Longest purpose name, in UTF-8 bytes.
MAX_PURPOSE = 64
#: Largest plaintext L{seal} accepts.
MAX_PLAINTEXT = 65536

#: Size of a seal's authentication tag.
TAG_SIZE = 16

_SEAL_KEY_LABEL = b"suto/v1/seal-key"
_SEAL_LABEL = b"suto/v1/seal"
_CHECK_KEY_LABEL = b"suto/v1/check-key"
_CHECK_LABEL = b"suto/v1/check"
_RECONNECT_KEY_LABEL = b"suto/v1/reconnect-key"
_RECONNECT_LABEL = b"suto/v1/reconnect"
_VERIFY_KEY_LABEL = b"suto/v1/verify-key"
_VERIFY_LABEL = b"suto/v1/verify"

_CANNOT_OPEN = "the message cannot be opened"


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
#: success message, the client's acknowledgement, the server's final word;
#: on a version-3 connection the final word is the server's share for the
#: next rotation, which a primed rotation's acknowledgement (the same
#: "ack") answers.
ROTATE_OK_PURPOSE = "rotate-ok"
ROTATE_ACK_PURPOSE = "rotate-ack"
ROTATE_DONE_PURPOSE = "rotate-done"
ROTATE_DONE_NEXT_PURPOSE = "rotate-done-next"

#: Seal purposes of a reconnection after an offline spell
#: (docs/PROTOCOL.md §10): the client's junk under its offline key, and the
#: server's confirmation under the same key.
RECONNECT_PURPOSE = "reconnect"
RECONNECT_OK_PURPOSE = "reconnect-ok"

#: The counter each of those messages is sealed at, under its key (the new
#: key of a rotation, the offline key of a reconnection).  Each side
#: numbers its own messages under a key from 0 (§7.5): "ok" is the
#: server's message 0 and "done" (or the next share) its message 1, "ack"
#: the client's message 0; a primed rotation seals no "ok", so its new key
#: seals the "ack" and the next share only.  An offline key seals one
#: message each way.  Both keys are new at
#: every rotation or reconnection (their derivations bind the generation or
#: the time step), so the counters restart with them.
SEAL_COUNTERS = {
    ROTATE_OK_PURPOSE: 0,
    ROTATE_ACK_PURPOSE: 0,
    ROTATE_DONE_PURPOSE: 1,
    ROTATE_DONE_NEXT_PURPOSE: 1,
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


#: The way each message of L{SEAL_COUNTERS} travels.
_SEAL_DIRECTIONS = {
    ROTATE_OK_PURPOSE: Direction.SERVER_TO_CLIENT,
    ROTATE_ACK_PURPOSE: Direction.CLIENT_TO_SERVER,
    ROTATE_DONE_PURPOSE: Direction.SERVER_TO_CLIENT,
    ROTATE_DONE_NEXT_PURPOSE: Direction.SERVER_TO_CLIENT,
    RECONNECT_PURPOSE: Direction.CLIENT_TO_SERVER,
    RECONNECT_OK_PURPOSE: Direction.SERVER_TO_CLIENT,
}



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
    require_bytes("nonce", nonce, CHECK_NONCE_SIZE)
    return _key_proof(key, _CHECK_KEY_LABEL, _CHECK_LABEL, user, nonce)


def reconnect_proof(
    key: bytes, user: str, sealed: bytes, nonce: bytes | None = None
) -> bytes:
    """
    Proof, sent with a reconnection, that the client holds C{key} itself,
    bound to the profile, to the attempt's nonce and to the sealed junk it
    comes with.  It lets the server tell a holder of the key whose offline
    seal fails (copied state: another fingerprint, or a stale time) from
    someone who only knows the key's public id, so only the former can get
    a profile blacklisted.

    @param key: the last chain key the client agreed on.
    @param user: the profile reconnecting.
    @param sealed: the junk as sealed under the attempt's key.
    @param nonce: the attempt's nonce; L{None} for the first form of the
        message (C{SUTO_C_RECONNECT_}), which has none.  The MAC input then
        has one part fewer, so the two forms' proofs never coincide.
    @return: L{CHECK_PROOF_SIZE} bytes, HMAC-SHA256 truncated.
    @raise KeyScheduleError: an input is of the wrong type or size.
    """
    require_bytes("sealed", sealed, JUNK_SIZE + TAG_SIZE)
    if nonce is None:
        bound = (sealed,)
    else:
        bound = (require_bytes("attempt nonce", nonce, ATTEMPT_NONCE_SIZE), sealed)
    return _key_proof(key, _RECONNECT_KEY_LABEL, _RECONNECT_LABEL, user, *bound)


def verify_proof(key: bytes, nonce: bytes, user: str) -> bytes:
    """
    The answer to a verification challenge on a live rotation connection
    (docs/PROTOCOL.md §11): L{check_proof}'s construction, arguments and
    result, under labels of its own, so that no check answer,
    reconnection proof or seal can ever serve as one, nor the reverse.
    """
    require_bytes("nonce", nonce, CHECK_NONCE_SIZE)
    return _key_proof(key, _VERIFY_KEY_LABEL, _VERIFY_LABEL, user, nonce)


def _key_proof(
    key: bytes, key_label: bytes, label: bytes, user: str, *data: bytes
) -> bytes:
    """
    HMAC-SHA256 of C{user} and the parts of C{data}, truncated, under a
    subkey of C{key} with its own C{key_label}: a proof of possession of a
    chain key that is never any other construction's output.
    """
    require_bytes("key", key, KEY_SIZE)
    require_text("user", user, MAX_PROFILE)
    subkey = hkdf(salt=None, ikm=key, info=encode_parts(key_label), length=KEY_SIZE)
    mac = hmac.digest(subkey, encode_parts(label, user, *data), "sha256")
    return mac[:CHECK_PROOF_SIZE]


#: The HKDF info of every seal's subkey: one label, encoded once.
_SEAL_KEY_INFO = encode_parts(_SEAL_KEY_LABEL)


def _cipher(key: object) -> ChaCha20Poly1305:
    """
    The cipher that seals under C{key}: keyed with a subkey of C{key},
    never C{key} itself, because chain keys also serve as HKDF salts and
    inputs.
    """
    require_bytes("key", key, KEY_SIZE)
    subkey = hkdf(salt=None, ikm=key, info=_SEAL_KEY_INFO, length=KEY_SIZE)
    return ChaCha20Poly1305(subkey)


def _binding(
    purpose: object, direction: object, counter: object
) -> tuple[bytes, bytes]:
    """
    The nonce of one sealed message, and what its associated data holds
    after the label and the profile (the encoding of several parts is the
    encodings of each, one after the other).
    """
    require_text("purpose", purpose, MAX_PURPOSE)
    if not isinstance(direction, Direction):
        raise KeyScheduleError("direction must be a Direction")
    packed_counter = uint64("counter", counter)
    nonce = direction.value.encode("ascii") + b"\x00" + packed_counter
    return nonce, encode_parts(purpose, direction.value, packed_counter)


#: Each message of L{SEAL_COUNTERS}: its L{_binding}, at the direction
#: and counter its purpose fixes.
_MESSAGE_BINDINGS = {
    purpose: _binding(purpose, _SEAL_DIRECTIONS[purpose], counter)
    for purpose, counter in SEAL_COUNTERS.items()
}


def _seal_parameters(
    key: object,
    profile: object,
    purpose: object,
    direction: object,
    counter: object,
) -> tuple[ChaCha20Poly1305, bytes, bytes]:
    """
    The cipher, nonce and associated data of one sealed message: those of
    a L{SealingKey}, at any direction and counter.
    """
    sealing = SealingKey(key, profile)
    nonce, rest = _binding(purpose, direction, counter)
    return sealing._cipher, nonce, sealing._bound + rest


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
    _check_plaintext(plaintext)
    cipher, nonce, associated = _seal_parameters(
        key, profile, purpose, direction, counter
    )
    return cipher.encrypt(nonce, plaintext, associated)


class SealingKey:
    """
    A key made ready to seal and open the messages of one rotation or
    reconnection of C{profile} (those of L{SEAL_COUNTERS}), each at the
    direction and counter its purpose fixes: the server and the agent both
    name only the purpose, so neither end can seal one of these messages
    at a counter the other does not expect.

    A rotation's new key seals "ok", opens "ack" and seals "done": its
    subkey and cipher are made once, here, rather than for each message,
    and each message's nonce and associated data are those of
    L{_MESSAGE_BINDINGS} after the profile's.  Holds key material: never
    logged.

    @raise KeyScheduleError: C{key} or C{profile} is of the wrong type or
        size.
    """

    __slots__ = ("_cipher", "_profile", "_bound")

    def __init__(self, key: bytes, profile: str) -> None:
        self._cipher = _cipher(key)
        require_text("profile", profile, MAX_PROFILE)
        self._profile = profile
        self._bound = encode_parts(_SEAL_LABEL, profile)

    def __repr__(self) -> str:
        return f"<SealingKey for {self._profile!r}>"

    def _binding(self, purpose: str) -> tuple[bytes, bytes]:
        nonce, rest = _MESSAGE_BINDINGS[purpose]
        return nonce, self._bound + rest

    def seal(self, plaintext: bytes, purpose: str) -> bytes:
        """
        L{seal} C{plaintext} as the message C{purpose} (a key of
        L{SEAL_COUNTERS}).
        """
        _check_plaintext(plaintext)
        nonce, associated = self._binding(purpose)
        return self._cipher.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, purpose: str) -> bytes:
        """
        L{open_sealed} C{sealed}, the message C{purpose}.

        @raise SealError: as L{open_sealed}.
        """
        nonce, associated = self._binding(purpose)
        return _decrypt(self._cipher, nonce, sealed, associated)


def seal_message(key: bytes, plaintext: bytes, *, profile: str, purpose: str) -> bytes:
    """
    L{seal} one message of a rotation or reconnection, at the direction
    and counter its C{purpose} fixes (L{SEAL_COUNTERS}); see
    L{SealingKey}, which seals several under one key.

    @param purpose: a key of L{SEAL_COUNTERS}.
    """
    return SealingKey(key, profile).seal(plaintext, purpose)


def open_message(key: bytes, sealed: bytes, *, profile: str, purpose: str) -> bytes:
    """
    L{open_sealed} a message made by L{seal_message} for C{purpose}.

    @raise SealError: as L{open_sealed}.
    """
    try:
        sealing = SealingKey(key, profile)
    except KeyScheduleError:
        raise SealError(_CANNOT_OPEN) from None
    return sealing.open(sealed, purpose)


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
    return _decrypt(cipher, nonce, sealed, associated)


def _check_plaintext(plaintext: object) -> None:
    if not isinstance(plaintext, bytes) or len(plaintext) > MAX_PLAINTEXT:
        raise KeyScheduleError(f"plaintext must be at most {MAX_PLAINTEXT} bytes")


def _decrypt(
    cipher: ChaCha20Poly1305, nonce: bytes, sealed: object, associated: bytes
) -> bytes:
    """
    Check and decrypt C{sealed}, raising L{SealError} for every failure.
    """
    if not isinstance(sealed, bytes) or not (
        TAG_SIZE <= len(sealed) <= MAX_PLAINTEXT + TAG_SIZE
    ):
        raise SealError(_CANNOT_OPEN)
    try:
        return cipher.decrypt(nonce, sealed, associated)
    except InvalidTag:
        raise SealError(_CANNOT_OPEN) from None
