# -*- test-case-name: tests.core.test_wire -*-
"""
The grammar of SUTO message fields.

Every SUTO message is a short ASCII string that starts with a type tag
(C{SUTO_RSALT_}, C{SUTO_AUTH_1}, ...) and may go on with fields whose
alphabet and length are fixed by the protocol.  Each field is a L{Field}
(a few leading positions with their own bytes, then a run from one set);
how each message type is spelled from them is its
L{suto_server.core.wire.layout.Layout}.

A field measures itself with one compiled regular expression rather than
byte by byte (bench/RESULTS.md, finding 4); tests/core/test_wire.py keeps
the byte-wise walk as the reference the match must agree with.

Binary fields (sealed data, rotation junk, X25519 public keys) carry bytes
in standard base64 with padding (C{A-Z a-z 0-9 + / =}: SUTO characters,
and never C{_}, which can therefore separate them), and only in the
spelling the encoder itself writes: a second spelling of the same bytes
(non-zero padding bits, misplaced or missing padding) is a bad field, so
that every binary value has exactly one wire form.

The same rules decide which names may travel at all: L{is_valid_user},
L{is_valid_host} and L{can_enroll} are what stores, the admin API and
enrollment windows check.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass
from functools import cached_property

from suto_server.core.wire.errors import (
    ERROR_BAD_CHARACTER,
    ERROR_BAD_FIELD,
    ERROR_TOO_LONG,
    ProtocolError,
)


class NeedData:
    """
    The type of L{NEED_DATA}.
    """

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
"""
Returned when the bytes so far hold no complete message: by
L{Field.measure} and L{suto_server.core.wire.layout.Layout.read} when a
field or message may go on, and by
L{suto_server.core.wire.stream.Decoder.next_event}.
"""


_DIGITS = string.digits.encode("ascii")
_LETTERS_DIGITS = string.ascii_letters.encode("ascii") + _DIGITS
_CRYPT64 = _LETTERS_DIGITS + b"./"
_BASE64 = _LETTERS_DIGITS + b"+/="
_HEX = _DIGITS + b"abcdef"

# Every byte any SUTO message may contain; anything else (control bytes,
# spaces, non-ASCII) is reported as BAD_CHARACTER wherever it appears.
ALPHABET = _LETTERS_DIGITS + b"./_$=,@+-"
OUTSIDE_ALPHABET = "a byte outside the SUTO alphabet"


def _byte_class(allowed: bytes) -> bytes:
    """
    @return: a regular expression class matching one of the bytes in
        C{allowed}.
    """
    return b"[" + b"".join(re.escape(bytes([byte])) for byte in allowed) + b"]"


def reject(byte: int, code: str, detail: str) -> ProtocolError:
    """
    The error for finding C{byte} where it does not belong: C{code}, unless
    no SUTO message may contain that byte at all.
    """
    if byte not in ALPHABET:
        return ProtocolError(ERROR_BAD_CHARACTER, OUTSIDE_ALPHABET)
    return ProtocolError(code, detail)


@dataclass(frozen=True)
class Field:
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
    ) -> int | NeedData:
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
                raise reject(byte, ERROR_BAD_FIELD, f"bad {self.name}")
            return end
        if end - start == self.max_length and not bounded:
            return end
        if not final:
            return NEED_DATA
        if end - start < self.min_length:
            raise ProtocolError(ERROR_BAD_FIELD, f"{self.name} is too short")
        return end


@dataclass(frozen=True, kw_only=True)
class Base64Field(Field):
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


def base64_field(name: str, min_bytes: int, max_bytes: int) -> Base64Field:
    """
    A L{Base64Field} whose text is as long as its byte bounds allow: four
    characters for every three bytes or part of them.
    """
    return Base64Field(
        name,
        (),
        _BASE64,
        -(-min_bytes // 3) * 4,
        -(-max_bytes // 3) * 4,
        bytes,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
    )


USER = Field(
    "user", (_LETTERS_DIGITS + b"._",), _LETTERS_DIGITS + b"._-", 0, 63
)
HOST = Field("host", (), _LETTERS_DIGITS + b".-", 1, 253)
SALT = Field("salt", (b"$",), _CRYPT64 + b"$=,", 1, 79)
_SHA512_PREFIX = (b"$", b"6", b"$")
RSALT = Field("rsalt", _SHA512_PREFIX, _CRYPT64, 16, 16)
HASH = Field(
    "hash", _SHA512_PREFIX + (_CRYPT64,) * 16 + (b"$",), _CRYPT64, 86, 86
)
VERSION = Field("version", (_DIGITS[1:],), _DIGITS, 0, 2, int)
CODE = Field(
    "code", (), string.ascii_uppercase.encode("ascii") + _DIGITS + b"_", 1, 32
)
KEY_ID = Field("key_id", (), _HEX, 32, 32)
# A 64-byte plaintext (fingerprint hash and random bytes) and its 16-byte
# tag.
ENROLL_DATA = base64_field("sealed", 80, 80)
# A sealed confirmation: a 16-byte tag and at most 48 bytes of plaintext,
# enough for the 32 digits of a key id (enrollment) or a short word
# (rotation), with room for a longer one.
CONFIRMATION = base64_field("sealed", 16, 64)
# Rotation inputs: the client's 32 bytes of junk, and an X25519 public key.
JUNK = base64_field("junk", 32, 32)
PUBLIC = base64_field("public", 32, 32)
# A check packet's fresh nonce, and the agent's proof that it holds the
# profile's key.
NONCE = base64_field("nonce", 16, 16)
PROOF = base64_field("proof", 16, 16)
_ENROLL_DATA_USER_PREFIX = "DATA_"
# The server's clock, whole POSIX seconds: up to 12 digits, no leading
# zero (enough until the year 33658).
SECONDS = Field("seconds", (_DIGITS[1:],), _DIGITS, 0, 11, int)
# The length of its offline time steps, in seconds: 1 to 99999.
STEP = Field("step", (_DIGITS[1:],), _DIGITS, 0, 4, int)
# The reconnecting client's 32 bytes of junk sealed under its offline key,
# with their 16-byte tag.
RECONNECT_DATA = base64_field("sealed", 48, 48)
# The server's next X25519 public key (32 bytes) and its 16-byte tag.
PRIMED_SHARE = base64_field("sealed", 48, 48)


def require(value: object, grammar: Field) -> None:
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
    return USER.accepts(name)


def is_valid_host(name: object) -> bool:
    """
    Can C{name} travel as the host of a hello (C{SUTO_<user>@<host>+})?
    """
    return HOST.accepts(name)


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
