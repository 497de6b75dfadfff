"""
The SUTO wire format: typed messages, and a decoder and encoder that do no
I/O.

Every SUTO message is a short ASCII string that starts with a type tag
(C{SUTO_RSALT_}, C{SUTO_AUTH_1}, ...) and may go on with fields whose
alphabet and length are fixed by the protocol.  Each message type is
described once, as a L{_Layout} (its tag, then its fields and separators);
the decoder reads bytes against those layouts and the encoder writes from
them, so the two can never disagree.  Messages are frozen dataclasses that
check their fields when built, so an invalid message can neither be decoded
nor encoded.

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

Binary fields (sealed data, rotation junk, X25519 public keys) carry bytes
in standard base64 with padding (C{A-Z a-z 0-9 + / =}: SUTO characters,
and never C{_}, which can therefore separate them), and only in the
spelling the encoder itself writes: a second spelling of the same bytes
(non-zero padding bits, misplaced or missing padding) is a bad field, so
that every binary value has exactly one wire form.

Two tags extend others, and the longer tag always wins.
C{SUTO_C_ENROLL_DATA_} is always read as enrollment data, so a user whose
name starts with C{DATA_} cannot enroll (see L{can_enroll}).
C{SUTO_C_ROTATE_ACK_} is always read as an acknowledgement, which loses
nothing: a rotation's key id is lower-case hexadecimal and cannot start
with C{ACK_}.  The user of C{SUTO_C_ROTATE_} comes last because user names
may contain C{_}: the end of the line ends it.

Either way the result does not depend on how the stream is split into
chunks.  The buffer of undecoded bytes never outgrows one message: C{max_line}
for a framed line, L{MAX_LEGACY_BUFFER} in legacy (a backstop there, as no
legacy message is longer than 119 bytes and the grammar rejects anything
longer first).

A peer that breaks these rules causes a L{ProtocolError} with a
machine-readable code; its message never quotes the offending input, which
may be secret.  After one, a L{Decoder} stays dead: it drops what it had
decoded and raises the same error on every later call, because nothing
that peer sent can be trusted.

UDP hellos are single datagrams and never go through a L{Decoder}; see
L{parse_hello} and L{encode_hello}.  So are the check packets a server
sends to a profile's old location and the agent's answer to them,
C{SUTO_CHECK_<nonce>_<padding>_<user>} and
C{SUTO_CHECK_OK_<nonce>_<proof>}; L{parse_datagram} reads all three kinds.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import enum
import re
import string
from dataclasses import dataclass, field
from functools import cached_property


class Framing(enum.Enum):
    """
    How messages are delimited on a TCP connection.
    """

    LEGACY = "legacy"
    FRAMED = "framed"


PROTOCOL_VERSION = 2
MAX_LINE = 512
MAX_LEGACY_BUFFER = 512

ERROR_UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"
ERROR_TOO_LONG = "TOO_LONG"
ERROR_BAD_CHARACTER = "BAD_CHARACTER"
ERROR_BAD_FIELD = "BAD_FIELD"
ERROR_OUT_OF_ORDER = "OUT_OF_ORDER"
ERROR_PIPELINED = "PIPELINED"
ERROR_BAD_VERSION = "BAD_VERSION"
ERROR_TIMEOUT = "TIMEOUT"
ERROR_BAD_SEAL = "BAD_SEAL"
ERROR_NO_REQUEST = "NO_REQUEST"         # a classic request answering no pending authentication
ERROR_WINDOW_CLOSED = "WINDOW_CLOSED"   # the enrollment window closed after SUTO_AUTH_1
ERROR_BUSY = "BUSY"                     # the response could not be checked right now
# No profile of that user holds the key a rotation names: one answer
# whether or not the profile exists, so that profiles cannot be probed.
ERROR_UNKNOWN_KEY = "UNKNOWN_KEY"
# The client's rotation acknowledgement did not open under the new key.
ERROR_ROTATION_FAILED = "ROTATION_FAILED"


class ProtocolError(Exception):
    """
    The peer sent something that is not a valid SUTO message.

    @ivar code: one of the C{ERROR_*} constants, for machines (framed
        peers receive it as C{SUTO_ERROR_<code>}).
    @ivar detail: a short explanation for people, which never quotes the
        peer's input.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class _NeedData:
    """
    The type of L{NEED_DATA}.
    """

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
"""
Returned by L{Decoder.next_event} when the bytes so far hold no complete
message.
"""


