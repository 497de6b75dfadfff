# -*- test-case-name: tests.machines.test_classic,tests.machines.test_spec -*-
"""
The server's side of the classic SUTO salted challenge, as a sans-IO
state machine (docs/PROTOCOL.md §6.1).

The machine never touches a socket, a clock or a hash: it receives decoded
wire messages and verification results, and answers with a list of
actions (L{Send}, L{Verify}, L{Close}, L{Finish}) that the protocol
carries out.  L{ClassicConversation.receive} inspects each message and feeds
exactly one input, so the table at the end of the module reads as the
protocol::

    awaiting_request --salt_request--> awaiting_hash    (sends SALTA)
    awaiting_request --rsalt_request--> awaiting_hash   (sends RSALT)
    awaiting_hash --hash--> verifying                   (asks to verify)
    verifying --verified/refused/busy--> done           (sends AUTH_1/0)
    any --cancel--> done                                (peer declined)
    any --violation--> done                             (protocol error)
    any --an answer nothing asked for--> done           (BUSY)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from suto_server.core import wire
from suto_server.core.machine import Close, Send, Table
from suto_server.machines.phase import VIOLATION, PhaseMachine
from suto_server.rules.rendezvous import Verdict


@dataclass(frozen=True)
class Verify:
    """Check C{response} against the user's stored hash and C{rsalt}."""

    rsalt: str
    response: str

    def __repr__(self) -> str:
        return f"Verify(rsalt=<{len(self.rsalt)} chars>, response=<redacted>)"


@dataclass(frozen=True)
class Finish:
    """The request this connection answers has ended with C{verdict}."""

    verdict: Verdict
    reason: str = ""


#: The states.
AWAITING_REQUEST = "awaiting_request"  # Waiting for GET_SALTA or GET_RSALT.
AWAITING_HASH = "awaiting_hash"  # The salts went out; waiting for CF_HASH.
VERIFYING = "verifying"  # The response is being checked (lockstep).
DONE = "done"  # A verdict was reached; the connection is closing.

STATES = (AWAITING_REQUEST, AWAITING_HASH, VERIFYING, DONE)

#: The inputs.
SALT_REQUEST = "salt_request"  # SUTO_C_GET_SALTA.
# SUTO_C_GET_SALTA, but the user has no usable hash.
SALT_REQUEST_WITHOUT_HASH = "salt_request_without_hash"
RSALT_REQUEST = "rsalt_request"  # SUTO_C_GET_RSALT.
HASH = "hash"  # SUTO_CF_HASH_.
CANCEL = "cancel"  # SUTO_AUTH_CANCELLED: the person declined on the device.
VERIFIED = "verified"  # The response matched.
REFUSED = "refused"  # The response did not match.
BUSY = "busy"  # The response could not be checked.
UNEXPECTED = "unexpected"  # A well-formed message with no place here.

INPUTS = (
    SALT_REQUEST,
    SALT_REQUEST_WITHOUT_HASH,
    RSALT_REQUEST,
    HASH,
    CANCEL,
    VERIFIED,
    REFUSED,
    BUSY,
    UNEXPECTED,
    VIOLATION,
)


