# -*- test-case-name: tests.core.test_wire -*-
"""
The typed SUTO messages that travel on a TCP connection.

Messages are frozen dataclasses that check their fields against the
grammar when built, so an invalid message can neither be decoded nor
encoded.  Those that carry a final hash, sealed data, junk or a proof keep
those bytes out of C{repr()}, so that logging a message leaks nothing a
password could be guessed against offline.

The UDP datagrams (hellos and check packets) are in
L{suto_server.core.wire.datagram}, with their codec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from suto_server.core.wire import grammar
from suto_server.core.wire.errors import ERROR_BAD_FIELD, ProtocolError
from suto_server.core.wire.grammar import can_enroll, require

PROTOCOL_VERSION = 3
"""
The version a framed peer announces in C{SUTO_VERSION_<n>}: version 2 and
the primed rotation (L{RotatePrimed}, L{RotateDoneNext}).
"""

PROTOCOL_VERSIONS = (2, PROTOCOL_VERSION)
"""
Every version this release speaks.  The server echoes whichever of them
the device announces, so agents of the release before keep rotating in
two round trips (version 2 is version 3 without the primed rotation).
"""

PRIMED_SINCE = 3
"""
The first version whose rotations are primed: the server's "done" carries
its share for the next rotation (L{RotateDoneNext}), which the agent's
next rotation (L{RotatePrimed}) uses.  Both sides decide by it.
"""


@dataclass(frozen=True, slots=True)
class GetSaltA:
    """
    C{SUTO_C_GET_SALTA}: the client asks for the password salt and a random
    salt.
    """


@dataclass(frozen=True, slots=True)
class GetRSalt:
    """
    C{SUTO_C_GET_RSALT}: the client, which knows the password salt, asks
    for a random salt only.
    """


@dataclass(frozen=True, slots=True)
class SaltA:
    """
    C{SUTO_SALTA_<salt>_<rsalt>}: the password setting (the shadow entry up
    to its last C{$}) and a fresh random salt.
    """

    salt: str
    rsalt: str

    def __post_init__(self) -> None:
        require(self.salt, grammar.SALT)
        require(self.rsalt, grammar.RSALT)


@dataclass(frozen=True, slots=True)
class RSalt:
    """
    C{SUTO_RSALT_<rsalt>}: a fresh random salt, C{$6$} and 16 characters.
    """

    rsalt: str

    def __post_init__(self) -> None:
        require(self.rsalt, grammar.RSALT)


@dataclass(frozen=True, slots=True)
class CFHash:
    """
    C{SUTO_CF_HASH_<hash>}: the client's final hash,
    C{crypt(crypt(password, salt), rsalt)}.  It is kept out of C{repr()}
    so that logging the message cannot leak it.
    """

    hash: str = field(repr=False)

    def __post_init__(self) -> None:
        require(self.hash, grammar.HASH)


@dataclass(frozen=True, slots=True)
class Auth:
    """
    C{SUTO_AUTH_1} or C{SUTO_AUTH_0}: the verdict.
    """

    ok: bool

    def __post_init__(self) -> None:
        if type(self.ok) is not bool:
            raise ProtocolError(ERROR_BAD_FIELD, "invalid verdict")


@dataclass(frozen=True, slots=True)
class AuthCancelled:
    """
    C{SUTO_AUTH_CANCELLED}: the person declined on the device.
    """


@dataclass(frozen=True, slots=True)
class Version:
    """
    C{SUTO_VERSION_<n>}: the framed protocol's version exchange.
    """

    version: int

    def __post_init__(self) -> None:
        require(self.version, grammar.VERSION)


@dataclass(frozen=True, slots=True)
class Error:
    """
    C{SUTO_ERROR_<CODE>}: why a framed server is closing the connection.
    """

    code: str

    def __post_init__(self) -> None:
        require(self.code, grammar.CODE)


# The message fields whose bytes C{repr()} replaces with their length.
_HIDDEN_IN_REPR = frozenset({"junk", "sealed", "proof"})


class _HiddenBytesRepr:
    """
    Shows the length of a message's C{sealed} bytes and rotation C{junk} in
    C{repr()}, never the bytes: sealed data can be checked offline against
    a guessed password, as a final hash can, and junk is an input of the
    next key, so logging a message must copy neither.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{item.name}=<{len(value)} bytes>"
            if item.name in _HIDDEN_IN_REPR
            else f"{item.name}={value!r}"
            for item in dataclasses.fields(self)
            for value in [getattr(self, item.name)]
        )
        return f"{type(self).__name__}({shown})"