_DIGITS = string.digits.encode("ascii")
_LETTERS_DIGITS = string.ascii_letters.encode("ascii") + _DIGITS
_CRYPT64 = _LETTERS_DIGITS + b"./"
_BASE64 = _LETTERS_DIGITS + b"+/="
_HEX = _DIGITS + b"abcdef"

# Every byte any SUTO message may contain; anything else (control bytes,
# spaces, non-ASCII) is reported as BAD_CHARACTER wherever it appears.
_ALPHABET = _LETTERS_DIGITS + b"./_$=,@+-"
_OUTSIDE_ALPHABET = "a byte outside the SUTO alphabet"


def _byte_class(allowed: bytes) -> bytes:
    """
    @return: a regular expression class matching one of the bytes in
        C{allowed}.
    """
    return b"[" + b"".join(re.escape(bytes([byte])) for byte in allowed) + b"]"


def _reject(byte: int, code: str, detail: str) -> ProtocolError:
    """
    The error for finding C{byte} where it does not belong: C{code}, unless
    no SUTO message may contain that byte at all.
    """
    if byte not in _ALPHABET:
        return ProtocolError(ERROR_BAD_CHARACTER, _OUTSIDE_ALPHABET)
    return ProtocolError(code, detail)


@dataclass(frozen=True)
class _Field:
    """
    The grammar of one message field: a few leading positions with their
    own allowed bytes, then a run of bytes from one set.

    @ivar name: the message attribute the field fills.
    @ivar head: the bytes allowed at each leading position.
    @ivar tail: the bytes allowed after the head.
    @ivar kind: the Python type of the attribute, which also parses the
        field's text.
    """

    name: str
    head: tuple[bytes, ...]
    tail: bytes
    tail_min: int
    tail_max: int
    kind: type = str

    @property
    def min_length(self) -> int:
        return len(self.head) + self.tail_min

    @property
    def max_length(self) -> int:
        return len(self.head) + self.tail_max

    @cached_property
    def _tail_run(self) -> re.Pattern[bytes]:
        """
        Matches a run of tail bytes (the callers bound its length).
        """
        return re.compile(_byte_class(self.tail) + b"*")

    @cached_property
    def _whole(self) -> re.Pattern[bytes]:
        """
        Matches exactly the field's grammar: the head, then C{tail_min} to
        C{tail_max} tail bytes.
        """
        head = b"".join(_byte_class(allowed) for allowed in self.head)
        tail = _byte_class(self.tail) + b"{%d,%d}" % (self.tail_min, self.tail_max)
        return re.compile(head + tail)

    def accepts(self, value: object) -> bool:
        """
        Is C{value} a valid value for this field, of the right type?
        """
        if type(value) is not self.kind:
            return False
        raw = self.to_text(value).encode("ascii", "replace")
        return self._whole.fullmatch(raw) is not None

    def to_text(self, value: object) -> str:
        """
        The field's text for C{value}, a value this field accepts.
        """
        return str(value)

    def from_text(self, text: str) -> object:
        """
        The value that C{text}, which the grammar has already measured,
        stands for.

        @raise ProtocolError: C{text} fits the grammar but spells no value.
        """
        return self.kind(text)

    def measure(
        self, data: bytes, start: int, bounded: bool, final: bool
    ) -> int | _NeedData:
        """
        Find where this field, starting at C{data[start]}, ends.

        @param bounded: whether the byte after the field belongs to the
            same message, so that it can end a variable-length field and
            show an over-long one.  Otherwise the field ends at its maximum
            length.
        @param final: whether C{data} is all there is (a framed line).
        @return: the index just past the field, or L{NEED_DATA}.
        @raise ProtocolError: the field is malformed or too long.
        """
        # How far the bytes go on being ones the field allows where they
        # are: the head position by position, then the tail in one match.
        # A bounded field may be followed by more of the same message, so
        # the byte after its maximum is looked at; an unbounded one stops
        # there.
        limit = len(data) if bounded else min(len(data), start + self.max_length)
        end = start
        for allowed in self.head:
            if end == limit or data[end] not in allowed:
                break
            end += 1
        else:
            end = self._tail_run.match(
                data, end, min(limit, start + self.max_length)
            ).end()
        if end < limit:
            byte = data[end]
            if end - start >= self.max_length and byte in self.tail:
                raise ProtocolError(ERROR_TOO_LONG, f"{self.name} is too long")
            if end - start < self.min_length:
                raise _reject(byte, ERROR_BAD_FIELD, f"bad {self.name}")
            return end
        if end - start == self.max_length and not bounded:
            return end
        if not final:
            return NEED_DATA
        if end - start < self.min_length:
            raise ProtocolError(ERROR_BAD_FIELD, f"{self.name} is too short")
        return end


