# -*- test-case-name: tests.core.test_wire -*-
"""
The one error a misbehaving peer causes, and its machine-readable codes.

Every way of breaking the wire format (and the few ways of breaking the
protocol's order that the connection reports) ends in a L{ProtocolError}
carrying one of the C{ERROR_*} codes below; framed peers receive the code
as C{SUTO_ERROR_<code>}.  Its message never quotes the offending input,
which may be secret.
"""

from __future__ import annotations

import math

ERROR_UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"
ERROR_TOO_LONG = "TOO_LONG"
ERROR_BAD_CHARACTER = "BAD_CHARACTER"
ERROR_BAD_FIELD = "BAD_FIELD"
ERROR_OUT_OF_ORDER = "OUT_OF_ORDER"
ERROR_PIPELINED = "PIPELINED"
ERROR_BAD_VERSION = "BAD_VERSION"
ERROR_TIMEOUT = "TIMEOUT"
ERROR_BAD_SEAL = "BAD_SEAL"
# A classic request answering no pending authentication.
ERROR_NO_REQUEST = "NO_REQUEST"
# The enrollment window closed after SUTO_AUTH_1.
ERROR_WINDOW_CLOSED = "WINDOW_CLOSED"
# The response could not be checked right now.
ERROR_BUSY = "BUSY"
# No profile of that user holds the key a rotation names: one answer
# whether or not the profile exists, so that profiles cannot be probed.
ERROR_UNKNOWN_KEY = "UNKNOWN_KEY"
# The client's rotation acknowledgement did not open under the new key.
ERROR_ROTATION_FAILED = "ROTATION_FAILED"
# The source is refused for failed attempts; sent only after the TLS
# handshake, with the seconds left: PENALTY_<seconds> (penalty_code).
ERROR_PENALTY = "PENALTY"

#: The most seconds a penalty code names: seven digits keep the code
#: within the grammar's 32 characters.
_MAX_PENALTY_SECONDS = 9_999_999


def penalty_code(seconds: float) -> str:
    """
    @return: the code telling a penalised source to wait C{seconds},
        rounded up to whole seconds, at least 1.
    """
    whole = max(1, min(math.ceil(seconds), _MAX_PENALTY_SECONDS))
    return f"{ERROR_PENALTY}_{whole}"


def penalty_seconds(code: str) -> int | None:
    """
    @return: the seconds a L{penalty_code} names, or L{None} when C{code}
        is not one.
    """
    prefix = f"{ERROR_PENALTY}_"
    digits = code[len(prefix):] if code.startswith(prefix) else ""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 7):
        return None
    return int(digits)


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