@dataclass(frozen=True, slots=True)
class Enroll:
    """
    C{SUTO_C_ENROLL_<user>}: the client asks to enroll C{user} through the
    enrollment window open for it.  The user follows the hello grammar but
    may not start with C{DATA_} (see L{can_enroll}).
    """

    user: str

    def __post_init__(self) -> None:
        if not can_enroll(self.user):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid user to enroll")


@dataclass(frozen=True, slots=True, repr=False)
class EnrollData(_HiddenBytesRepr):
    """
    C{SUTO_C_ENROLL_DATA_<sealed>}: the client's hashed hardware
    fingerprint and 32 random bytes, sealed under the password secret:
    exactly 80 bytes, 108 characters of base64.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.ENROLL_DATA)


@dataclass(frozen=True, slots=True, repr=False)
class Enrolled(_HiddenBytesRepr):
    """
    C{SUTO_ENROLLED_<key_id>_<sealed>}: the server committed the profile;
    C{sealed} is the key id sealed under the first key, which proves to
    the client that both sides derived the same key.

    @ivar key_id: 32 lower-case hexadecimal digits.
    @ivar sealed: 16 to 64 bytes.
    """

    key_id: str
    sealed: bytes

    def __post_init__(self) -> None:
        require(self.key_id, grammar.KEY_ID)
        require(self.sealed, grammar.CONFIRMATION)


@dataclass(frozen=True, slots=True, repr=False)
class Rotate(_HiddenBytesRepr):
    """
    C{SUTO_C_ROTATE_<key_id>_<junk>_<public>_<user>}: the client asks to
    replace the key it holds with one derived from fresh junk and a fresh
    X25519 exchange.  The user comes last because user names may contain
    C{_}; it follows the enrollment grammar (see L{can_enroll}), as only
    an enrolled user has a key to rotate.

    @ivar key_id: the id of the key the client holds, 32 lower-case
        hexadecimal digits.
    @ivar junk: 32 random bytes.
    @ivar public: the client's fresh X25519 public key, 32 bytes.
    @ivar user: the user whose profile holds the key.
    """

    key_id: str
    junk: bytes
    public: bytes
    user: str

    def __post_init__(self) -> None:
        require(self.key_id, grammar.KEY_ID)
        require(self.junk, grammar.JUNK)
        require(self.public, grammar.PUBLIC)
        if not can_enroll(self.user):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid user to rotate")


@dataclass(frozen=True, slots=True, repr=False)
class RotateOk(_HiddenBytesRepr):
    """
    C{SUTO_ROTATE_OK_<public>_<sealed>}: the server's half of the exchange,
    and a confirmation sealed under the new key, which only a client that
    derives the same key (the same old key and hardware fingerprint) can
    open.

    @ivar public: the server's fresh X25519 public key, 32 bytes.
    @ivar sealed: 16 to 64 bytes.
    """

    public: bytes
    sealed: bytes

    def __post_init__(self) -> None:
        require(self.public, grammar.PUBLIC)
        require(self.sealed, grammar.CONFIRMATION)


@dataclass(frozen=True, slots=True, repr=False)
class RotateAck(_HiddenBytesRepr):
    """
    C{SUTO_C_ROTATE_ACK_<sealed>}: the client opened L{RotateOk} and
    proves, with a confirmation sealed under the new key, that it holds
    that key too, so the server may commit it.

    @ivar sealed: 16 to 64 bytes.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.CONFIRMATION)


@dataclass(frozen=True, slots=True, repr=False)
class RotateDone(_HiddenBytesRepr):
    """
    C{SUTO_ROTATE_DONE_<sealed>}: the server committed the new key, and
    seals a confirmation under it; only now may the client commit the new
    key and forget the old one.

    @ivar sealed: 16 to 64 bytes.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.CONFIRMATION)


@dataclass(frozen=True, slots=True, repr=False)
class RotateDoneNext(_HiddenBytesRepr):
    """
    C{SUTO_ROTATE_DONE_NEXT_<sealed>}: L{RotateDone} on a version-3
    connection.  The sealed plaintext is the server's X25519 public key for
    the next rotation on this connection, so that rotation can prove its
    new key in its first message (L{RotatePrimed}); sealed, the share is
    bound to the profile and the key it follows.

    @ivar sealed: the 32-byte public key and its 16-byte tag.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.PRIMED_SHARE)


@dataclass(frozen=True, slots=True, repr=False)
class RotatePrimed(_HiddenBytesRepr):
    """
    C{SUTO_C_ROTATE_PRIMED_<key_id>_<junk>_<public>_<sealed>_<user>}: a
    rotation from the server's share of the last L{RotateDoneNext}.  The
    client derives the new key from that share at once and sends, with
    the fields of L{Rotate}, the acknowledgement sealed under it (as
    L{RotateAck} would carry it), so the server can check it and commit
    without a round trip.

    @ivar sealed: the acknowledgement, 16 to 64 bytes.
    """

    key_id: str
    junk: bytes
    public: bytes
    sealed: bytes
    user: str

    def __post_init__(self) -> None:
        require(self.key_id, grammar.KEY_ID)
        require(self.junk, grammar.JUNK)
        require(self.public, grammar.PUBLIC)
        require(self.sealed, grammar.CONFIRMATION)
        if not can_enroll(self.user):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid user to rotate")