class ClassicConversation(PhaseMachine):
    """
    One connection's classic conversation, from the first byte to the
    verdict.

    @param framing: which framing the listener speaks, which decides how
        a protocol error is answered.  The framed version exchange happens
        before this machine starts.
    @param salt: the setting of the user's stored hash (what
        C{SUTO_SALTA_} carries), or L{None} if the user has no usable
        hash any more (the conversation then ends with C{SUTO_AUTH_0}).
    @param make_rsalt: returns a fresh random salt; injected so tests are
        deterministic.
    """

    __slots__ = (
        "_framing",
        "_salt",
        "_make_rsalt",
        "_rsalt",
        "_response",
        "_error_reason",
    )

    def __init__(
        self,
        framing: wire.Framing,
        salt: str | None,
        make_rsalt: Callable[[], str],
    ) -> None:
        super().__init__()
        self._framing = framing
        self._salt = salt
        self._make_rsalt = make_rsalt
        self._rsalt: str | None = None
        self._response: str | None = None
        self._error_reason = ""

    # What the protocol calls.

    def receive(self, message) -> list:
        """
        Feed one decoded message; return the actions it causes.
        """
        # Whatever arrives where the table has no place for it is out of
        # order; the machine picks this error up in that case only.
        self._error = wire.ProtocolError(
            wire.ERROR_OUT_OF_ORDER,
            f"{type(message).__name__} is not expected at this point",
        )
        if isinstance(message, wire.GetSaltA):
            if self._salt is None:
                return self._input(SALT_REQUEST_WITHOUT_HASH)
            return self._input(SALT_REQUEST)
        if isinstance(message, wire.GetRSalt):
            return self._input(RSALT_REQUEST)
        if isinstance(message, wire.CFHash):
            self._response = message.hash
            return self._input(HASH)
        if isinstance(message, wire.AuthCancelled):
            return self._input(CANCEL)
        return self._input(UNEXPECTED)

    def verified(self, ok: bool) -> list:
        """
        The credentials checker answered: C{ok} is whether the response
        matched.
        """
        return self._input(VERIFIED if ok else REFUSED)

    def unavailable(self, reason: str) -> list:
        """
        The check could not be made (hash pool saturated, store error):
        refuse without blaming the user's password.
        """
        self._error_reason = reason
        return self._input(BUSY)

    # Outputs.

    def _send_salts(self):
        self._rsalt = self._make_rsalt()
        self._actions.append(Send(wire.SaltA(self._salt, self._rsalt)))

    def _send_rsalt(self):
        self._rsalt = self._make_rsalt()
        self._actions.append(Send(wire.RSalt(self._rsalt)))

    def _ask_verify(self):
        self._actions.append(Verify(self._rsalt, self._response))
        self._response = None

    def _accept(self):
        self._actions += [
            Send(wire.Auth(True)),
            Close(),
            Finish(Verdict.ACCEPTED),
        ]

    def _reject(self):
        self._deny("wrong response")

    def _reject_without_hash(self):
        self._deny("the user has no usable password hash")

    def _reject_unavailable(self):
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Finish(Verdict.ERROR, self._error_reason),
        ]

    def _end_cancelled(self):
        self._actions += [
            Close(),
            Finish(Verdict.CANCELLED, "the person declined on the device"),
        ]

    def _report_pipelined(self):
        # Here the reply a message came before is the verdict.
        self._error = wire.ProtocolError(
            wire.ERROR_PIPELINED, "a message arrived before the verdict"
        )

    def _report_violation(self):
        if self._framing is wire.Framing.FRAMED:
            answer = wire.Error(self._error.code)
        else:
            answer = wire.Auth(False)
        self._actions += [
            Send(answer),
            Close(),
            Finish(Verdict.ERROR, f"protocol error: {self._error.code}"),
        ]

    def _deny(self, reason: str) -> None:
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Finish(Verdict.REJECTED, reason),
        ]


_S = ClassicConversation
_VIOLATION = (_S._report_violation,)
_REQUESTS = (SALT_REQUEST, SALT_REQUEST_WITHOUT_HASH, RSALT_REQUEST)
#: The checker's answers, each to the one check L{Verify} asks for.
_ANSWERS = (VERIFIED, REFUSED, BUSY)
_WAITING = (AWAITING_REQUEST, AWAITING_HASH)

#: Every transition, in the order of docs/PROTOCOL.md §6.1.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((AWAITING_REQUEST,), (SALT_REQUEST,), AWAITING_HASH, (_S._send_salts,)),
        (
            (AWAITING_REQUEST,),
            (SALT_REQUEST_WITHOUT_HASH,),
            DONE,
            (_S._reject_without_hash,),
        ),
        ((AWAITING_REQUEST,), (RSALT_REQUEST,), AWAITING_HASH, (_S._send_rsalt,)),
        ((AWAITING_HASH,), (HASH,), VERIFYING, (_S._ask_verify,)),
        ((VERIFYING,), (VERIFIED,), DONE, (_S._accept,)),
        ((VERIFYING,), (REFUSED,), DONE, (_S._reject,)),
        ((VERIFYING,), (BUSY,), DONE, (_S._reject_unavailable,)),
        (_WAITING, (CANCEL,), DONE, (_S._end_cancelled,)),
        ((AWAITING_REQUEST,), (HASH, UNEXPECTED), DONE, _VIOLATION),
        ((AWAITING_HASH,), (*_REQUESTS, UNEXPECTED), DONE, _VIOLATION),
        (
            (VERIFYING,),
            (*_REQUESTS, HASH, CANCEL, UNEXPECTED),
            DONE,
            (_S._report_pipelined, _S._report_violation),
        ),
        ((*_WAITING, VERIFYING), (VIOLATION,), DONE, _VIOLATION),
        (_WAITING, _ANSWERS, DONE, (_S._report_unasked, _S._report_violation)),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
ClassicConversation.TABLE = TRANSITIONS
del _S