@dataclass(frozen=True, kw_only=True)
class _Base64Field(_Field):
    """
    A field of bytes, spelled in standard base64 with padding.

    The grammar bounds the text; the byte count, which the text's length
    alone does not fix, is checked by L{accepts} when the message is built.

    @ivar min_bytes: the fewest bytes the field may carry.
    @ivar max_bytes: the most bytes the field may carry.
    """

    min_bytes: int
    max_bytes: int

    def accepts(self, value: object) -> bool:
        return (
            type(value) is bytes
            and self.min_bytes <= len(value) <= self.max_bytes
        )

    def to_text(self, value: object) -> str:
        return base64.b64encode(value).decode("ascii")

    def from_text(self, text: str) -> bytes:
        """
        Decode C{text}, accepting only the spelling L{to_text} writes, so
        that no value has two wire forms.

        @raise ProtocolError: with L{ERROR_BAD_FIELD}, C{text} is not
            canonical base64.
        """
        try:
            value = base64.b64decode(text, validate=True)
        except binascii.Error:
            value = None
        if value is None or self.to_text(value) != text:
            raise ProtocolError(
                ERROR_BAD_FIELD, f"{self.name} is not canonical base64"
            )
        return value


def _base64_field(name: str, min_bytes: int, max_bytes: int) -> _Base64Field:
    """
    A L{_Base64Field} whose text is as long as its byte bounds allow: four
    characters for every three bytes or part of them.
    """
    return _Base64Field(
        name,
        (),
        _BASE64,
        -(-min_bytes // 3) * 4,
        -(-max_bytes // 3) * 4,
        bytes,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
    )


_USER = _Field(
    "user", (_LETTERS_DIGITS + b"._",), _LETTERS_DIGITS + b"._-", 0, 63
)
_HOST = _Field("host", (), _LETTERS_DIGITS + b".-", 1, 253)
_SALT = _Field("salt", (b"$",), _CRYPT64 + b"$=,", 1, 79)
_SHA512_PREFIX = (b"$", b"6", b"$")
_RSALT = _Field("rsalt", _SHA512_PREFIX, _CRYPT64, 16, 16)
_HASH = _Field(
    "hash", _SHA512_PREFIX + (_CRYPT64,) * 16 + (b"$",), _CRYPT64, 86, 86
)
_VERSION = _Field("version", (_DIGITS[1:],), _DIGITS, 0, 2, int)
_CODE = _Field(
    "code", (), string.ascii_uppercase.encode("ascii") + _DIGITS + b"_", 1, 32
)
_KEY_ID = _Field("key_id", (), _HEX, 32, 32)
# A 64-byte plaintext (fingerprint hash and random bytes) and its 16-byte
# tag.
_ENROLL_DATA = _base64_field("sealed", 80, 80)
# A sealed confirmation: a 16-byte tag and at most 48 bytes of plaintext,
# enough for the 32 digits of a key id (enrollment) or a short word
# (rotation), with room for a longer one.
_CONFIRMATION = _base64_field("sealed", 16, 64)
# Rotation inputs: the client's 32 bytes of junk, and an X25519 public key.
_JUNK = _base64_field("junk", 32, 32)
_PUBLIC = _base64_field("public", 32, 32)
# A check packet's fresh nonce, and the agent's proof that it holds the
# profile's key.
_NONCE = _base64_field("nonce", 16, 16)
_PROOF = _base64_field("proof", 16, 16)
_ENROLL_DATA_USER_PREFIX = "DATA_"
# The server's clock, whole POSIX seconds: up to 12 digits, no leading
# zero (enough until the year 33658).
_SECONDS = _Field("seconds", (_DIGITS[1:],), _DIGITS, 0, 11, int)
# The length of its offline time steps, in seconds: 1 to 99999.
_STEP = _Field("step", (_DIGITS[1:],), _DIGITS, 0, 4, int)
# The reconnecting client's 32 bytes of junk sealed under its offline key,
# with their 16-byte tag.
_RECONNECT_DATA = _base64_field("sealed", 48, 48)


def _require(value: object, grammar: _Field) -> None:
    """
    @raise ProtocolError: with L{ERROR_BAD_FIELD}, C{value} does not fit
        C{grammar}.
    """
    if not grammar.accepts(value):
        raise ProtocolError(ERROR_BAD_FIELD, f"invalid {grammar.name}")


def is_valid_user(name: object) -> bool:
    """
    Can C{name} travel as the user of a hello?  Stores and the admin API
    use this one rule, so no account can exist that no peer could ask for.
    """
    return _USER.accepts(name)


def is_valid_host(name: object) -> bool:
    """
    Can C{name} travel as the host of a hello (C{SUTO_<user>@<host>+})?
    """
    return _HOST.accepts(name)


def can_enroll(name: object) -> bool:
    """
    Can C{name} travel as the user of C{SUTO_C_ENROLL_<user>}?  It must be
    a valid user (L{is_valid_user}) that does not start with C{DATA_}, as
    C{SUTO_C_ENROLL_DATA_} begins the enrollment data.  Whoever opens an
    enrollment window checks this, so that no window waits for a user who
    cannot answer it.  C{SUTO_C_ROTATE_} takes the same users: only an
    enrolled user has a key to rotate.
    """
    return is_valid_user(name) and not name.startswith(
        _ENROLL_DATA_USER_PREFIX
    )


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
        _require(self.user, _USER)
        if not isinstance(self.form, HelloForm):
            raise ProtocolError(ERROR_BAD_FIELD, "invalid hello form")
        if self.form is HelloForm.UDP_HELLO:
            if self.host is not None:
                raise ProtocolError(
                    ERROR_BAD_FIELD, "a SUTO_UDP_HELLO_ hello names no host"
                )
        else:
            _require(self.host, _HOST)


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
        _require(self.nonce, _NONCE)
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
        _require(self.nonce, _NONCE)
        _require(self.proof, _PROOF)


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
        _require(self.salt, _SALT)
        _require(self.rsalt, _RSALT)


@dataclass(frozen=True, slots=True)
class RSalt:
    """
    C{SUTO_RSALT_<rsalt>}: a fresh random salt, C{$6$} and 16 characters.
    """

    rsalt: str

    def __post_init__(self) -> None:
        _require(self.rsalt, _RSALT)


@dataclass(frozen=True, slots=True)
class CFHash:
    """
    C{SUTO_CF_HASH_<hash>}: the client's final hash,
    C{crypt(crypt(password, salt), rsalt)}.  It is kept out of C{repr()}
    so that logging the message cannot leak it.
    """

    hash: str = field(repr=False)

    def __post_init__(self) -> None:
        _require(self.hash, _HASH)


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
        _require(self.version, _VERSION)


@dataclass(frozen=True, slots=True)
class Error:
    """
    C{SUTO_ERROR_<CODE>}: why a framed server is closing the connection.
    """

    code: str

    def __post_init__(self) -> None:
        _require(self.code, _CODE)


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
        _require(self.sealed, _ENROLL_DATA)


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
        _require(self.key_id, _KEY_ID)
        _require(self.sealed, _CONFIRMATION)


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
        _require(self.key_id, _KEY_ID)
        _require(self.junk, _JUNK)
        _require(self.public, _PUBLIC)
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
        _require(self.public, _PUBLIC)
        _require(self.sealed, _CONFIRMATION)


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
        _require(self.sealed, _CONFIRMATION)


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
        _require(self.sealed, _CONFIRMATION)


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
        _require(self.seconds, _SECONDS)
        _require(self.step, _STEP)


@dataclass(frozen=True, slots=True, repr=False)
class Reconnect(_HiddenBytesRepr):
    """
    C{SUTO_C_RECONNECT_<key_id>_<proof>_<sealed>_<user>}: a client that
    marked itself offline comes back.  C{sealed} is fresh junk sealed under
    the offline key derived from the key named by C{key_id}, the hardware
    fingerprint and the time step; C{proof} shows that the client holds
    that key itself.  The user comes last, as in L{Rotate}.

    @ivar key_id: the id of the last key the client agreed on.
    @ivar proof: 16 bytes, a MAC of C{sealed} under that key.
    @ivar sealed: 32 bytes of junk and the 16-byte tag.
    @ivar user: the user whose profile holds the key.
    """

    key_id: str
    proof: bytes
    sealed: bytes
    user: str

    def __post_init__(self) -> None:
        _require(self.key_id, _KEY_ID)
        _require(self.proof, _PROOF)
        _require(self.sealed, _RECONNECT_DATA)
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
        _require(self.sealed, _CONFIRMATION)


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
    | GetTime
    | ServerTime
    | Reconnect
    | ReconnectOk
)


@dataclass(frozen=True)
class _Layout:
    """
    How one message type is spelled: a type tag, then fields and literal
    separators in order.

    @ivar constants: attribute values the tag itself stands for (C{ok} in
        C{SUTO_AUTH_1}).
    """

    tag: bytes
    kind: type
    parts: tuple[_Field | bytes, ...] = ()
    constants: dict = field(default_factory=dict)

    def describes(self, message: object) -> bool:
        return type(message) is self.kind and all(
            getattr(message, name) == value
            for name, value in self.constants.items()
        )

    def encode(self, message: Message) -> bytes:
        return self.tag + b"".join(
            part
            if isinstance(part, bytes)
            else part.to_text(getattr(message, part.name)).encode("ascii")
            for part in self.parts
        )

    def read(
        self, data: bytes, start: int, final: bool
    ) -> tuple[Message, int] | _NeedData:
        """
        Read the message that starts with this layout's tag at
        C{data[start]}.

        @param final: whether C{data} ends with the message (a framed line)
            rather than being the start of a stream.
        @return: the message and the index just past it, or L{NEED_DATA}.
        @raise ProtocolError: C{data} cannot go on with such a message.
        """
        position = start + len(self.tag)
        values = {}
        for index, part in enumerate(self.parts):
            if isinstance(part, bytes):
                for expected in part:
                    if position == len(data):
                        if final:
                            raise ProtocolError(
                                ERROR_BAD_FIELD, "message is truncated"
                            )
                        return NEED_DATA
                    if data[position] != expected:
                        raise _reject(
                            data[position], ERROR_BAD_FIELD, "bad separator"
                        )
                    position += 1
            else:
                bounded = final or index < len(self.parts) - 1
                end = part.measure(data, position, bounded, final)
                if end is NEED_DATA:
                    return NEED_DATA
                text = data[position:end].decode("ascii")
                values[part.name] = part.from_text(text)
                position = end
        if final and position < len(data):
            raise _reject(
                data[position],
                ERROR_BAD_FIELD if self.parts else ERROR_UNKNOWN_MESSAGE,
                "unexpected bytes after the message",
            )
        return self.kind(**self.constants, **values), position


# Legacy tags are prefix-free, so at most one of them can match a given
# input; among framed tags, SUTO_C_ENROLL_DATA_ extends SUTO_C_ENROLL_ and
# SUTO_C_ROTATE_ACK_ extends SUTO_C_ROTATE_, and _read_message reads the
# longer.
_LEGACY_LAYOUTS = (
    _Layout(b"SUTO_C_GET_SALTA", GetSaltA),
    _Layout(b"SUTO_C_GET_RSALT", GetRSalt),
    _Layout(b"SUTO_SALTA_", SaltA, (_SALT, b"_", _RSALT)),
    _Layout(b"SUTO_RSALT_", RSalt, (_RSALT,)),
    _Layout(b"SUTO_CF_HASH_", CFHash, (_HASH,)),
    _Layout(b"SUTO_AUTH_1", Auth, constants={"ok": True}),
    _Layout(b"SUTO_AUTH_0", Auth, constants={"ok": False}),
    _Layout(b"SUTO_AUTH_CANCELLED", AuthCancelled),
)
_LAYOUTS = {
    Framing.LEGACY: _LEGACY_LAYOUTS,
    Framing.FRAMED: _LEGACY_LAYOUTS
    + (
        _Layout(b"SUTO_VERSION_", Version, (_VERSION,)),
        _Layout(b"SUTO_ERROR_", Error, (_CODE,)),
        _Layout(b"SUTO_C_ENROLL_", Enroll, (_USER,)),
        _Layout(b"SUTO_C_ENROLL_DATA_", EnrollData, (_ENROLL_DATA,)),
        _Layout(b"SUTO_ENROLLED_", Enrolled, (_KEY_ID, b"_", _CONFIRMATION)),
        _Layout(
            b"SUTO_C_ROTATE_",
            Rotate,
            (_KEY_ID, b"_", _JUNK, b"_", _PUBLIC, b"_", _USER),
        ),
        _Layout(b"SUTO_ROTATE_OK_", RotateOk, (_PUBLIC, b"_", _CONFIRMATION)),
        _Layout(b"SUTO_C_ROTATE_ACK_", RotateAck, (_CONFIRMATION,)),
        _Layout(b"SUTO_ROTATE_DONE_", RotateDone, (_CONFIRMATION,)),
        _Layout(b"SUTO_C_TIME", GetTime),
        _Layout(b"SUTO_TIME_", ServerTime, (_SECONDS, b"_", _STEP)),
        _Layout(
            b"SUTO_C_RECONNECT_",
            Reconnect,
            (_KEY_ID, b"_", _PROOF, b"_", _RECONNECT_DATA, b"_", _USER),
        ),
        _Layout(b"SUTO_RECONNECT_OK_", ReconnectOk, (_CONFIRMATION,)),
    ),
}
_LONGEST_TAG = max(len(layout.tag) for layout in _LAYOUTS[Framing.FRAMED])


def _common_prefix_length(left: bytes, right: bytes) -> int:
    length = 0
    for a, b in zip(left, right):
        if a != b:
            break
        length += 1
    return length


def _read_message(
    data: bytes, start: int, framing: Framing, final: bool
) -> tuple[Message, int] | _NeedData:
    """
    Read one message starting at C{data[start]}.

    @param final: whether C{data} ends with the message (a framed line)
        rather than being the start of a stream.
    @return: the message and the index just past it, or L{NEED_DATA}.
    @raise ProtocolError: no message starts there.
    """
    layouts = _LAYOUTS[framing]
    matches = [
        layout for layout in layouts if data.startswith(layout.tag, start)
    ]
    if matches:
        longest = max(matches, key=lambda layout: len(layout.tag))
        return longest.read(data, start, final)
    # Only the first bytes can matter now; copying them keeps this cheap
    # however much follows.
    head = data[start : start + _LONGEST_TAG]
    if not final and any(layout.tag.startswith(head) for layout in layouts):
        return NEED_DATA
    reach = max(_common_prefix_length(head, layout.tag) for layout in layouts)
    if reach == len(head):
        raise ProtocolError(ERROR_UNKNOWN_MESSAGE, "truncated message type")
    raise _reject(head[reach], ERROR_UNKNOWN_MESSAGE, "unknown message type")


def encode(message: Message, framing: Framing) -> bytes:
    """
    The bytes that send C{message} on a TCP connection.

    @raise ValueError: C{message} is not a message this framing can carry
        (a L{Hello}, or in legacy framing L{Version}, L{Error}, and the
        enrollment and rotation messages).
    """
    for layout in _LAYOUTS[framing]:
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
            # A framed line of exactly max_line bytes may still be waiting
            # for the LF after its CR.
            if len(self._buffer.removesuffix(b"\r")) > self._cap:
                raise ProtocolError(ERROR_TOO_LONG, "message is too long")
        except ProtocolError as error:
            self._error = error
            self._buffer = b""
            self._messages.clear()
            raise

    def next_event(self) -> Message | _NeedData:
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


_HELLO_PREFIX = b"SUTO_"
_UDP_HELLO_PREFIX = b"SUTO_UDP_HELLO_"
_MAX_HELLO = (
    len(_HELLO_PREFIX) + _USER.max_length + len(b"@") + _HOST.max_length + 1
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
    if datagram.translate(None, _ALPHABET):
        raise ProtocolError(ERROR_BAD_CHARACTER, _OUTSIDE_ALPHABET)
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


_CHECK_PROOF_LAYOUT = _Layout(
    b"SUTO_CHECK_OK_", CheckProof, (_NONCE, b"_", _PROOF)
)
_CHECK_PROOF_LENGTH = (
    len(_CHECK_PROOF_LAYOUT.tag) + _NONCE.max_length + 1 + _PROOF.max_length
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
        - _NONCE.min_length
        - 2
        - _USER.min_length
    )
)
_CHECK_LAYOUT = _Layout(_CHECK_TAG, Check, (_NONCE, _CHECK_SEPARATOR, _USER))
_MAX_DATAGRAM = max(
    _MAX_HELLO,
    len(_CHECK_TAG)
    + _NONCE.max_length
    + len(_CHECK_SEPARATOR)
    + _USER.max_length,
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
    if datagram.translate(None, _ALPHABET):
        raise ProtocolError(ERROR_BAD_CHARACTER, _OUTSIDE_ALPHABET)
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
