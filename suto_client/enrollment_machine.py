# -*- test-case-name: tests.client.test_enrollment,tests.machines.test_spec -*-
"""
The endpoint's side of enrollment as a sans-IO state machine
(docs/PROTOCOL.md §6.5 and §8): proving a one-time password, sending the
machine's sealed fingerprint hash and random data, and checking that the
server derived the same first key.

L{ClientEnrollment} is in the shape of L{suto_client.classic_machine.ClientClassic}:
it receives decoded wire messages and computed hashes, and answers with
actions (L{Send}, L{ComputeHash}, L{Close}, L{Finish}).
L{ClientEnrollment.receive} inspects each message and feeds exactly one
input, so the table at the end of the module reads as the conversation::

    idle --open--> awaiting_version                   (sends VERSION)
    awaiting_version --version--> awaiting_salts      (sends ENROLL)
    awaiting_salts --salts--> hashing                 (asks for the hash)
    awaiting_salts --refused--> done                  (REJECTED: no window)
    hashing --hashed--> awaiting_verdict              (sends CF_HASH)
    awaiting_verdict --accepted--> awaiting_confirmation   (sends ENROLL_DATA)
    awaiting_verdict --refused--> done                (REJECTED: password)
    awaiting_confirmation --confirmed--> done         (ENROLLED)
    awaiting_confirmation --mismatch--> done          (ERROR: another key)
    any --server_error/violation/lost/hash_failed--> done     (ERROR)
    any --expire--> done                              (TIMEOUT)
    any --abandon--> done                             (ERROR: gave up)
    any --a call out of turn--> done                  (ERROR)

The key material is derived as soon as the hash is known (before the
machine moves), from the salted hash, the fingerprint hash and the random
data; the first key leaves the machine only in the L{Finish} of an
enrollment whose confirmation opened under it and named its key id.
L{suto_client.enrollment} runs it on a connection.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field

from suto_client.classic_machine import ComputeHash
from suto_client.conversation import (
    CANNOT_HASH,
    EXPIRE,
    GIVE_UP,
    HASHED,
    LOST,
    SERVER_ERROR,
    VERSION,
    VIOLATION,
    PasswordConversation,
)
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send, Table

#: What the errors a server may end an enrollment with mean.
_SERVER_ERRORS = {
    "BAD_SEAL": "the server could not open the enrollment data",
    "WINDOW_CLOSED": "the enrollment window closed during the enrollment",
    "BUSY": "the server is busy; try again",
}


def _server_error(code: str) -> str:
    """
    @return: what the person at the device should read for
        C{SUTO_ERROR_<code>}: for a penalty, that and how long to wait.
    """
    seconds = wire.penalty_seconds(code)
    if seconds is not None:
        return (
            f"too many failed attempts from this address: wait {seconds} s "
            f"and try again"
        )
    return f"{_SERVER_ERRORS.get(code, 'the server failed')} ({code})"


class EnrollmentError(ValueError):
    """
    An enrollment cannot start with these inputs: the user name, server
    address, pin, TLS files, password, fingerprint hash or random data is
    malformed.
    The message never contains the password.
    """


class EnrollOutcome(enum.Enum):
    """
    How one enrollment ended.
    """

    ENROLLED = "enrolled"
    REJECTED = "rejected"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Finish:
    """
    The enrollment has ended with C{outcome}; C{reason} is secret-free.
    An enrolled outcome carries the first key and its key id.
    """

    outcome: EnrollOutcome
    reason: str = ""
    key: bytes | None = field(default=None, repr=False)
    key_id: str | None = None


#: The states.
IDLE = "idle"  # Not connected yet.
AWAITING_VERSION = "awaiting_version"  # The server must confirm our version.
AWAITING_SALTS = "awaiting_salts"  # ENROLL went out; SALTA, or AUTH_0.
HASHING = "hashing"  # The hash is being computed (lockstep).
AWAITING_VERDICT = "awaiting_verdict"  # CF_HASH went out; AUTH_1 or AUTH_0.
AWAITING_CONFIRMATION = "awaiting_confirmation"  # ENROLL_DATA went out.
DONE = "done"  # The enrollment has ended; nothing more happens.

STATES = (
    IDLE,
    AWAITING_VERSION,
    AWAITING_SALTS,
    HASHING,
    AWAITING_VERDICT,
    AWAITING_CONFIRMATION,
    DONE,
)

#: The inputs, besides the ones every conversation has.
OPEN = "open"  # Connected to the server.
SALTS_ARRIVED = "salts_arrived"  # SUTO_SALTA_.
ACCEPTED = "accepted"  # SUTO_AUTH_1.
REFUSED = "refused"  # SUTO_AUTH_0.
CONFIRMED = "confirmed"  # SUTO_ENROLLED_, naming our first key.
MISMATCH = "mismatch"  # SUTO_ENROLLED_, not naming our first key.

INPUTS = (
    OPEN,
    VERSION,
    SALTS_ARRIVED,
    HASHED,
    CANNOT_HASH,
    ACCEPTED,
    REFUSED,
    CONFIRMED,
    MISMATCH,
    SERVER_ERROR,
    VIOLATION,
    LOST,
    EXPIRE,
    GIVE_UP,
)


class ClientEnrollment(PasswordConversation):
    """
    One connection's enrollment conversation, from connecting to the
    server's confirmation.

    @param user: the user being enrolled.
    @param fingerprint_hash: this machine's L{keyschedule.FINGERPRINT_SIZE}
        -byte fingerprint hash.
    @param random_data: L{keyschedule.RANDOM_SIZE} fresh random bytes.
    @raise EnrollmentError: an argument is malformed.

    @ivar user: the user being enrolled.
    """

    __slots__ = (
        "user",
        "_request",
        "_fingerprint_hash",
        "_random_data",
        "_salts",
        "_data",
        "_key",
        "_key_id",
    )

    _FINISH = Finish
    _OUTCOME = EnrollOutcome

    def __init__(
        self, user: str, fingerprint_hash: bytes, random_data: bytes
    ) -> None:
        try:
            self._request = wire.Enroll(user)
        except wire.ProtocolError:
            raise EnrollmentError(
                "the user name cannot be enrolled: use letters, digits, "
                "'.', '_' and '-', at most 64 characters, not starting "
                "with 'DATA_'"
            ) from None
        if not (
            isinstance(fingerprint_hash, bytes)
            and len(fingerprint_hash) == keyschedule.FINGERPRINT_SIZE
        ):
            raise EnrollmentError("a fingerprint hash is 32 bytes")
        if not (
            isinstance(random_data, bytes)
            and len(random_data) == keyschedule.RANDOM_SIZE
        ):
            raise EnrollmentError("the random data is 32 bytes")
        super().__init__()
        self.user = user
        self._fingerprint_hash = fingerprint_hash
        self._random_data = random_data
        self._salts: wire.SaltA | None = None
        self._data: wire.EnrollData | None = None
        self._key: bytes | None = None
        self._key_id: str | None = None

    # What the protocol calls.

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        return self._input(OPEN)

    def hashed(self, salted_hash: str, response: str) -> list:
        """
        The hash asked for by L{ComputeHash} is ready: C{salted_hash} is
        C{crypt(password, salt)}, C{response} is C{crypt(salted_hash,
        rsalt)}.  The enrollment data and the first key are derived here,
        so that nothing secret is computed after the server's verdict.
        """
        try:
            self._response = wire.CFHash(response)
        except wire.ProtocolError:
            return self.hash_failed("the computed response is malformed")
        try:
            secret = keyschedule.password_secret(salted_hash, self.user)
            sealed = keyschedule.seal(
                secret,
                self._fingerprint_hash + self._random_data,
                profile=self.user,
                purpose=keyschedule.ENROLL_DATA_PURPOSE,
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
                counter=0,
            )
            self._data = wire.EnrollData(sealed)
            self._key = keyschedule.first_key(
                self._random_data, self._fingerprint_hash, secret, self.user
            )
        except (wire.ProtocolError, keyschedule.KeyScheduleError):
            self._response = self._data = None
            return self.hash_failed("could not derive the enrollment key")
        self._key_id = keyschedule.key_id(self._key)
        return self._input(HASHED)

    def _inspect(self, message) -> list:
        if isinstance(message, wire.SaltA):
            self._salts = message
            return self._input(SALTS_ARRIVED)
        if isinstance(message, wire.Auth):
            return self._input(ACCEPTED if message.ok else REFUSED)
        if isinstance(message, wire.Enrolled):
            return self._input(CONFIRMED if self._confirms(message) else MISMATCH)
        if isinstance(message, wire.Error):
            self._reason = _server_error(message.code)
            return self._input(SERVER_ERROR)
        return self._input(VIOLATION)

    def _confirms(self, message: wire.Enrolled) -> bool:
        """
        Does the server's confirmation open under our first key, and do
        both the sealed key id and the one in the message name that key?
        Both comparisons always run, in constant time.
        """
        if self._key is None:
            return False
        try:
            sealed_id = keyschedule.open_sealed(
                self._key,
                message.sealed,
                profile=self.user,
                purpose=keyschedule.ENROLL_CONFIRM_PURPOSE,
                direction=keyschedule.Direction.SERVER_TO_CLIENT,
                counter=0,
            )
        except keyschedule.SealError:
            return False
        named = message.key_id.encode("ascii")
        ours = self._key_id.encode("ascii")
        return hmac.compare_digest(sealed_id, named) & hmac.compare_digest(
            named, ours
        )

    def _forget(self) -> None:
        # The first key leaves the machine only in an enrolled Finish.
        self._key = None

    # Outputs.

    def _send_enroll(self):
        self._actions.append(Send(self._request))

    def _ask_hash(self):
        salts, self._salts = self._salts, None
        self._actions.append(ComputeHash(salts.salt, salts.rsalt))

    def _send_data(self):
        data, self._data = self._data, None
        self._actions.append(Send(data))

    def _finish_enrolled(self):
        key, self._key = self._key, None
        self._actions += [
            Close(),
            Finish(EnrollOutcome.ENROLLED, "", key, self._key_id),
        ]

    def _finish_no_window(self):
        self._actions += [
            Close(),
            Finish(
                EnrollOutcome.REJECTED,
                "the server refused the enrollment: no open window for "
                "this user from this address, or it expired",
            ),
        ]

    def _finish_wrong_password(self):
        self._actions += [
            Close(),
            Finish(
                EnrollOutcome.REJECTED,
                "the server refused the one-time password",
            ),
        ]

    def _finish_mismatch(self):
        self._actions += [
            Close(),
            self._failed("ERROR", "the server derived a different key"),
        ]


_C = ClientEnrollment
_ERROR = (_C._finish_error,)
_MESSAGES = (VERSION, SALTS_ARRIVED, ACCEPTED, REFUSED, CONFIRMED, MISMATCH)
_OPEN = STATES[:-1]
_OUT_OF_TURN = (_C._report_out_of_turn, _C._finish_error)

#: Every transition, in the order of docs/PROTOCOL.md §6.5.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((IDLE,), (OPEN,), AWAITING_VERSION, (_C._send_version,)),
        ((AWAITING_VERSION,), (VERSION,), AWAITING_SALTS, (_C._send_enroll,)),
        ((AWAITING_SALTS,), (SALTS_ARRIVED,), HASHING, (_C._ask_hash,)),
        ((AWAITING_SALTS,), (REFUSED,), DONE, (_C._finish_no_window,)),
        ((HASHING,), (HASHED,), AWAITING_VERDICT, (_C._send_hash,)),
        ((HASHING,), (CANNOT_HASH,), DONE, _ERROR),
        (
            (AWAITING_VERDICT,),
            (ACCEPTED,),
            AWAITING_CONFIRMATION,
            (_C._send_data,),
        ),
        ((AWAITING_VERDICT,), (REFUSED,), DONE, (_C._finish_wrong_password,)),
        ((AWAITING_CONFIRMATION,), (CONFIRMED,), DONE, (_C._finish_enrolled,)),
        ((AWAITING_CONFIRMATION,), (MISMATCH,), DONE, (_C._finish_mismatch,)),
        # Everything else a server can send at the wrong time is a violation.
        ((IDLE, HASHING), _MESSAGES, DONE, _ERROR),
        ((AWAITING_VERSION,), _MESSAGES[1:], DONE, _ERROR),
        ((AWAITING_SALTS,), (VERSION, ACCEPTED, CONFIRMED, MISMATCH), DONE, _ERROR),
        (
            (AWAITING_VERDICT,),
            (VERSION, SALTS_ARRIVED, CONFIRMED, MISMATCH),
            DONE,
            _ERROR,
        ),
        (
            (AWAITING_CONFIRMATION,),
            (VERSION, SALTS_ARRIVED, ACCEPTED, REFUSED),
            DONE,
            _ERROR,
        ),
        *_C.ending_rows(_OPEN, DONE),
        (_OPEN[1:], (OPEN,), DONE, _OUT_OF_TURN),
        (
            (IDLE, AWAITING_VERSION, AWAITING_SALTS, AWAITING_VERDICT, AWAITING_CONFIRMATION),
            (HASHED, CANNOT_HASH),
            DONE,
            _OUT_OF_TURN,
        ),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
ClientEnrollment.TABLE = TRANSITIONS
del _C
