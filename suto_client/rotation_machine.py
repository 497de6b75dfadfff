# -*- test-case-name: tests.client.test_rotation,tests.client.test_primed_rotation,tests.client.test_reconnection,tests.machines.test_spec -*-
"""
The endpoint's side of key rotation as a sans-IO state machine
(docs/PROTOCOL.md §6.7, §9 and §10).

L{ClientRotation} is in the shape of
L{suto_client.enrollment_machine.ClientEnrollment}: it receives decoded
wire messages and answers with actions (L{Send}, L{Commit}, L{Report},
L{Close}).  L{ClientRotation.receive} inspects each message, opening what
is sealed, and feeds exactly one input, so the table at the end of the
module reads as the conversation::

    idle --open--> awaiting_version                  (sends VERSION)
    awaiting_version --version_online--> awaiting_ok (sends ROTATE)
    awaiting_version --version_offline--> awaiting_time (sends GET_TIME)
    awaiting_time --time--> awaiting_reconnect_ok    (sends RECONNECT_N)
    awaiting_reconnect_ok --reconnected--> awaiting_ok (sends ROTATE)
    awaiting_reconnect_ok, awaiting_ok --denied--> done (REFUSED)
    ready --begin--> awaiting_ok                     (sends ROTATE)
    awaiting_ok --opened--> awaiting_done            (sends ROTATE_ACK)
    awaiting_ok --unopened--> done                   (OPEN_FAILED)
    awaiting_ok --unknown_key--> done                (UNKNOWN_KEY)
    awaiting_done --confirmed--> committing          (version 2: asks for a commit)
    committing --stored--> ready                     (ROTATED)
    awaiting_done --confirmed_next--> committing_primed (version 3: the same)
    committing_primed --stored--> primed             (ROTATED)
    primed --begin--> awaiting_primed_done           (sends ROTATE_PRIMED)
    awaiting_primed_done --confirmed_next--> committing_primed
    committing, committing_primed --not_stored--> done (ERROR)
    ready, primed --lost--> done                     (nothing to report)
    any other --server_error/violation/lost--> done  (ERROR)
    any --expire--> done                             (TIMEOUT)
    any --a call out of turn--> done                 (ERROR)
    ready, awaiting_ok, committing and their primed
      counterparts --challenged--> the same          (sends C_VERIFY)

A verification (docs/PROTOCOL.md §11) challenges the live connection
between rotations; the challenge may cross a rotation the agent started,
or arrive while the agent stores the key the server just committed, so
those states answer it too, with the key the profile holds (the server
takes the previous key while the new one is unconfirmed).

On a version-3 connection (docs/PROTOCOL.md §9.2) the server's "done"
carries, sealed under the new key, its X25519 share for the next
rotation (C{SUTO_ROTATE_DONE_NEXT_}).  The machine keeps that share in
memory only, in the C{primed} states, and the next rotation derives the
new key at once from it and sends its acknowledgement in its first
message (C{SUTO_C_ROTATE_PRIMED_}): one message each way, the same
derivation, and the same commit on the server's sealed "done".  The
first rotation of a connection has no share and takes the two-message
form, as every rotation does on version 2; a "done" of the other
version's kind is a violation.

Every rotation draws fresh junk and a fresh X25519 key pair, and
recomputes the hardware fingerprint when the server's half arrives: the
fingerprint is never sent, so state copied to another machine derives
another key and cannot open C{SUTO_ROTATE_OK_}.  The new key is stored
(L{Commit}) only after the server's C{SUTO_ROTATE_DONE_} opened under it,
and the machine uses it only once the store succeeded: until then the old
key stays the profile's key, which the server still accepts.

A profile that is offline (docs/PROTOCOL.md §10) reconnects before it
rotates.  It asks the server's time, so a wrong local clock cannot make it
miss the server's window, derives the offline key from its last key, its
fingerprint (recomputed, never sent) and the server's time step, and from
it and a fresh nonce the key of this attempt, and sends fresh junk sealed
under that; only on the server's sealed answer does it rotate, and the
rotation that follows ends the offline spell.  Should that rotation be cut
short after the server committed it, the next attempt, with a new nonce,
is let in within the same step.
L{suto_client.rotation} runs it on a connection and paces the rotations.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from suto_client import rotation_keys
from suto_client.conversation import EXPIRE, LOST, VIOLATION, Conversation
from suto_client.fingerprint import FingerprintError
from suto_client.rotation_outcome import (
    OPEN_FAILED_REASON,
    REFUSED_REASON,
    TIMEOUT_REASON,
    UNKNOWN_KEY_REASON,
    Commit,
    Report,
    RotationOutcome,
    require_rotatable,
    server_error_reason,
)
from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send, Table

#: The first protocol version whose "done" carries the server's share for
#: the next rotation (docs/PROTOCOL.md §9.2).
PRIMED_SINCE = 3

#: The states.
IDLE = "idle"  # Not connected yet.
AWAITING_VERSION = "awaiting_version"  # The server must confirm our version.
# GET_TIME went out: the offline profile waits for the server's clock.
AWAITING_TIME = "awaiting_time"
AWAITING_RECONNECT_OK = "awaiting_reconnect_ok"  # RECONNECT went out.
AWAITING_OK = "awaiting_ok"  # ROTATE went out; ROTATE_OK or UNKNOWN_KEY.
AWAITING_DONE = "awaiting_done"  # ROTATE_ACK went out; the server commits.
COMMITTING = "committing"  # The server committed; the new key is stored here.
READY = "ready"  # The last rotation is stored; waiting for the next one.
# The server committed and sent its next share; the new key is stored here.
COMMITTING_PRIMED = "committing_primed"
PRIMED = "primed"  # As ready, holding the server's share for the next one.
# ROTATE_PRIMED went out; the server checks the acknowledgement and commits.
AWAITING_PRIMED_DONE = "awaiting_primed_done"
DONE = "done"  # The connection's rotations have ended.

STATES = (
    IDLE,
    AWAITING_VERSION,
    AWAITING_TIME,
    AWAITING_RECONNECT_OK,
    AWAITING_OK,
    AWAITING_DONE,
    COMMITTING,
    READY,
    COMMITTING_PRIMED,
    PRIMED,
    AWAITING_PRIMED_DONE,
    DONE,
)

#: The inputs, besides the ones every conversation has (but C{version},
#: which this conversation takes as one of two).
OPEN = "open"  # Connected to the server.
VERSION_ONLINE = "version_online"  # Our version, confirmed; online profile.
VERSION_OFFLINE = "version_offline"  # Our version, confirmed; offline profile.
TIME = "time"  # SUTO_TIME_ arrived and the reconnection is sealed.
RECONNECTED = "reconnected"  # SUTO_RECONNECT_OK_, opened under the attempt's key.
DENIED = "denied"  # SUTO_AUTH_0: the server refuses the profile.
UNKNOWN_KEY = "unknown_key"  # SUTO_ERROR_UNKNOWN_KEY.
SERVER_ERROR = "server_error"  # Another SUTO_ERROR_: the server gives up.
BEGIN = "begin"  # The time for the next rotation has come.
OPENED = "opened"  # SUTO_ROTATE_OK_, opened under the derived key.
UNOPENED = "unopened"  # SUTO_ROTATE_OK_, not opened under the derived key.
CONFIRMED = "confirmed"  # SUTO_ROTATE_DONE_, opened under the new key.
# SUTO_ROTATE_DONE_NEXT_, opened under the new key: the server's next share.
CONFIRMED_NEXT = "confirmed_next"
STORED = "stored"  # The new key is stored.
NOT_STORED = "not_stored"  # The new key could not be stored.
CHALLENGED = "challenged"  # SUTO_VERIFY_: prove the key, bound to its nonce.

INPUTS = (
    OPEN,
    VERSION_ONLINE,
    VERSION_OFFLINE,
    TIME,
    RECONNECTED,
    DENIED,
    UNKNOWN_KEY,
    SERVER_ERROR,
    BEGIN,
    OPENED,
    UNOPENED,
    CONFIRMED,
    CONFIRMED_NEXT,
    STORED,
    NOT_STORED,
    VIOLATION,
    LOST,
    EXPIRE,
    CHALLENGED,
)


class _CannotDerive(Exception):
    """
    The next key cannot be derived here; the message says why, without a
    secret, and ends the conversation as a violation.
    """


class ClientRotation(Conversation):
    """
    One connection's rotations of one profile's key, in lockstep: the
    version exchange, then a rotation at once, then one more each time
    L{rotate} is called after the previous one was reported.

    @param profile: the profile as stored, holding the current key.
    @param fingerprint: computes this machine's
        L{keyschedule.FINGERPRINT_SIZE}-byte fingerprint hash, or raises
        L{FingerprintError}; called once per rotation.
    @param random_bytes: returns that many fresh random bytes.
    @raise RotationError: the profile's user cannot rotate.

    A profile that is offline (its C{offline_since} is set) reconnects
    before it rotates.
    """

    __slots__ = (
        "_profile",
        "_fingerprint",
        "_random_bytes",
        "_pending",
        "_ack",
        "_next",
        "_sealing",
        "_asked_time",
        "_reconnect",
        "_attempt",
        "_answered",
        "_nonce",
        "_share",
        "_primed",
    )

    def __init__(
        self,
        profile: EnrolledProfile,
        fingerprint: Callable[[], bytes],
        random_bytes: Callable[[int], bytes],
    ) -> None:
        require_rotatable(profile)
        super().__init__()
        self._profile = profile
        self._fingerprint = fingerprint
        self._random_bytes = random_bytes
        self._pending: rotation_keys.Pending | None = None
        self._ack: wire.RotateAck | None = None
        self._next: EnrolledProfile | None = None
        # The new key of the rotation under way, ready to open "done".
        self._sealing: keyschedule.SealingKey | None = None
        self._asked_time = False
        self._reconnect: wire.Reconnect | None = None
        self._attempt: keyschedule.SealingKey | None = None
        self._answered = False
        self._nonce: bytes | None = None
        # The server's share for the next rotation, from its last "done"
        # on a version-3 connection; never stored, never logged.
        self._share: bytes | None = None
        self._primed: wire.RotatePrimed | None = None

    @property
    def profile(self) -> EnrolledProfile:
        """
        The profile as last committed: its key is the one to present.
        """
        return self._profile

    # What the protocol calls.

    def receive(self, message) -> list:
        self._answered = True
        return super().receive(message)

    def protocol_error(self, error: wire.ProtocolError) -> list:
        self._answered = True
        return super().protocol_error(error)

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        return self._input(OPEN)

    def rotate(self) -> list:
        """
        Start the next rotation; only once the previous one was reported
        as L{RotationOutcome.ROTATED}.  With the server's share of the
        last "done" it is a primed rotation, whose new key is derived
        here, before the machine moves.
        """
        if self._share is None:
            return self._input(BEGIN)
        pending = rotation_keys.Pending.draw(self._random_bytes)
        try:
            key, sealing, self._primed = self._derive(
                rotation_keys.primed_rotation, pending, self._share
            )
        except _CannotDerive as e:
            return self._fail(str(e))
        self._hold(key, sealing)
        return self._input(BEGIN)

    def committed(self) -> list:
        """
        The L{Commit} asked for is durable: the new key is now the key.
        """
        return self._input(STORED)

    def commit_failed(self, reason: str) -> list:
        """
        The L{Commit} asked for failed; C{reason} says why, without
        secrets.  The old key stays the key.
        """
        return self._end(reason, NOT_STORED)

    # Decisions taken before the machine moves.

    def _version(self) -> list:
        # Conversation calls this on the server's version: which way the
        # connection opens depends on whether the profile is offline.
        if self._profile.offline_since is None:
            return self._input(VERSION_ONLINE)
        return self._input(VERSION_OFFLINE)

    def _inspect(self, message) -> list:
        if isinstance(message, wire.ServerTime):
            if not self._asked_time:
                return self._input(VIOLATION)
            self._asked_time = False
            return self._prepare_reconnect(message.seconds, message.step)
        if isinstance(message, wire.ReconnectOk):
            if self._attempt is None:
                return self._input(VIOLATION)
            if rotation_keys.welcomed(self._attempt, message.sealed):
                self._attempt = None
                return self._input(RECONNECTED)
            return self._fail("the server's reconnection answer did not open")
        if isinstance(message, wire.Auth) and not message.ok:
            return self._input(DENIED)
        if isinstance(message, wire.VerifyChallenge):
            self._nonce = message.nonce
            return self._input(CHALLENGED)
        if isinstance(message, wire.RotateOk):
            if self._pending is None:
                return self._input(VIOLATION)
            return self._answer(message)
        if isinstance(message, (wire.RotateDone, wire.RotateDoneNext)):
            return self._confirm(message)
        if isinstance(message, wire.Error):
            if message.code == wire.ERROR_UNKNOWN_KEY:
                self._reason = f"the server reported {message.code}"
                return self._input(UNKNOWN_KEY)
            self._reason = server_error_reason(message.code)
            return self._input(SERVER_ERROR)
        return self._input(VIOLATION)

    def _prepare_reconnect(self, server_time: int, step_length: int) -> list:
        """
        Derive the key of this attempt, from the offline key for the
        server's time step and a fresh nonce, and seal fresh junk under it;
        feed the input that says how that went.
        """
        try:
            fingerprint_hash = self._fingerprint()
        except FingerprintError as e:
            return self._fail(f"cannot compute the hardware fingerprint: {e}")
        self._attempt, self._reconnect = rotation_keys.reconnection(
            self._profile,
            fingerprint_hash,
            server_time,
            step_length,
            self._random_bytes(keyschedule.JUNK_SIZE),
            self._random_bytes(keyschedule.ATTEMPT_NONCE_SIZE),
        )
        return self._input(TIME)

    def _answer(self, message: wire.RotateOk) -> list:
        """
        Derive the new key from the server's half and open its "ok" under
        it; feed the input that says how that went.
        """
        pending, self._pending = self._pending, None
        try:
            key = self._derive(rotation_keys.next_key, pending, message.public)
        except _CannotDerive as e:
            return self._fail(str(e))
        sealing = keyschedule.SealingKey(key, self._profile.user)
        if not rotation_keys.opens_ok(sealing, message.sealed):
            return self._input(UNOPENED)
        self._ack = rotation_keys.acknowledgement(sealing)
        self._hold(key, sealing)
        return self._input(OPENED)

    def _derive(self, derivation, pending, server_public: bytes):
        """
        C{derivation} (a function of L{rotation_keys} that derives the
        next key) of the profile, this side's C{pending} material, the
        fingerprint hash, recomputed now, and the server's half.

        @raise _CannotDerive: the fingerprint cannot be computed or the
            server's half is unusable.
        """
        try:
            fingerprint_hash = self._fingerprint()
        except FingerprintError as e:
            raise _CannotDerive(f"cannot compute the hardware fingerprint: {e}")
        try:
            return derivation(self._profile, pending, fingerprint_hash, server_public)
        except keyschedule.KeyScheduleError as e:
            raise _CannotDerive(f"cannot derive the next key: {e}")

    def _hold(self, key: bytes, sealing: keyschedule.SealingKey) -> None:
        """
        Hold C{key}, the rotation's new key, ready to open the server's
        "done" (C{sealing}) and to be committed once it did.
        """
        self._sealing = sealing
        # A committed rotation ends any offline spell.
        self._next = replace(
            self._profile,
            key=key,
            key_id=keyschedule.key_id(key),
            generation=self._profile.generation + 1,
            offline_since=None,
        )

    def _confirm(self, message) -> list:
        """
        The server's "done" of the rotation under way: on a version-3
        connection it carries the next share (C{SUTO_ROTATE_DONE_NEXT_}),
        on version 2 it does not (C{SUTO_ROTATE_DONE_}), and either must
        open under the new key.
        """
        carries_share = isinstance(message, wire.RotateDoneNext)
        if self._next is None or carries_share != (self.version >= PRIMED_SINCE):
            return self._input(VIOLATION)
        if not carries_share:
            if rotation_keys.confirms(self._sealing, message.sealed):
                return self._input(CONFIRMED)
        elif (share := rotation_keys.next_share(self._sealing, message.sealed)) is not None:
            self._share = share
            return self._input(CONFIRMED_NEXT)
        return self._fail("the server's rotation confirmation did not open")

    def _report(self, outcome: RotationOutcome, reason: str = "") -> Report:
        return Report(
            outcome,
            self._profile.key_id,
            self._profile.generation,
            reason,
            answered=self._answered,
        )

    def _close_with(self, outcome: RotationOutcome, reason: str, abort=False):
        """Forget the rotation under way, report C{outcome}, and close."""
        self._forget()
        self._actions += [self._report(outcome, reason), Close(abort=abort)]

    def _forget(self) -> None:
        """
        Drop everything derived for the rotation under way.
        """
        self._pending = self._ack = self._next = self._sealing = None
        self._reconnect = self._attempt = self._share = self._primed = None

    # Outputs.

    def _send_rotate(self):
        self._pending = rotation_keys.Pending.draw(self._random_bytes)
        self._actions.append(Send(self._pending.rotate(self._profile)))

    def _send_rotate_primed(self):
        # A share serves one rotation: the next comes with its "done".
        primed, self._primed, self._share = self._primed, None, None
        self._actions.append(Send(primed))

    def _send_proof(self):
        nonce, self._nonce = self._nonce, None
        proof = keyschedule.verify_proof(self._profile.key, nonce, self._profile.user)
        self._actions.append(Send(wire.VerifyProof(nonce, proof)))

    def _send_time_request(self):
        self._asked_time = True
        self._actions.append(Send(wire.GetTime()))

    def _send_reconnect(self):
        reconnect, self._reconnect = self._reconnect, None
        self._actions.append(Send(reconnect))

    def _finish_denied(self):
        self._close_with(RotationOutcome.REFUSED, REFUSED_REASON)

    def _send_ack(self):
        ack, self._ack = self._ack, None
        self._actions.append(Send(ack))

    def _ask_commit(self):
        self._actions.append(Commit(self._next))

    def _finish_rotated(self):
        self._profile, self._next, self._sealing = self._next, None, None
        self._actions.append(self._report(RotationOutcome.ROTATED))

    def _finish_unknown_key(self):
        self._close_with(RotationOutcome.UNKNOWN_KEY, UNKNOWN_KEY_REASON)

    def _finish_open_failed(self):
        self._close_with(RotationOutcome.OPEN_FAILED, OPEN_FAILED_REASON)

    def _finish_error(self):
        self._close_with(RotationOutcome.ERROR, self._reason)

    def _finish_lost(self):
        self._forget()
        self._actions.append(self._report(RotationOutcome.ERROR, self._reason))

    def _finish_timeout(self):
        self._close_with(RotationOutcome.TIMEOUT, TIMEOUT_REASON, abort=True)


_C = ClientRotation
_ERROR = (_C._finish_error,)
_VERSIONS = (VERSION_ONLINE, VERSION_OFFLINE)
_LIVE = STATES[:-1]
_BETWEEN = (READY, PRIMED)
_COMMITTING = (COMMITTING, COMMITTING_PRIMED)
_SENT_ROTATION = (AWAITING_OK, AWAITING_PRIMED_DONE)
_OUT_OF_TURN = (_C._report_out_of_turn, _C._finish_error)

#: Every transition, in the order of docs/PROTOCOL.md §6.7.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((IDLE,), (OPEN,), AWAITING_VERSION, (_C._send_version,)),
        ((AWAITING_VERSION,), (VERSION_ONLINE,), AWAITING_OK, (_C._send_rotate,)),
        (
            (AWAITING_VERSION,),
            (VERSION_OFFLINE,),
            AWAITING_TIME,
            (_C._send_time_request,),
        ),
        ((AWAITING_TIME,), (TIME,), AWAITING_RECONNECT_OK, (_C._send_reconnect,)),
        ((AWAITING_RECONNECT_OK,), (RECONNECTED,), AWAITING_OK, (_C._send_rotate,)),
        ((AWAITING_OK,), (OPENED,), AWAITING_DONE, (_C._send_ack,)),
        ((AWAITING_DONE,), (CONFIRMED,), COMMITTING, (_C._ask_commit,)),
        ((COMMITTING,), (STORED,), READY, (_C._finish_rotated,)),
        ((READY,), (BEGIN,), AWAITING_OK, (_C._send_rotate,)),
        (
            (AWAITING_DONE, AWAITING_PRIMED_DONE),
            (CONFIRMED_NEXT,),
            COMMITTING_PRIMED,
            (_C._ask_commit,),
        ),
        ((COMMITTING_PRIMED,), (STORED,), PRIMED, (_C._finish_rotated,)),
        ((PRIMED,), (BEGIN,), AWAITING_PRIMED_DONE, (_C._send_rotate_primed,)),
        (_COMMITTING, (NOT_STORED,), DONE, _ERROR),
        (
            (AWAITING_RECONNECT_OK, *_SENT_ROTATION),
            (DENIED,),
            DONE,
            (_C._finish_denied,),
        ),
        (
            (AWAITING_RECONNECT_OK, *_SENT_ROTATION),
            (UNKNOWN_KEY,),
            DONE,
            (_C._finish_unknown_key,),
        ),
        ((AWAITING_OK,), (UNOPENED,), DONE, (_C._finish_open_failed,)),
        # A version or an UNKNOWN_KEY at the wrong time is a violation; the
        # sealed messages out of order are found out before the machine.
        ((AWAITING_VERSION,), (UNKNOWN_KEY, DENIED), DONE, _ERROR),
        (
            (IDLE, AWAITING_TIME, AWAITING_DONE, *_COMMITTING, *_BETWEEN),
            (*_VERSIONS, UNKNOWN_KEY, DENIED),
            DONE,
            _ERROR,
        ),
        ((AWAITING_RECONNECT_OK, *_SENT_ROTATION), _VERSIONS, DONE, _ERROR),
        (
            (IDLE, AWAITING_VERSION, *_COMMITTING, *_BETWEEN),
            (TIME, RECONNECTED, OPENED, UNOPENED, CONFIRMED, CONFIRMED_NEXT),
            DONE,
            _ERROR,
        ),
        (
            (AWAITING_TIME,),
            (RECONNECTED, OPENED, UNOPENED, CONFIRMED, CONFIRMED_NEXT),
            DONE,
            _ERROR,
        ),
        (
            (AWAITING_RECONNECT_OK,),
            (TIME, OPENED, UNOPENED, CONFIRMED, CONFIRMED_NEXT),
            DONE,
            _ERROR,
        ),
        (
            (AWAITING_OK,),
            (TIME, RECONNECTED, CONFIRMED, CONFIRMED_NEXT),
            DONE,
            _ERROR,
        ),
        ((AWAITING_DONE,), (TIME, RECONNECTED, OPENED, UNOPENED), DONE, _ERROR),
        (
            (AWAITING_PRIMED_DONE,),
            (TIME, RECONNECTED, OPENED, UNOPENED, CONFIRMED),
            DONE,
            _ERROR,
        ),
        (_LIVE, (SERVER_ERROR, VIOLATION), DONE, _ERROR),
        (_LIVE, (EXPIRE,), DONE, (_C._finish_timeout,)),
        (
            tuple(state for state in _LIVE if state not in _BETWEEN),
            (LOST,),
            DONE,
            (_C._finish_lost,),
        ),
        (_BETWEEN, (LOST,), DONE, ()),
        (_LIVE[1:], (OPEN,), DONE, _OUT_OF_TURN),
        (
            tuple(state for state in _LIVE if state not in _BETWEEN),
            (BEGIN,),
            DONE,
            _OUT_OF_TURN,
        ),
        (
            tuple(state for state in _LIVE if state not in _COMMITTING),
            (STORED, NOT_STORED),
            DONE,
            _OUT_OF_TURN,
        ),
        *(
            ((state,), (CHALLENGED,), state, (_C._send_proof,))
            for state in (
                READY,
                AWAITING_OK,
                COMMITTING,
                PRIMED,
                AWAITING_PRIMED_DONE,
                COMMITTING_PRIMED,
            )
        ),
        (
            (IDLE, AWAITING_VERSION, AWAITING_TIME, AWAITING_RECONNECT_OK, AWAITING_DONE),
            (CHALLENGED,),
            DONE,
            _ERROR,
        ),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
ClientRotation.TABLE = TRANSITIONS
del _C
