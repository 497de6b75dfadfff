# -*- test-case-name: tests.core.test_wire -*-
"""
The TCP side of the codec: a L{Decoder} that turns a connection's bytes
into messages, and L{encode}, which writes them, both without I/O.

The bytes travel in one of two framings:

  - L{Framing.LEGACY} is SUTO 1.3.2 as deployed: no terminator at all, each
    side writes one message and waits for the reply.  The decoder finds the
    end of a message from the grammar alone: fixed tags, fixed-length
    random salts and hashes, and in C{SUTO_SALTA_<salt>_<rsalt>} a password
    salt that runs to the first C{_} followed by a 19-byte random salt.
    Every layout used here therefore ends in a fixed-length part, which is
    what lets a message end without looking at the byte after it.  Bytes
    are read as they arrive: a valid but incomplete message waits for more,
    and a prefix that can no longer become a message is rejected at once.
    One leniency: CR and LF bytes where a message would start are skipped,
    because a 1.3.2 client may append CRLF to what it sends and the 1.3.2
    desktop tolerates it.  Nothing else is skipped.

  - L{Framing.FRAMED} sends each message as one line ending in CRLF (a bare
    LF is accepted), no longer than C{max_line} bytes, and adds
    C{SUTO_VERSION_<n>}, C{SUTO_ERROR_<CODE>}, the three enrollment
    messages (C{SUTO_C_ENROLL_<user>}, C{SUTO_C_ENROLL_DATA_<sealed>},
    C{SUTO_ENROLLED_<key_id>_<sealed>}) and the four key rotation messages
    (C{SUTO_C_ROTATE_<key_id>_<junk>_<public>_<user>},
    C{SUTO_ROTATE_OK_<public>_<sealed>}, C{SUTO_C_ROTATE_ACK_<sealed>},
    C{SUTO_ROTATE_DONE_<sealed>}).  Each line must hold exactly one
    message, read with the same layouts.  Legacy framing never carries
    these: a 1.3.2 peer can neither enroll nor rotate keys, and the legacy
    decoder reports them as unknown messages.

Two tags extend others, and the longer tag always wins.
C{SUTO_C_ENROLL_DATA_} is always read as enrollment data, so a user whose
name starts with C{DATA_} cannot enroll (see L{grammar.can_enroll}).
C{SUTO_C_ROTATE_ACK_} is always read as an acknowledgement, which loses
nothing: a rotation's key id is lower-case hexadecimal and cannot start
with C{ACK_}.  The user of C{SUTO_C_ROTATE_} comes last because user names
may contain C{_}: the end of the line ends it.

Either way the result does not depend on how the stream is split into
chunks.  The buffer of undecoded bytes never outgrows one message: C{max_line}
for a framed line, L{MAX_LEGACY_BUFFER} in legacy (a backstop there, as no
legacy message is longer than 119 bytes and the grammar rejects anything
longer first).

A peer that breaks these rules causes a L{ProtocolError}.  After one, a
L{Decoder} stays dead: it drops what it had decoded and raises the same
error on every later call, because nothing that peer sent can be trusted.
"""

from __future__ import annotations

import collections
import enum

from suto_server.core.wire import grammar
from suto_server.core.wire.errors import (
    ERROR_TOO_LONG,
    ERROR_UNKNOWN_MESSAGE,
    ProtocolError,
)
from suto_server.core.wire.grammar import NEED_DATA, NeedData, reject
from suto_server.core.wire.layout import Layout
from suto_server.core.wire.messages import (
    Auth,
    AuthCancelled,
    CFHash,
    Enroll,
    EnrollData,
    Enrolled,
    Error,
    GetRSalt,
    GetSaltA,
    RSalt,
    SaltA,
    Version,
)
from suto_server.core.wire.rotation_messages import (
    GetTime,
    Reconnect,
    ReconnectOk,
    Rotate,
    RotateAck,
    RotateDone,
    RotateDoneNext,
    RotateOk,
    RotatePrimed,
    ServerTime,
    VerifyChallenge,
    VerifyProof,
)

#: Every message this codec reads and writes.
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


class Framing(enum.Enum):
    """
    How messages are delimited on a TCP connection.
    """

    LEGACY = "legacy"
    FRAMED = "framed"


MAX_LINE = 512
MAX_LEGACY_BUFFER = 512


