# -*- test-case-name: tests.core.test_wire -*-
"""
How a SUTO message type is spelled: its type tag, then the fields of
L{suto_server.core.wire.grammar} and literal separators, in order.

Each message type is described once, as a L{Layout}; the decoders read
bytes against those layouts and the encoders write from them, so the two
can never disagree.  A framed line is matched whole, all its fields at
once, before any field is measured (L{Layout.read}); only a line that does
not match is walked part by part, to say what is wrong with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from suto_server.core.wire.errors import (
    ERROR_BAD_FIELD,
    ERROR_UNKNOWN_MESSAGE,
    ProtocolError,
)
from suto_server.core.wire.grammar import NEED_DATA, Field, NeedData, reject


@dataclass(frozen=True)
class Layout:
    """
    How one message type is spelled: a type tag, then fields and literal
    separators in order.

    @ivar constants: attribute values the tag itself stands for (C{ok} in
        C{SUTO_AUTH_1}).
    """

    tag: bytes
    kind: type
    parts: tuple[Field | bytes, ...] = ()
    constants: dict = field(default_factory=dict)

    def describes(self, message: object) -> bool:
        return type(message) is self.kind and all(
            getattr(message, name) == value
            for name, value in self.constants.items()
        )

    def encode(self, message: object) -> bytes:
        return self.tag + b"".join(
            part
            if isinstance(part, bytes)
            else part.to_text(getattr(message, part.name)).encode("ascii")
            for part in self.parts
        )

    @cached_property
    def _line(self) -> re.Pattern[bytes] | None:
        """
        The whole of a framed line of this layout after its tag, each field
        a group that takes as many bytes as its grammar lets it, never
        fewer (an atomic group), as L{Field.measure} does.  A line it
        matches is one L{walk} reads field by field to the same texts, as
        long as no field's bytes include the first byte of the separator
        after it (else the walk would stop at a separator the pattern
        takes as the field's); a layout where one does, or where two
        fields meet, has no pattern (L{None}).
        """
        pattern = []
        for index, part in enumerate(self.parts):
            if isinstance(part, bytes):
                pattern.append(re.escape(part))
                continue
            following = self.parts[index + 1 : index + 2]
            if following and not (
                isinstance(following[0], bytes)
                and following[0][0] not in part.tail
                and all(following[0][0] not in allowed for allowed in part.head)
            ):
                return None
            pattern.append(b"(?>(" + part._whole.pattern + b"))")
        return re.compile(b"".join(pattern))

    @cached_property
    def _fields(self) -> tuple[Field, ...]:
        """
        The fields of L{parts}, in order: what the groups of L{_line} are.
        """
        return tuple(part for part in self.parts if not isinstance(part, bytes))

    def read(
        self, data: bytes, start: int, final: bool
    ) -> tuple[object, int] | NeedData:
        """
        Read the message that starts with this layout's tag at
        C{data[start]}.

        A framed line (C{final}) is matched whole first, in one regular
        expression (L{_line}): nearly every line a peer sends is valid,
        and the match costs a fraction of the walk.  A line it does not
        match is walked (L{walk}), which says what is wrong with it; the
        two agree on every line (tests/core/test_wire.py).

        @param final: whether C{data} ends with the message (a framed line)
            rather than being the start of a stream.
        @return: the message and the index just past it, or L{NEED_DATA}.
        @raise ProtocolError: C{data} cannot go on with such a message.
        """
        if final and self._line is not None:
            match = self._line.fullmatch(data, start + len(self.tag))
            if match is not None:
                values = {
                    part.name: part.from_text(text.decode("ascii"))
                    for part, text in zip(self._fields, match.groups())
                }
                return self.kind(**self.constants, **values), len(data)
        return self.walk(data, start, final)

    def walk(
        self, data: bytes, start: int, final: bool
    ) -> tuple[object, int] | NeedData:
        """
        L{read}, part by part: each field measured, each separator
        compared, so that the first byte that cannot go on is the one
        reported.
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
                        raise reject(
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
            raise reject(
                data[position],
                ERROR_BAD_FIELD if self.parts else ERROR_UNKNOWN_MESSAGE,
                "unexpected bytes after the message",
            )
        return self.kind(**self.constants, **values), position
