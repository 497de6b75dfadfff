# -*- test-case-name: tests.core.test_wire -*-
"""
The UDP side of the codec: the datagrams that are never part of a stream,
and read and written whole.

A hello (L{Hello}) starts an authentication.  A server sends a L{Check} to
the agent port at a profile's old location, and the agent answers with a
L{CheckProof}.  L{parse_hello} reads hellos, L{parse_datagram} reads all
three kinds, and each has its encoder.  A datagram that is none of them
causes a L{ProtocolError}, as a bad stream does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from suto_server.core.wire import grammar
from suto_server.core.wire.errors import (
    ERROR_BAD_CHARACTER,
    ERROR_BAD_FIELD,
    ERROR_TOO_LONG,
    ERROR_UNKNOWN_MESSAGE,
    ProtocolError,
)
from suto_server.core.wire.grammar import (
    ALPHABET,
    OUTSIDE_ALPHABET,
    can_enroll,
    require,
)
from suto_server.core.wire.layout import Layout


class HelloForm(enum.Enum):
    """
    The three spellings of the UDP hello.  1.3.2 desktops send L{PLUS}, and
    so does SUTO; the other two are named in the 1.3.2 specification and
    are accepted.
    """

    PLUS = "+"
    DOLLAR = "$"
    UDP_HELLO = "udp"


@dataclass(frozen=True, slots=True)
class Hello:
    """
    The UDP datagram that starts an authentication: C{SUTO_<user>@<host>+},
    C{SUTO_<user>@<host>$} or C{SUTO_UDP_HELLO_<user>} (which names no
    host).
    """

    user: str
    host: str | None
    form: HelloForm = HelloForm.PLUS

    def __post_init__(self) -> None:
        require(self.user, grammar.USER)
        if not isinstance(self.form, HelloForm):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid hello form")
        if self.form is HelloForm.UDP_HELLO:
            if self.host is not None:
                raise ProtocolError(
                    ERROR_BAD_FIELD, "a SUTO_UDP_HELLO_ hello names no host"
                )
        else:
            require(self.host, grammar.HOST)


@dataclass(frozen=True, slots=True)
class Check:
    """
    C{SUTO_CHECK_<nonce>_<padding>_<user>}: a UDP datagram the server sends
    to the agent port at a profile's old location, asking whether the
    profile's legitimate client is still there.  The padding is fixed (see
    L{encode_check}); the user comes last because user names may contain
    C{_}, and follows the enrollment grammar (see L{can_enroll}), as only
    an enrolled profile has a key to prove.

    @ivar nonce: 16 fresh random bytes, which the answer must be bound to.
    @ivar user: the profile being checked.
    """

    nonce: bytes
    user: str

    def __post_init__(self) -> None:
        require(self.nonce, grammar.NONCE)
        if not can_enroll(self.user):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid user to check")


@dataclass(frozen=True, slots=True)
class CheckProof:
    """
    C{SUTO_CHECK_OK_<nonce>_<proof>}: the agent's answer to a L{Check}, a
    MAC of the nonce and user under the profile's current key
    (L{suto_server.core.keyschedule.check_proof}).

    @ivar nonce: the nonce of the check being answered, 16 bytes.
    @ivar proof: 16 bytes.
    """

    nonce: bytes
    proof: bytes

    def __post_init__(self) -> None:
        require(self.nonce, grammar.NONCE)
        require(self.proof, grammar.PROOF)



_HELLO_PREFIX = b"SUTO_"
_UDP_HELLO_PREFIX = b"SUTO_UDP_HELLO_"
_MAX_HELLO = (
    len(_HELLO_PREFIX)
    + grammar.USER.max_length
    + len(b"@")
    + grammar.HOST.max_length
    + 1
)


def parse_hello(datagram: bytes) -> Hello:
    """
    Read a UDP hello in any of its three spellings.

    A hello ending in C{+} or C{$} names a host (user and host split at the
    last C{@}); any other is C{SUTO_UDP_HELLO_<user>}.  User names cannot
    contain C{@}, C{+} or C{$}, so no datagram reads both ways.

    @raise ProtocolError: C{datagram} is not a valid hello.
    """
    if len(datagram) > _MAX_HELLO:
        raise ProtocolError(ERROR_TOO_LONG, "hello is too long")
    if datagram.translate(None, ALPHABET):
        raise ProtocolError(ERROR_BAD_CHARACTER, OUTSIDE_ALPHABET)
    if not datagram.startswith(_HELLO_PREFIX):
        raise ProtocolError(ERROR_UNKNOWN_MESSAGE, "not a SUTO hello")
    text = datagram.decode("ascii")
    for form in (HelloForm.PLUS, HelloForm.DOLLAR):
        if text.endswith(form.value):
            user, at, host = text[len(_HELLO_PREFIX) : -1].rpartition("@")
            if not at:
                raise ProtocolError(ERROR_BAD_FIELD, "hello names no host")
            return Hello(user, host, form)
    if not datagram.startswith(_UDP_HELLO_PREFIX):
        raise ProtocolError(ERROR_UNKNOWN_MESSAGE, "not a SUTO hello")
    return Hello(text[len(_UDP_HELLO_PREFIX) :], None, HelloForm.UDP_HELLO)


def encode_hello(hello: Hello) -> bytes:
    """
    The datagram that sends C{hello}, in its own spelling.
    """
    if hello.form is HelloForm.UDP_HELLO:
        return _UDP_HELLO_PREFIX + hello.user.encode("ascii")
    return b"%s%s@%s%s" % (
        _HELLO_PREFIX,
        hello.user.encode("ascii"),
        hello.host.encode("ascii"),
        hello.form.value.encode("ascii"),
    )


_CHECK_PROOF_LAYOUT = Layout(
    b"SUTO_CHECK_OK_", CheckProof, (grammar.NONCE, b"_", grammar.PROOF)
)
_CHECK_PROOF_LENGTH = (
    len(_CHECK_PROOF_LAYOUT.tag)
    + grammar.NONCE.max_length
    + 1
    + grammar.PROOF.max_length
)
_CHECK_TAG = b"SUTO_CHECK_"
# The separator between a check's nonce and its user holds enough padding
# that the shortest check is as long as any answer, so that answering a
# check never sends more bytes than it received.
_CHECK_SEPARATOR = b"_%s_" % (
    b"-"
    * (
        _CHECK_PROOF_LENGTH
        - len(_CHECK_TAG)
        - grammar.NONCE.min_length
        - 2
        - grammar.USER.min_length
    )
)
_CHECK_LAYOUT = Layout(
    _CHECK_TAG, Check, (grammar.NONCE, _CHECK_SEPARATOR, grammar.USER)
)
_MAX_DATAGRAM = max(
    _MAX_HELLO,
    len(_CHECK_TAG)
    + grammar.NONCE.max_length
    + len(_CHECK_SEPARATOR)
    + grammar.USER.max_length,
)


def parse_datagram(datagram: bytes) -> Hello | Check | CheckProof:
    """
    Read any SUTO UDP datagram: a hello (as L{parse_hello} reads it), a
    L{Check} or a L{CheckProof}.

    A hello for a user whose name starts with C{CHECK_} also starts with
    C{SUTO_CHECK_}, but such a hello ends in C{+} or C{$}, which no check
    or answer does (the user of a check comes last and cannot contain
    them; an answer ends in base64 padding), so no datagram reads two
    ways.  A nonce cannot start with C{OK_}, as base64 has no C{_}, so the
    two check tags cannot be confused either.

    @raise ProtocolError: C{datagram} is none of them.
    """
    if len(datagram) > _MAX_DATAGRAM:
        raise ProtocolError(ERROR_TOO_LONG, "datagram is too long")
    if datagram.endswith((b"+", b"$")) or not datagram.startswith(_CHECK_TAG):
        return parse_hello(datagram)
    if datagram.translate(None, ALPHABET):
        raise ProtocolError(ERROR_BAD_CHARACTER, OUTSIDE_ALPHABET)
    if datagram.startswith(_CHECK_PROOF_LAYOUT.tag):
        layout = _CHECK_PROOF_LAYOUT
    else:
        layout = _CHECK_LAYOUT
    message, _ = layout.read(datagram, 0, final=True)
    return message


def encode_check(check: Check) -> bytes:
    """
    The datagram that sends C{check}.  Its padding makes it at least as
    long as the L{CheckProof} that answers it, whatever the user, so an
    agent can never be used to amplify traffic.
    """
    return _CHECK_LAYOUT.encode(check)


def encode_check_proof(answer: CheckProof) -> bytes:
    """
    The datagram that sends C{answer}.
    """
    return _CHECK_PROOF_LAYOUT.encode(answer)