# Legacy tags are prefix-free, so at most one of them can match a given
# input; among framed tags, SUTO_C_ENROLL_DATA_ extends SUTO_C_ENROLL_,
# SUTO_C_ROTATE_ACK_ and SUTO_C_ROTATE_PRIMED_ extend SUTO_C_ROTATE_,
# SUTO_ROTATE_DONE_NEXT_ extends SUTO_ROTATE_DONE_ and SUTO_C_RECONNECT_N_
# extends SUTO_C_RECONNECT_, and _read_message reads the longer (a key id
# is lower-case hexadecimal and base64 has no "_", so nothing is lost).
# The two layouts of Reconnect are told apart on the way out by its nonce
# (the first, for messages without one, comes first).
# What both forms of the reconnection end with.
_RECONNECT_PROOF_ON = (
    grammar.PROOF,
    b"_",
    grammar.RECONNECT_DATA,
    b"_",
    grammar.USER,
)
# What both forms of the rotation start with.
_ROTATION_ON = (
    grammar.KEY_ID,
    b"_",
    grammar.JUNK,
    b"_",
    grammar.PUBLIC,
    b"_",
)
_LEGACY_LAYOUTS = (
    Layout(b"SUTO_C_GET_SALTA", GetSaltA),
    Layout(b"SUTO_C_GET_RSALT", GetRSalt),
    Layout(b"SUTO_SALTA_", SaltA, (grammar.SALT, b"_", grammar.RSALT)),
    Layout(b"SUTO_RSALT_", RSalt, (grammar.RSALT,)),
    Layout(b"SUTO_CF_HASH_", CFHash, (grammar.HASH,)),
    Layout(b"SUTO_AUTH_1", Auth, constants={"ok": True}),
    Layout(b"SUTO_AUTH_0", Auth, constants={"ok": False}),
    Layout(b"SUTO_AUTH_CANCELLED", AuthCancelled),
)
LAYOUTS = {
    Framing.LEGACY: _LEGACY_LAYOUTS,
    Framing.FRAMED: _LEGACY_LAYOUTS
    + (
        Layout(b"SUTO_VERSION_", Version, (grammar.VERSION,)),
        Layout(b"SUTO_ERROR_", Error, (grammar.CODE,)),
        Layout(b"SUTO_C_ENROLL_", Enroll, (grammar.USER,)),
        Layout(b"SUTO_C_ENROLL_DATA_", EnrollData, (grammar.ENROLL_DATA,)),
        Layout(
            b"SUTO_ENROLLED_",
            Enrolled,
            (grammar.KEY_ID, b"_", grammar.CONFIRMATION),
        ),
        Layout(b"SUTO_C_ROTATE_", Rotate, _ROTATION_ON + (grammar.USER,)),
        Layout(
            b"SUTO_ROTATE_OK_",
            RotateOk,
            (grammar.PUBLIC, b"_", grammar.CONFIRMATION),
        ),
        Layout(b"SUTO_C_ROTATE_ACK_", RotateAck, (grammar.CONFIRMATION,)),
        Layout(b"SUTO_ROTATE_DONE_", RotateDone, (grammar.CONFIRMATION,)),
        Layout(
            b"SUTO_C_ROTATE_PRIMED_",
            RotatePrimed,
            _ROTATION_ON + (grammar.CONFIRMATION, b"_", grammar.USER),
        ),
        Layout(
            b"SUTO_ROTATE_DONE_NEXT_", RotateDoneNext, (grammar.PRIMED_SHARE,)
        ),
        Layout(b"SUTO_C_TIME", GetTime),
        Layout(
            b"SUTO_TIME_", ServerTime, (grammar.SECONDS, b"_", grammar.STEP)
        ),
        Layout(
            b"SUTO_C_RECONNECT_",
            Reconnect,
            (grammar.KEY_ID, b"_") + _RECONNECT_PROOF_ON,
            constants={"nonce": None},
        ),
        Layout(
            b"SUTO_C_RECONNECT_N_",
            Reconnect,
            (grammar.KEY_ID, b"_", grammar.NONCE, b"_") + _RECONNECT_PROOF_ON,
        ),
        Layout(b"SUTO_RECONNECT_OK_", ReconnectOk, (grammar.CONFIRMATION,)),
        Layout(b"SUTO_VERIFY_", VerifyChallenge, (grammar.NONCE,)),
        Layout(
            b"SUTO_C_VERIFY_", VerifyProof, (grammar.NONCE, b"_", grammar.PROOF)
        ),
    ),
}
_LONGEST_TAG = max(len(layout.tag) for layout in LAYOUTS[Framing.FRAMED])

# What the hot paths look up instead of walking every layout: each
# framing's layouts longest tag first, so the first tag that matches is
# the longest one that does; and each message type's layouts (two for
# SUTO_AUTH_, told apart by their constants), so encoding a message looks
# at its own layouts only.
_LONGEST_FIRST = {
    framing: tuple(sorted(layouts, key=lambda layout: -len(layout.tag)))
    for framing, layouts in LAYOUTS.items()
}
_BY_KIND = {
    framing: {
        kind: tuple(layout for layout in layouts if layout.kind is kind)
        for kind in {layout.kind for layout in layouts}
    }
    for framing, layouts in LAYOUTS.items()
}


def _common_prefix_length(left: bytes, right: bytes) -> int:
    length = 0
    for a, b in zip(left, right):
        if a != b:
            break
        length += 1
    return length


