# -*- test-case-name: tests.machines.test_enrollment,tests.machines.test_spec -*-
"""
The server's side of an enrollment conversation, as a sans-IO state
machine (docs/PROTOCOL.md §6.4 and §8).

The protocol has already checked the window (right user, right place, in
time) before this machine exists, and sends what L{EnrollmentConversation.start}
returns: the window's salt and a fresh random salt.  From there::

    awaiting_hash  --hash-->      verifying       (asks to verify)
    verifying      --verified-->  awaiting_data   (sends AUTH_1)
    verifying      --refused-->   done            (sends AUTH_0, counts a failure)
    awaiting_data  --data-->      completing      (asks to derive and commit)
    completing     --completed--> done            (sends ENROLLED)
    completing     --rejected-->  done            (sends ERROR_BAD_SEAL or WINDOW_CLOSED)
    any            --cancel-->    done            (closes)
    any            --unexpected / violation--> done (sends ERROR_<CODE>)
    any            --an answer nothing asked for--> done (sends ERROR_BUSY)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from suto_server.core import wire
from suto_server.core.machine import Close, Send, Table
from suto_server.machines.classic import Verify
from suto_server.machines.phase import VIOLATION, PhaseMachine


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


#: The states.
AWAITING_HASH = "awaiting_hash"  # The salts went out; waiting for CF_HASH.
VERIFYING = "verifying"  # The one-time password response is being checked.
AWAITING_DATA = "awaiting_data"  # AUTH_1 went out; waiting for ENROLL_DATA.
COMPLETING = "completing"  # The first key is being derived and committed.
DONE = "done"  # The conversation is over.

STATES = (AWAITING_HASH, VERIFYING, AWAITING_DATA, COMPLETING, DONE)

#: The inputs.
HASH = "hash"  # SUTO_CF_HASH_.
DATA = "data"  # SUTO_C_ENROLL_DATA_.
CANCEL = "cancel"  # The person gave up on the device.
VERIFIED = "verified"  # The response matched the window's password.
REFUSED = "refused"  # The response did not match.
COMPLETED = "completed"  # The profile is committed.
REJECTED = "rejected"  # The data did not open, or the window is gone.
UNEXPECTED = "unexpected"  # A well-formed message with no place here.
LOST = "lost"  # The connection ended.

INPUTS = (
    HASH,
    DATA,
    CANCEL,
    VERIFIED,
    REFUSED,
    COMPLETED,
    REJECTED,
    UNEXPECTED,
    VIOLATION,
    LOST,
)


class EnrollmentConversation(PhaseMachine):
    """
    @param salt: the setting of the window's one-time password hash.
    @param make_rsalt: returns a fresh random salt.
    """

    __slots__ = ("_salt", "_rsalt", "_response", "_sealed", "_answer")

    def __init__(self, salt: str, make_rsalt: Callable[[], str]) -> None:
        super().__init__()
        self._salt = salt
        self._rsalt = make_rsalt()
        self._response: str | None = None
        self._sealed: bytes | None = None
        self._answer: tuple = ()

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
            return self._input(HASH)
        if isinstance(message, wire.EnrollData):
            self._sealed = message.sealed
            return self._input(DATA)
        if isinstance(message, wire.AuthCancelled):
            return self._input(CANCEL)
        return self._input(UNEXPECTED)

    def verified(self, ok: bool) -> list:
        return self._input(VERIFIED if ok else REFUSED)

    def completed(self, key_id: str, confirmation: bytes) -> list:
        self._answer = (key_id, confirmation)
        return self._input(COMPLETED)

    def rejected(self, reason: str) -> list:
        """
        The domain refused the data (C{bad_seal}) or the window is gone.
        """
        code = wire.ERROR_BAD_SEAL if reason == "bad_seal" else wire.ERROR_WINDOW_CLOSED
        self._error = wire.ProtocolError(code, reason)
        return self._input(REJECTED)

    def connection_lost(self) -> list:
        """
        The connection ended; an enrollment under way is abandoned.
        """
        return self._input(LOST)

    def unavailable(self, reason: str) -> list:
        """
        The response could not be checked (hash pool saturated).
        """
        return self.protocol_error(wire.ProtocolError(wire.ERROR_BUSY, reason))

    # Outputs.

    def _ask_verify(self):
        self._actions.append(Verify(self._rsalt, self._response))
        self._response = None

    def _send_auth_ok(self):
        self._actions.append(Send(wire.Auth(True)))

    def _deny(self):
        self._actions += [
            Send(wire.Auth(False)),
            Close(),
            Fail("wrong_password", counted=True),
        ]

    def _ask_complete(self):
        self._actions.append(Complete(self._sealed))
        self._sealed = None

    def _send_enrolled(self):
        key_id, confirmation = self._answer
        self._actions += [Send(wire.Enrolled(key_id, confirmation)), Close()]

    def _send_rejection(self):
        # The domain already recorded why.
        self._actions += [Send(wire.Error(self._error.code)), Close()]

    def _end_cancelled(self):
        self._actions += [Close(), Fail("cancelled", counted=False)]

    def _report_violation(self):
        self._actions += [
            Send(wire.Error(self._error.code)),
            Close(),
            Fail(f"protocol error: {self._error.code}", counted=False),
        ]

    def _record_lost(self):
        self._actions.append(Fail("connection lost", counted=False))


_S = EnrollmentConversation
_VIOLATION = (_S._report_violation,)
_MESSAGES = (HASH, DATA, CANCEL, UNEXPECTED)
_OPEN = (AWAITING_HASH, VERIFYING, AWAITING_DATA, COMPLETING)
_UNASKED = (_S._report_unasked, _S._report_violation)

#: Every transition, in the order of docs/PROTOCOL.md §6.4.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((AWAITING_HASH,), (HASH,), VERIFYING, (_S._ask_verify,)),
        ((VERIFYING,), (VERIFIED,), AWAITING_DATA, (_S._send_auth_ok,)),
        ((VERIFYING,), (REFUSED,), DONE, (_S._deny,)),
        ((AWAITING_DATA,), (DATA,), COMPLETING, (_S._ask_complete,)),
        ((COMPLETING,), (COMPLETED,), DONE, (_S._send_enrolled,)),
        ((COMPLETING,), (REJECTED,), DONE, (_S._send_rejection,)),
        ((AWAITING_HASH, AWAITING_DATA), (CANCEL,), DONE, (_S._end_cancelled,)),
        ((AWAITING_HASH,), (DATA, UNEXPECTED), DONE, _VIOLATION),
        ((AWAITING_DATA,), (HASH, UNEXPECTED), DONE, _VIOLATION),
        (
            (VERIFYING, COMPLETING),
            _MESSAGES,
            DONE,
            (_S._report_pipelined, _S._report_violation),
        ),
        (_OPEN, (VIOLATION,), DONE, _VIOLATION),
        (_OPEN, (LOST,), DONE, (_S._record_lost,)),
        (
            (AWAITING_HASH, AWAITING_DATA),
            (VERIFIED, REFUSED, COMPLETED, REJECTED),
            DONE,
            _UNASKED,
        ),
        ((VERIFYING,), (COMPLETED, REJECTED), DONE, _UNASKED),
        ((COMPLETING,), (VERIFIED, REFUSED), DONE, _UNASKED),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
EnrollmentConversation.TABLE = TRANSITIONS
del _S