@dataclass(frozen=True, slots=True)
class GetTime:
    """
    C{SUTO_C_TIME}: the client asks for the server's clock, so that it can
    derive its offline key for the server's time step, whatever its own
    clock says.
    """


@dataclass(frozen=True, slots=True)
class ServerTime:
    """
    C{SUTO_TIME_<seconds>_<step>}: the server's clock, in whole POSIX
    seconds, and the length of its offline time steps, so that a client
    needs no setting of its own to match the server's.
    """

    seconds: int
    step: int

    def __post_init__(self) -> None:
        require(self.seconds, grammar.SECONDS)
        require(self.step, grammar.STEP)


@dataclass(frozen=True, slots=True, repr=False)
class Reconnect(_HiddenBytesRepr):
    """
    C{SUTO_C_RECONNECT_N_<key_id>_<nonce>_<proof>_<sealed>_<user>}: a
    client that marked itself offline comes back.  C{sealed} is fresh junk
    sealed under the key of this attempt, derived from the offline key
    (itself from the key named by C{key_id}, the hardware fingerprint and
    the time step) and the attempt's random C{nonce}; C{proof} shows that
    the client holds that key itself, bound to the nonce and the junk.  The
    user comes last, as in L{Rotate}.

    The first form, C{SUTO_C_RECONNECT_<key_id>_<proof>_<sealed>_<user>},
    has no nonce (C{nonce} is L{None}): its junk is sealed under the
    offline key itself.  Servers accept it from agents not yet upgraded
    (docs/PROTOCOL.md §10.4).

    @ivar key_id: the id of the last key the client agreed on.
    @ivar proof: 16 bytes, a MAC of C{nonce} and C{sealed} under that key.
    @ivar sealed: 32 bytes of junk and the 16-byte tag.
    @ivar user: the user whose profile holds the key.
    @ivar nonce: the attempt's 16 random bytes, or L{None} (first form).
    """

    key_id: str
    proof: bytes
    sealed: bytes
    user: str
    nonce: bytes | None = None

    def __post_init__(self) -> None:
        require(self.key_id, grammar.KEY_ID)
        require(self.proof, grammar.PROOF)
        require(self.sealed, grammar.RECONNECT_DATA)
        if self.nonce is not None:
            require(self.nonce, grammar.NONCE)
        if not can_enroll(self.user):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid user to reconnect")


@dataclass(frozen=True, slots=True, repr=False)
class ReconnectOk(_HiddenBytesRepr):
    """
    C{SUTO_RECONNECT_OK_<sealed>}: the server opened the junk under the
    same offline key, and proves it with a confirmation sealed under that
    key.  Only after it may the client rotate on this connection.

    @ivar sealed: 16 to 64 bytes.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.CONFIRMATION)


@dataclass(frozen=True, slots=True)
class VerifyChallenge:
    """
    C{SUTO_VERIFY_<nonce>}: the server asks the agent on a profile's live
    rotation connection to prove its current key now (docs/PROTOCOL.md
    §11), bound to this fresh nonce.

    @ivar nonce: 16 random bytes.
    """

    nonce: bytes

    def __post_init__(self) -> None:
        require(self.nonce, grammar.NONCE)


@dataclass(frozen=True, slots=True, repr=False)
class VerifyProof(_HiddenBytesRepr):
    """
    C{SUTO_C_VERIFY_<nonce>_<proof>}: the agent's answer to a
    L{VerifyChallenge}, naming the challenge's nonce (so that the server
    matches it to its challenge whatever crossed it on the wire).

    @ivar nonce: the challenge's 16 bytes.
    @ivar proof: 16 bytes, a MAC of the nonce under the current key.
    """

    nonce: bytes
    proof: bytes

    def __post_init__(self) -> None:
        require(self.nonce, grammar.NONCE)
        require(self.proof, grammar.PROOF)


Message = (
    GetSaltA
    | GetRSalt
    | SaltA
    | RSalt
    | CFHash
    | Auth
    | AuthCancelled
    | Version
    | Error
    | Enroll
    | EnrollData
    | Enrolled
    | Rotate
    | RotateOk
    | RotateAck
    | RotateDone
    | RotateDoneNext
    | RotatePrimed
    | GetTime
    | ServerTime
    | Reconnect
    | ReconnectOk
    | VerifyChallenge
    | VerifyProof
)
