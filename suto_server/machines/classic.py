"""
The server's side of the classic SUTO salted challenge, as a sans-IO
state machine.

The machine never touches a socket, a clock or a hash: it receives decoded
wire messages and verification results, and answers with a list of
actions (L{Send}, L{Verify}, L{Close}, L{Finish}) that the protocol
carries out.  L{ServerSession.receive} inspects each message and calls
exactly one input of the machine, so the transitions below read as the
protocol table::

    awaiting_request --salt_request--> awaiting_hash    (sends SALTA)
    awaiting_request --rsalt_request--> awaiting_hash   (sends RSALT)
    awaiting_hash --hash--> verifying                   (asks to verify)
    verifying --verified/refused/busy--> done           (sends AUTH_1/0)
    any --cancel--> done                                (peer declined)
    any --violation--> done                             (protocol error)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from automat import MethodicalMachine

from suto_server.core import wire
from suto_server.core.machine import Close, Send
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


class ServerSession:
    """
    One connection's exchange, from the first byte to the verdict.

    @param framing: which framing the listener speaks, which decides how
        a protocol error is answered.  The framed version exchange happens
        before this machine starts.
    @param salt: the setting of the user's stored hash (what
        C{SUTO_SALTA_} carries), or L{None} if the user has no usable
        hash any more (the exchange then ends with C{SUTO_AUTH_0}).
    @param make_rsalt: returns a fresh random salt; injected so tests are
        deterministic.
    """

    _machine = MethodicalMachine()

    def __init__(
        self,
        framing: wire.Framing,
        salt: str | None,
        make_rsalt: Callable[[], str],
    ) -> None:
        self._framing = framing
        self._salt = salt
        self._make_rsalt = make_rsalt
        self._rsalt: str | None = None
        self._response: str | None = None
        self._error: wire.ProtocolError | None = None
        self._error_reason = ""
        self._actions: list = []

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
                self._salt_request_without_hash()
            else:
                self._salt_request()
        elif isinstance(message, wire.GetRSalt):
            self._rsalt_request()
        elif isinstance(message, wire.CFHash):
            self._response = message.hash
            self._hash()
        elif isinstance(message, wire.AuthCancelled):
            self._cancel()
        else:
            self._unexpected()
        return self._take()

    def verified(self, ok: bool) -> list:
        """
        The credentials checker answered: C{ok} is whether the response
        matched.
        """
        if ok:
            self._verified()
        else:
            self._refused()
        return self._take()

    def unavailable(self, reason: str) -> list:
        """
        The check could not be made (hash pool saturated, store error):
        refuse without blaming the user's password.
        """
        self._error_reason = reason
        self._busy()
        return self._take()

    def protocol_error(self, error: wire.ProtocolError) -> list:
        """
        The decoder (or a timeout) found the peer misbehaving.
        """
        self._error = error
        self._violation()
        return self._take()

    def _take(self) -> list:
        actions, self._actions = self._actions, []
        return actions

    # States.

    @_machine.state(initial=True)
    def awaiting_request(self):
        "Waiting for SUTO_C_GET_SALTA or SUTO_C_GET_RSALT."

    @_machine.state()
    def awaiting_hash(self):
        "The salts went out; waiting for SUTO_CF_HASH_."

    @_machine.state()
    def verifying(self):
        "The response is being checked; the peer must wait (lockstep)."

    @_machine.state()
    def done(self):
        "A verdict was reached; the connection is closing."

    # Inputs.

    @_machine.input()
    def _salt_request(self):
        "SUTO_C_GET_SALTA arrived."

    @_machine.input()
    def _salt_request_without_hash(self):
        "SUTO_C_GET_SALTA arrived, but the user has no usable hash."

    @_machine.input()
    def _rsalt_request(self):
        "SUTO_C_GET_RSALT arrived."

    @_machine.input()
    def _hash(self):
        "SUTO_CF_HASH_ arrived."

    @_machine.input()
    def _cancel(self):
        "SUTO_AUTH_CANCELLED arrived: the person declined on the device."

    @_machine.input()
    def _verified(self):
        "The response matched."

    @_machine.input()
    def _refused(self):
        "The response did not match."

    @_machine.input()
    def _busy(self):
        "The response could not be checked."

    @_machine.input()
    def _unexpected(self):
        "A well-formed message that has no place in the exchange."

    @_machine.input()
    def _violation(self):
        "The bytes were bad, or the peer went silent."

    # Outputs.

    @_machine.output()
    def _send_salts(self):
        self._rsalt = self._make_rsalt()
        self._actions.append(Send(wire.SaltA(self._salt, self._rsalt)))

    @_machine.output()
    def _send_rsalt(self):
        self._rsalt = self._make_rsalt()
        self._actions.append(Send(wire.RSalt(self._rsalt)))

    @_machine.output()
    def _ask_verify(self):
        self._actions.append(Verify(self._rsalt, self._response))
        self._response = None

    @_machine.output()
    def _accept(self):
        self._actions += [
            Send(wire.Auth(True)),
            Close(),
            Finish(Verdict.ACCEPTED),
        ]

    @_machine.output()
    def _reject(self):
        self._deny("wrong response")

    @_machine.output()
    def _reject_without_hash(self):
        self._deny("the user has no usable password hash")

    @_machine.output()
    def _report_pipelined(self):
        self._error = wire.ProtocolError(
            wire.ERROR_PIPELINED, "a message arrived before the verdict"
        )
        self._answer_violation()

    @_machine.output()
    def _reject_unavailable(self):
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Finish(Verdict.ERROR, self._error_reason),
        ]

    @_machine.output()
    def _end_cancelled(self):
        self._actions += [
            Close(),
            Finish(Verdict.CANCELLED, "the person declined on the device"),
        ]

    @_machine.output()
    def _report_violation(self):
        self._answer_violation()

    def _answer_violation(self) -> None:
        error = self._error
        if self._framing is wire.Framing.FRAMED:
            answer = wire.Error(error.code)
        else:
            answer = wire.Auth(False)
        self._actions += [
            Send(answer),
            Close(),
            Finish(Verdict.ERROR, f"protocol error: {error.code}"),
        ]

    @_machine.output()
    def _ignore(self):
        "Nothing more is sent once a verdict is out."

    def _deny(self, reason: str) -> None:
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Finish(Verdict.REJECTED, reason),
        ]

    # Transitions: the protocol as a table.


    awaiting_request.upon(
        _salt_request, enter=awaiting_hash, outputs=[_send_salts]
    )
    awaiting_request.upon(
        _salt_request_without_hash, enter=done, outputs=[_reject_without_hash]
    )
    awaiting_request.upon(
        _rsalt_request, enter=awaiting_hash, outputs=[_send_rsalt]
    )
    awaiting_request.upon(_hash, enter=done, outputs=[_report_violation])
    awaiting_request.upon(_cancel, enter=done, outputs=[_end_cancelled])
    awaiting_request.upon(_unexpected, enter=done, outputs=[_report_violation])
    awaiting_request.upon(_violation, enter=done, outputs=[_report_violation])

    awaiting_hash.upon(_hash, enter=verifying, outputs=[_ask_verify])
    awaiting_hash.upon(_cancel, enter=done, outputs=[_end_cancelled])
    awaiting_hash.upon(_salt_request, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(_rsalt_request, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(
        _salt_request_without_hash, enter=done, outputs=[_report_violation]
    )
    awaiting_hash.upon(_unexpected, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(_violation, enter=done, outputs=[_report_violation])

    verifying.upon(_verified, enter=done, outputs=[_accept])
    verifying.upon(_refused, enter=done, outputs=[_reject])
    verifying.upon(_busy, enter=done, outputs=[_reject_unavailable])
    for _early in (
        _salt_request,
        _salt_request_without_hash,
        _rsalt_request,
        _hash,
        _cancel,
        _unexpected,
    ):
        verifying.upon(_early, enter=done, outputs=[_report_pipelined])
    verifying.upon(_violation, enter=done, outputs=[_report_violation])

    for _late in (
        _salt_request,
        _salt_request_without_hash,
        _rsalt_request,
        _hash,
        _cancel,
        _verified,
        _refused,
        _busy,
        _unexpected,
        _violation,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _early, _late
