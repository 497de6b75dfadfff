# -*- test-case-name: tests.core.test_wire -*-
"""
The typed SUTO messages of a rotation connection (docs/PROTOCOL.md §9-§11):
the rotation in both its forms, the time and the reconnection after an
offline spell, and a verification's challenge and proof.

As every message (L{suto_server.core.wire.messages}), each checks its
fields against the grammar when built, and those carrying junk, sealed
data or a proof keep those bytes out of C{repr()}.
"""

from __future__ import annotations

from dataclasses import dataclass

from suto_server.core.wire import grammar
from suto_server.core.wire.errors import ERROR_BAD_FIELD, ProtocolError
from suto_server.core.wire.grammar import can_enroll, require
from suto_server.core.wire.messages import HiddenBytesRepr


def _require_rotation(message) -> None:
    """
    The fields both rotation requests (L{Rotate}, L{RotatePrimed}) start
    with: the key id, the junk and the client's public key.
    """
    require(message.key_id, grammar.KEY_ID)
    require(message.junk, grammar.JUNK)
    require(message.public, grammar.PUBLIC)


def _require_rotating_user(user: str) -> None:
    """
    A rotation's user follows the enrollment grammar (see L{can_enroll}):
    only an enrolled user has a key to rotate.
    """
    if not can_enroll(user):
        raise ProtocolError(ERROR_BAD_FIELD, "invalid user to rotate")


@dataclass(frozen=True, slots=True, repr=False)
class Rotate(HiddenBytesRepr):
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
        _require_rotation(self)
        _require_rotating_user(self.user)


@dataclass(frozen=True, slots=True, repr=False)
class RotateOk(HiddenBytesRepr):
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
class RotateAck(HiddenBytesRepr):
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
class RotateDone(HiddenBytesRepr):
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
class RotateDoneNext(HiddenBytesRepr):
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
class RotatePrimed(HiddenBytesRepr):
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
        _require_rotation(self)
        require(self.sealed, grammar.CONFIRMATION)
        _require_rotating_user(self.user)


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
class Reconnect(HiddenBytesRepr):
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
class ReconnectOk(HiddenBytesRepr):
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
class VerifyProof(HiddenBytesRepr):
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
