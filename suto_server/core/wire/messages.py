# -*- test-case-name: tests.core.test_wire -*-
"""
The typed SUTO messages that travel on a TCP connection: those of the
salted challenge, the version exchange, errors and enrollment here, those
of a rotation connection (rotation, reconnection, verification) in
L{suto_server.core.wire.rotation_messages}.

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


class HiddenBytesRepr:
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
class EnrollData(HiddenBytesRepr):
    """
    C{SUTO_C_ENROLL_DATA_<sealed>}: the client's hashed hardware
    fingerprint and 32 random bytes, sealed under the password secret:
    exactly 80 bytes, 108 characters of base64.
    """

    sealed: bytes

    def __post_init__(self) -> None:
        require(self.sealed, grammar.ENROLL_DATA)


@dataclass(frozen=True, slots=True, repr=False)
class Enrolled(HiddenBytesRepr):
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
