# -*- test-case-name: tests.core.test_wire -*-
"""
The SUTO wire format: typed messages, and decoders and encoders that do no
I/O.

This package is the codec's documented API; callers write
C{from suto_server.core import wire} and C{wire.X}.  Its modules, from the
bottom up:

  - L{errors}: L{ProtocolError}, the one error a misbehaving peer causes,
    and its codes;
  - L{grammar}: the fields every message is built from, how a message type
    is spelled from them, and the name rules (L{is_valid_user},
    L{is_valid_host}, L{can_enroll}) that follow from them;
  - L{messages}: the immutable typed messages of a TCP connection;
  - L{stream}: the TCP codec, L{Decoder} and L{encode}, in either
    L{Framing}, with a receive buffer under a hard cap;
  - L{datagram}: the UDP hellos and check packets, and their codec.
"""

from suto_server.core.wire.datagram import (
    Check,
    CheckProof,
    Hello,
    HelloForm,
    encode_check,
    encode_check_proof,
    encode_hello,
    parse_datagram,
    parse_hello,
)
from suto_server.core.wire.errors import (
    ERROR_BAD_CHARACTER,
    ERROR_BAD_FIELD,
    ERROR_BAD_SEAL,
    ERROR_BAD_VERSION,
    ERROR_BUSY,
    ERROR_NO_REQUEST,
    ERROR_OUT_OF_ORDER,
    ERROR_PENALTY,
    ERROR_PIPELINED,
    ERROR_ROTATION_FAILED,
    ERROR_TIMEOUT,
    ERROR_TOO_LONG,
    ERROR_UNKNOWN_KEY,
    ERROR_UNKNOWN_MESSAGE,
    ERROR_WINDOW_CLOSED,
    ProtocolError,
    penalty_code,
    penalty_seconds,
)
from suto_server.core.wire.grammar import (
    NEED_DATA,
    can_enroll,
    is_valid_host,
    is_valid_user,
)
from suto_server.core.wire.messages import (
    PRIMED_SINCE,
    PROTOCOL_VERSION,
    PROTOCOL_VERSIONS,
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
from suto_server.core.wire.stream import (
    MAX_LEGACY_BUFFER,
    MAX_LINE,
    Decoder,
    Framing,
    Message,
    encode,
)

__all__ = [
    "ERROR_BAD_CHARACTER",
    "ERROR_BAD_FIELD",
    "ERROR_BAD_SEAL",
    "ERROR_BAD_VERSION",
    "ERROR_BUSY",
    "ERROR_NO_REQUEST",
    "ERROR_OUT_OF_ORDER",
    "ERROR_PENALTY",
    "ERROR_PIPELINED",
    "ERROR_ROTATION_FAILED",
    "ERROR_TIMEOUT",
    "ERROR_TOO_LONG",
    "ERROR_UNKNOWN_KEY",
    "ERROR_UNKNOWN_MESSAGE",
    "ERROR_WINDOW_CLOSED",
    "MAX_LEGACY_BUFFER",
    "MAX_LINE",
    "NEED_DATA",
    "PRIMED_SINCE",
    "PROTOCOL_VERSION",
    "PROTOCOL_VERSIONS",
    "Auth",
    "AuthCancelled",
    "CFHash",
    "Check",
    "CheckProof",
    "Decoder",
    "Enroll",
    "EnrollData",
    "Enrolled",
    "Error",
    "Framing",
    "GetRSalt",
    "GetSaltA",
    "GetTime",
    "Hello",
    "HelloForm",
    "Message",
    "ProtocolError",
    "RSalt",
    "Reconnect",
    "ReconnectOk",
    "Rotate",
    "RotateAck",
    "RotateDone",
    "RotateDoneNext",
    "RotateOk",
    "RotatePrimed",
    "SaltA",
    "ServerTime",
    "VerifyChallenge",
    "VerifyProof",
    "Version",
    "can_enroll",
    "encode",
    "encode_check",
    "encode_check_proof",
    "encode_hello",
    "is_valid_host",
    "is_valid_user",
    "parse_datagram",
    "parse_hello",
    "penalty_code",
    "penalty_seconds",
]
