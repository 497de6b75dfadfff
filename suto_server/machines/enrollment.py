"""
The server's side of an enrollment conversation, as a sans-IO state
machine (see docs/PROTOCOL.md, "Enrollment").

The protocol has already checked the window (right user, right place, in
time) before this machine exists, and sends what L{EnrollmentSession.start}
returns: the window's salt and a fresh random salt.  From there::

    awaiting_hash  --hash-->      verifying       (asks to verify)
    verifying      --verified-->  awaiting_data   (sends AUTH_1)
    verifying      --refused-->   done            (sends AUTH_0, counts a failure)
    awaiting_data  --data-->      completing      (asks to derive and commit)
    completing     --completed--> done            (sends ENROLLED)
    completing     --rejected-->  done            (sends ERROR_BAD_SEAL or WINDOW_CLOSED)
    any            --cancel-->    done            (closes)
    any            --unexpected / violation--> done (sends ERROR_<CODE>)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from automat import MethodicalMachine

from suto_server.core import wire
from suto_server.machines.classic import Close, Send, Verify


@dataclass(frozen=True)
class Complete:
    """Open C{sealed}, derive the first key and commit the profile."""

    sealed: bytes

    def __repr__(self) -> str:
        return f"Complete(<{len(self.sealed)} bytes>)"


@dataclass(frozen=True)
class Fail:
    """
    Record the failure in the audit log; C{counted} failures also count
    against the window's attempts.
    """

    reason: str
    counted: bool


class EnrollmentSession:
    """
    @param salt: the setting of the window's one-time password hash.
    @param make_rsalt: returns a fresh random salt.
    """

    _machine = MethodicalMachine()

    def __init__(self, salt: str, make_rsalt: Callable[[], str]) -> None:
        self._salt = salt
        self._rsalt = make_rsalt()
        self._response: str | None = None
        self._sealed: bytes | None = None
        self._error: wire.ProtocolError | None = None
        self._answer: tuple = ()
        self._actions: list = []

    def start(self) -> list:
        """
        The first reply: both salts.
        """
        return [Send(wire.SaltA(self._salt, self._rsalt))]

    def receive(self, message) -> list:
        self._error = wire.ProtocolError(
            wire.ERROR_OUT_OF_ORDER,
            f"{type(message).__name__} is not expected at this point",
        )
        if isinstance(message, wire.CFHash):
            self._response = message.hash
            self._hash()
        elif isinstance(message, wire.EnrollData):
            self._sealed = message.sealed
            self._data()
        elif isinstance(message, wire.AuthCancelled):
            self._cancel()
        else:
            self._unexpected()
        return self._take()

    def verified(self, ok: bool) -> list:
        if ok:
            self._verified()
        else:
            self._refused()
        return self._take()

    def completed(self, key_id: str, confirmation: bytes) -> list:
        self._answer = (key_id, confirmation)
        self._completed()
        return self._take()

    def rejected(self, reason: str) -> list:
        """
        The domain refused the data (C{bad_seal}) or the window is gone.
        """
        code = wire.ERROR_BAD_SEAL if reason == "bad_seal" else wire.ERROR_WINDOW_CLOSED
        self._error = wire.ProtocolError(code, reason)
        self._rejected()
        return self._take()

    def connection_lost(self) -> list:
        """
        The connection ended; an enrollment under way is abandoned.
        """
        self._lost()
        return self._take()

    def unavailable(self, reason: str) -> list:
        """
        The response could not be checked (hash pool saturated).
        """
        return self.protocol_error(wire.ProtocolError(wire.ERROR_BUSY, reason))

    def protocol_error(self, error: wire.ProtocolError) -> list:
        self._error = error
        self._violation()
        return self._take()

    def _take(self) -> list:
        actions, self._actions = self._actions, []
        return actions

    @_machine.state(initial=True)
    def awaiting_hash(self):
        "The salts went out; waiting for SUTO_CF_HASH_."

    @_machine.state()
    def verifying(self):
        "The one-time password response is being checked."

    @_machine.state()
    def awaiting_data(self):
        "SUTO_AUTH_1 went out; waiting for the sealed fingerprint and random data."

    @_machine.state()
    def completing(self):
        "The first key is being derived and committed."

    @_machine.state()
    def done(self):
        "The conversation is over."

    @_machine.input()
    def _hash(self):
        "SUTO_CF_HASH_ arrived."

    @_machine.input()
    def _data(self):
        "SUTO_C_ENROLL_DATA_ arrived."

    @_machine.input()
    def _cancel(self):
        "The person gave up on the device."

    @_machine.input()
    def _verified(self):
        "The response matched the window's password."

    @_machine.input()
    def _refused(self):
        "The response did not match."

    @_machine.input()
    def _completed(self):
        "The profile is committed."

    @_machine.input()
    def _rejected(self):
        "The data did not open, or the window is gone."

    @_machine.input()
    def _unexpected(self):
        "A well-formed message with no place here."

    @_machine.input()
    def _violation(self):
        "Bad bytes, or silence."

    @_machine.input()
    def _lost(self):
        "The connection ended."

    @_machine.output()
    def _ask_verify(self):
        self._actions.append(Verify(self._rsalt, self._response))
        self._response = None

    @_machine.output()
    def _send_auth_ok(self):
        self._actions.append(Send(wire.Auth(True)))

    @_machine.output()
    def _deny(self):
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Fail("wrong_password", counted=True),
        ]

    @_machine.output()
    def _ask_complete(self):
        self._actions.append(Complete(self._sealed))
        self._sealed = None

    @_machine.output()
    def _send_enrolled(self):
        key_id, confirmation = self._answer
        self._actions += [Send(wire.Enrolled(key_id, confirmation)), Close()]

    @_machine.output()
    def _send_rejection(self):
        # The domain already recorded why.
        self._actions += [Send(wire.Error(self._error.code)), Close()]

    @_machine.output()
    def _end_cancelled(self):
        self._actions += [Close(), Fail("cancelled", counted=False)]

    @_machine.output()
    def _report_violation(self):
        self._answer_violation()

    def _answer_violation(self) -> None:
        self._actions += [
            Send(wire.Error(self._error.code)),
            Close(),
            Fail(f"protocol error: {self._error.code}", counted=False),
        ]

    @_machine.output()
    def _record_lost(self):
        self._actions.append(Fail("connection lost", counted=False))

    @_machine.output()
    def _report_pipelined(self):
        self._error = wire.ProtocolError(
            wire.ERROR_PIPELINED, "a message arrived before the reply"
        )
        self._answer_violation()

    @_machine.output()
    def _ignore(self):
        "Nothing follows the end."

    awaiting_hash.upon(_hash, enter=verifying, outputs=[_ask_verify])
    awaiting_hash.upon(_data, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(_cancel, enter=done, outputs=[_end_cancelled])
    awaiting_hash.upon(_unexpected, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(_violation, enter=done, outputs=[_report_violation])
    awaiting_hash.upon(_lost, enter=done, outputs=[_record_lost])

    verifying.upon(_verified, enter=awaiting_data, outputs=[_send_auth_ok])
    verifying.upon(_refused, enter=done, outputs=[_deny])
    for _early in (_hash, _data, _cancel, _unexpected):
        verifying.upon(_early, enter=done, outputs=[_report_pipelined])
    verifying.upon(_violation, enter=done, outputs=[_report_violation])
    verifying.upon(_lost, enter=done, outputs=[_record_lost])

    awaiting_data.upon(_data, enter=completing, outputs=[_ask_complete])
    awaiting_data.upon(_hash, enter=done, outputs=[_report_violation])
    awaiting_data.upon(_cancel, enter=done, outputs=[_end_cancelled])
    awaiting_data.upon(_unexpected, enter=done, outputs=[_report_violation])
    awaiting_data.upon(_violation, enter=done, outputs=[_report_violation])
    awaiting_data.upon(_lost, enter=done, outputs=[_record_lost])

    completing.upon(_completed, enter=done, outputs=[_send_enrolled])
    completing.upon(_rejected, enter=done, outputs=[_send_rejection])
    for _early in (_hash, _data, _cancel, _unexpected):
        completing.upon(_early, enter=done, outputs=[_report_pipelined])
    completing.upon(_violation, enter=done, outputs=[_report_violation])
    completing.upon(_lost, enter=done, outputs=[_record_lost])

    for _late in (
        _hash,
        _data,
        _cancel,
        _verified,
        _refused,
        _completed,
        _rejected,
        _unexpected,
        _violation,
        _lost,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _early, _late