def _read_message(
    data: bytes, start: int, framing: Framing, final: bool
) -> tuple[Message, int] | NeedData:
    """
    Read one message starting at C{data[start]}.

    @param final: whether C{data} ends with the message (a framed line)
        rather than being the start of a stream.
    @return: the message and the index just past it, or L{NEED_DATA}.
    @raise ProtocolError: no message starts there.
    """
    layouts = _LONGEST_FIRST[framing]
    for layout in layouts:
        if data.startswith(layout.tag, start):
            return layout.read(data, start, final)
    # Only the first bytes can matter now; copying them keeps this cheap
    # however much follows.
    head = data[start : start + _LONGEST_TAG]
    if not final and any(layout.tag.startswith(head) for layout in layouts):
        return NEED_DATA
    reach = max(_common_prefix_length(head, layout.tag) for layout in layouts)
    if reach == len(head):
        raise ProtocolError(ERROR_UNKNOWN_MESSAGE, "truncated message type")
    raise reject(head[reach], ERROR_UNKNOWN_MESSAGE, "unknown message type")


def encode(message: Message, framing: Framing) -> bytes:
    """
    The bytes that send C{message} on a TCP connection.

    @raise ValueError: C{message} is not a message this framing can carry
        (a L{Hello}, or in legacy framing L{Version}, L{Error}, and the
        enrollment and rotation messages).
    """
    for layout in _BY_KIND[framing].get(type(message), ()):
        if layout.describes(message):
            data = layout.encode(message)
            return data + b"\r\n" if framing is Framing.FRAMED else data
    raise ValueError(
        f"{type(message).__name__} cannot be sent in {framing.value} framing"
    )


class Decoder:
    """
    Turns the bytes a peer sends on one TCP connection into messages.

    Feed it with L{receive_data}, then call L{next_event} until it returns
    L{NEED_DATA}.  Messages are decoded as the bytes arrive, so errors are
    raised by L{receive_data} as soon as they show (for a framed line, when
    it ends or outgrows C{max_line}); every later call raises them again.
    """

    def __init__(self, framing: Framing, max_line: int = MAX_LINE) -> None:
        """
        @param max_line: in framed framing, the longest line accepted, not
            counting its line ending.  Legacy framing ignores it.
        """
        self._framing = framing
        self._cap = (
            max_line if framing is Framing.FRAMED else MAX_LEGACY_BUFFER
        )
        self._buffer = b""
        self._messages: collections.deque[Message] = collections.deque()
        self._error: ProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        """
        Add bytes the peer sent.

        @raise ProtocolError: the bytes received so far cannot be the
            start of a valid stream (L{ERROR_TOO_LONG} as soon as they can
            no longer fit within the cap), or an earlier call raised.
        """
        self._raise_if_dead()
        self._buffer += data
        try:
            self._decode_buffer()
            if self.buffered > self._cap:
                raise ProtocolError(ERROR_TOO_LONG, "message is too long")
        except ProtocolError as error:
            self._error = error
            self._buffer = b""
            self._messages.clear()
            raise

    @property
    def cap(self) -> int:
        """
        The most bytes one message may take, and so the most the decoder
        ever holds: C{max_line} for a framed line (its line ending not
        counted), L{MAX_LEGACY_BUFFER} in legacy framing.  Read-only, so
        that tests and the fuzzer can hold the decoder to it.
        """
        return self._cap

    @property
    def buffered(self) -> int:
        """
        How many bytes of a message not yet complete the decoder holds.
        A CR at the end, which may be the start of a framed line's ending,
        is not counted, so a line of exactly L{cap} bytes may wait for its
        LF.  L{receive_data} refuses bytes that would take this past
        L{cap}; read-only, so that tests and the fuzzer can check it does.
        """
        return len(self._buffer.removesuffix(b"\r"))

    def next_event(self) -> Message | NeedData:
        """
        @return: the next decoded message, or L{NEED_DATA}.
        @raise ProtocolError: the peer sent something invalid earlier.
        """
        self._raise_if_dead()
        if self._messages:
            return self._messages.popleft()
        return NEED_DATA

    def _raise_if_dead(self) -> None:
        if self._error is not None:
            raise self._error.with_traceback(None)

    def _decode_buffer(self) -> None:
        """
        Move every complete message from the buffer to the queue, leaving
        only the start of the next one.  Each byte is copied a bounded
        number of times, so a large chunk costs linear time.
        """
        if self._framing is Framing.FRAMED:
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                line = line.removesuffix(b"\r")
                if len(line) > self._cap:
                    raise ProtocolError(ERROR_TOO_LONG, "line is too long")
                message, _ = _read_message(line, 0, self._framing, final=True)
                self._messages.append(message)
        else:
            position = 0
            while True:
                while self._buffer[position : position + 1] in (b"\r", b"\n"):
                    position += 1
                result = _read_message(
                    self._buffer, position, self._framing, final=False
                )
                if result is NEED_DATA:
                    break
                message, position = result
                self._messages.append(message)
            self._buffer = self._buffer[position:]
