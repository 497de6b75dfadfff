# -*- test-case-name: tests.client.test_rotation,tests.client.test_primed_rotation,tests.client.test_reconnection,tests.machines.test_spec -*-
"""
The endpoint's side of key rotation as a sans-IO state machine
(docs/PROTOCOL.md §6.7, §9 and §10).

L{ClientRotation} is in the shape of
L{suto_client.enrollment_machine.ClientEnrollment}: it receives decoded
wire messages and answers with actions (L{Send}, L{Commit}, L{Report},
L{Close}).  Its base, L{suto_client.rotation_inputs.RotationInputs},
inspects each message, opening what is sealed, and feeds exactly one
input, so the table at the end of this module reads as the
conversation::

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
recomputes the hardware fingerprint, which is never sent.  The new key
is stored (L{Commit}) only after the server's "done" opened under it, and
the machine uses it only once the store succeeded: until then the old
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

from suto_client import rotation_keys
from suto_client.conversation import EXPIRE, LOST, VIOLATION
from suto_client.rotation_inputs import (
    BEGIN,
    CHALLENGED,
    CONFIRMED,
    CONFIRMED_NEXT,
    DENIED,
    INPUTS,
    NOT_STORED,
    OPEN,
    OPENED,
    RECONNECTED,
    SERVER_ERROR,
    STORED,
    TIME,
    UNKNOWN_KEY,
    UNOPENED,
    VERSION_OFFLINE,
    VERSION_ONLINE,
    RotationInputs,
)
from suto_client.rotation_outcome import (
    OPEN_FAILED_REASON,
    REFUSED_REASON,
    TIMEOUT_REASON,
    UNKNOWN_KEY_REASON,
    Commit,
    Report,
    RotationOutcome,
)
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send, Table

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


class ClientRotation(RotationInputs):
    """
    One connection's rotations of one profile's key, in lockstep: the
    version exchange, then a rotation at once, then one more each time
    L{rotate} is called after the previous one was reported.  It takes
    the arguments of L{RotationInputs}, which reads the server's messages
    into its inputs.

    A profile that is offline (its C{offline_since} is set) reconnects
    before it rotates.
    """

    __slots__ = ()

    # What the protocol calls.

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        return self._input(OPEN)

    def rotate(self) -> list:
        """
        Start the next rotation; only once the previous one was reported
        as L{RotationOutcome.ROTATED}.
        """
        if self._share is None:
            return self._input(BEGIN)
        return self._prepare_primed()

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

    def _report(self, outcome: RotationOutcome, reason: str = "") -> Report:
        return Report(
            outcome,
            self._profile.key_id,
            self._profile.generation,
            reason,
            answered=self._answered,
            refused_version=self.refused_version,
        )

    def _close_with(self, outcome: RotationOutcome, reason: str, abort=False):
        """Forget the rotation under way, report C{outcome}, and close."""
        self._forget()
        self._actions += [self._report(outcome, reason), Close(abort=abort)]

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
# The live states but those between rotations: a rotation is under way.
_DURING = tuple(state for state in _LIVE if state not in _BETWEEN)
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
        (_DURING, (LOST,), DONE, (_C._finish_lost,)),
        (_BETWEEN, (LOST,), DONE, ()),
        (_LIVE[1:], (OPEN,), DONE, _OUT_OF_TURN),
        (_DURING, (BEGIN,), DONE, _OUT_OF_TURN),
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
