"""
The endpoint's side of key rotation: rolling an enrolled profile's key
forward on a connection it keeps open to its server (docs/PROTOCOL.md §9).

L{ClientRotation} is a sans-IO state machine in the shape of
L{suto_client.enrollment.ClientEnrollment}: it receives decoded wire
messages and answers with actions (L{Send}, L{Commit}, L{Report},
L{Close}).  L{ClientRotation.receive} inspects each message, opening what
is sealed, and calls exactly one input, so the transitions read as the
conversation::

    idle --open--> awaiting_version                  (sends VERSION)
    awaiting_version --version--> awaiting_ok        (sends ROTATE)
    awaiting_version --version_offline--> awaiting_time (sends GET_TIME)
    awaiting_time --time--> awaiting_reconnect_ok    (sends RECONNECT)
    awaiting_reconnect_ok --reconnected--> awaiting_ok (sends ROTATE)
    awaiting_reconnect_ok, awaiting_ok --denied--> done (REFUSED)
    ready --begin--> awaiting_ok                     (sends ROTATE)
    awaiting_ok --opened--> awaiting_done            (sends ROTATE_ACK)
    awaiting_ok --unopened--> done                   (OPEN_FAILED)
    awaiting_ok --unknown_key--> done                (UNKNOWN_KEY)
    awaiting_done --confirmed--> committing          (asks for a commit)
    committing --stored--> ready                     (ROTATED)
    committing --not_stored--> done                  (ERROR)
    ready --lost--> done                             (nothing to report)
    any other --server_error/violation/lost--> done  (ERROR)
    any --expire--> done                             (TIMEOUT)

Every rotation draws fresh junk and a fresh X25519 key pair, and
recomputes the hardware fingerprint when the server's half arrives: the
fingerprint is never sent, so state copied to another machine derives
another key and cannot open C{SUTO_ROTATE_OK_}.  The new key is stored
(L{Commit}) only after the server's C{SUTO_ROTATE_DONE_} opened under it,
and the machine uses it only once the store succeeded: until then the old
key stays the profile's key, which the server still accepts.

L{RotationProtocol} carries the actions out on one connection and paces
the rotations; L{RotationFactory} keeps one profile's latest key and
back-off across the connections a
L{twisted.application.internet.ClientService} makes for it.

A profile whose junk was due and could not be delivered is offline
(docs/PROTOCOL.md §10): the factory marks it so, durably, and its next
connection reconnects before it rotates.  It asks the server's time, so a
wrong local clock cannot make it miss the server's window, derives the
offline key from its last key, its fingerprint (recomputed, never sent)
and the server's time step, and sends fresh junk sealed under it; only on
the server's sealed answer does it rotate, and the rotation that follows
ends the offline spell.
"""

from __future__ import annotations

import enum
import hmac
import os
import random as random_module
from dataclasses import dataclass, field, replace
from typing import Callable

from automat import MethodicalMachine
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
)
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from suto_client.conversation import Close, Conversation, Send
from suto_client.exchange import ConversationProtocol
from suto_client.fingerprint import (
    FingerprintError,
    compute_fingerprint,
    default_sources,
)
from suto_client.protocol import rereading_client_endpoint
from suto_client.statefile import Account, EnrolledProfile
from suto_server.core import keyschedule, timing, wire

#: The longest wait after rotations that failed to open the server's
#: message: the wait starts at one interval and doubles up to this.
MAX_HOLD_OFF = 3600.0
#: The back-off between connection attempts: after the n-th failure in a
#: row the wait is drawn uniformly from [c/2, c], where
#: c = min(RETRY_BASE x 2^n, RETRY_CAP) ("equal jitter").  The draw spreads
#: a fleet cut off at the same moment over half of each wait, and the
#: cap bounds the wait of every endpoint after its server comes back.
RETRY_BASE = 1.0
RETRY_CAP = 30.0
#: A connection that ends before the server's first message (the server
#: refused it under a connection limit, or never answered) is not a failed
#: rotation: such connections in a row double the wait at most this many
#: times, so a server shedding load is retried within seconds and one
#: that only ever accepts and closes is not hammered.
UNANSWERED_DOUBLINGS = 3

#: What the errors a server may end a rotation with mean.
_SERVER_ERRORS = {
    wire.ERROR_ROTATION_FAILED: (
        "the server could not open our acknowledgement"
    ),
    wire.ERROR_BUSY: "the server is busy; try again",
    wire.ERROR_TIMEOUT: "the server gave up waiting",
}

_UNKNOWN_KEY_REASON = "the server does not know this key: re-enrollment needed"
_REFUSED_REASON = (
    "the server refused the profile (SUTO_AUTH_0): it may be blacklisted, "
    "which IT must lift before the machine enrolls again"
)
_OPEN_FAILED_REASON = (
    "could not open the server's rotation message: the hardware fingerprint "
    "changed or the key is stale"
)

_OK = b"ok"
_ACK = b"ack"
_DONE = b"done"


class RotationError(ValueError):
    """
    A rotation cannot start with these inputs: the profile's user name
    cannot travel in C{SUTO_C_ROTATE_}, or an argument is malformed.
    """


class CommitError(Exception):
    """
    The new key could not be stored; the message says why, without a
    secret.  A commit callable raises it so the rotation ends as
    L{RotationOutcome.ERROR} and the old key stays in use.
    """


class RotationOutcome(enum.Enum):
    """
    How one rotation ended.
    """

    ROTATED = "rotated"
    UNKNOWN_KEY = "unknown-key"
    OPEN_FAILED = "open-failed"
    REFUSED = "refused"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Commit:
    """
    Store C{profile}, which holds the new key, in place of the profile the
    rotation started from, and say whether that worked
    (L{ClientRotation.committed} or L{ClientRotation.commit_failed}).
    """

    profile: EnrolledProfile


@dataclass(frozen=True)
class Report:
    """
    A rotation ended with C{outcome}.

    @ivar key_id: the id of the key the profile holds now: the new key's
        after L{RotationOutcome.ROTATED}, the unchanged one otherwise.  Key
        ids are public names and may be logged.
    @ivar generation: that key's generation.
    @ivar reason: a short explanation for people; never a secret.
    @ivar answered: whether the server sent anything on the connection
        before the rotation ended; C{False} for a connection it closed, or
        let time out, before its version answer.
    """

    outcome: RotationOutcome
    key_id: str
    generation: int
    reason: str = ""
    answered: bool = True


@dataclass(frozen=True)
class _Pending:
    """
    This side's fresh material for the rotation under way.
    """

    junk: bytes = field(repr=False)
    private: X25519PrivateKey = field(repr=False)


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

    _machine = MethodicalMachine()

    def __init__(
        self,
        profile: EnrolledProfile,
        fingerprint: Callable[[], bytes],
        random_bytes: Callable[[int], bytes],
    ) -> None:
        _require_rotatable(profile)
        super().__init__()
        self._profile = profile
        self._fingerprint = fingerprint
        self._random_bytes = random_bytes
        self._pending: _Pending | None = None
        self._ack: wire.RotateAck | None = None
        self._next: EnrolledProfile | None = None
        self._asked_time = False
        self._reconnect: wire.Reconnect | None = None
        self._offline_key: bytes | None = None
        self._answered = False

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
        self._open()
        return self._take()

    def rotate(self) -> list:
        """
        Start the next rotation; only once the previous one was reported
        as L{RotationOutcome.ROTATED}.
        """
        self._begin()
        return self._take()

    def committed(self) -> list:
        """
        The L{Commit} asked for is durable: the new key is now the key.
        """
        self._stored()
        return self._take()

    def commit_failed(self, reason: str) -> list:
        """
        The L{Commit} asked for failed; C{reason} says why, without
        secrets.  The old key stays the key.
        """
        return self._end(reason, self._not_stored)

    # Decisions taken before the machine moves.

    def _version(self) -> None:
        # Conversation calls this on the server's version: which way the
        # connection opens depends on whether the profile is offline.
        if self._profile.offline_since is None:
            self._version_online()
        else:
            self._version_offline()

    def _inspect(self, message) -> None:
        if isinstance(message, wire.ServerTime):
            if not self._asked_time:
                self._violation()
            else:
                self._asked_time = False
                self._prepare_reconnect(message.seconds, message.step)
        elif isinstance(message, wire.ReconnectOk):
            if self._offline_key is None:
                self._violation()
            elif self._welcomed(message):
                self._offline_key = None
                self._reconnected()
            else:
                self._fail("the server's reconnection answer did not open")
        elif isinstance(message, wire.Auth) and not message.ok:
            self._denied()
        elif isinstance(message, wire.RotateOk):
            if self._pending is None:
                self._violation()
            else:
                self._answer(message)
        elif isinstance(message, wire.RotateDone):
            if self._next is None:
                self._violation()
            elif self._confirms(message):
                self._confirmed()
            else:
                self._fail("the server's rotation confirmation did not open")
        elif isinstance(message, wire.Error):
            if message.code == wire.ERROR_UNKNOWN_KEY:
                self._reason = f"the server reported {message.code}"
                self._unknown_key()
            else:
                explanation = _SERVER_ERRORS.get(
                    message.code, "the server failed"
                )
                self._reason = f"{explanation} ({message.code})"
                self._server_error()
        else:
            self._violation()

    def _prepare_reconnect(self, server_time: int, step_length: int) -> None:
        """
        Derive the offline key for the server's time step and seal fresh
        junk under it; call the input that says how that went.
        """
        try:
            fingerprint_hash = self._fingerprint()
        except FingerprintError as e:
            self._fail(f"cannot compute the hardware fingerprint: {e}")
            return
        user = self._profile.user
        step = keyschedule.time_step(server_time, step_length)
        key = keyschedule.offline_key(
            self._profile.key, fingerprint_hash, step, user
        )
        self._offline_key = key
        sealed = keyschedule.seal(
            key,
            self._random_bytes(keyschedule.JUNK_SIZE),
            profile=user,
            purpose=keyschedule.RECONNECT_PURPOSE,
            direction=keyschedule.Direction.CLIENT_TO_SERVER,
            counter=keyschedule.SEAL_COUNTERS[keyschedule.RECONNECT_PURPOSE],
        )
        self._reconnect = wire.Reconnect(
            self._profile.key_id,
            keyschedule.reconnect_proof(self._profile.key, user, sealed),
            sealed,
            user,
        )
        self._time()

    def _welcomed(self, message: wire.ReconnectOk) -> bool:
        """
        Does the server's reconnection answer open under our offline key?
        """
        return _opens_to(
            self._offline_key,
            message.sealed,
            _OK,
            profile=self._profile.user,
            purpose=keyschedule.RECONNECT_OK_PURPOSE,
        )

    def _answer(self, message: wire.RotateOk) -> None:
        """
        Derive the new key from the server's half and open its "ok" under
        it; call the input that says how that went.
        """
        pending, self._pending = self._pending, None
        generation = self._profile.generation + 1
        try:
            fingerprint_hash = self._fingerprint()
        except FingerprintError as e:
            self._fail(f"cannot compute the hardware fingerprint: {e}")
            return
        try:
            shared = keyschedule.dh_shared_secret(
                pending.private, message.public
            )
            key = keyschedule.next_key(
                self._profile.key,
                pending.junk,
                fingerprint_hash,
                shared,
                self._profile.user,
                generation,
            )
        except keyschedule.KeyScheduleError as e:
            self._fail(f"cannot derive the next key: {e}")
            return
        if not self._opens(key, message.sealed):
            self._unopened()
            return
        self._ack = wire.RotateAck(
            keyschedule.seal(
                key,
                _ACK,
                profile=self._profile.user,
                purpose=keyschedule.ROTATE_ACK_PURPOSE,
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
                counter=keyschedule.SEAL_COUNTERS[keyschedule.ROTATE_ACK_PURPOSE],
            )
        )
        # A committed rotation ends any offline spell.
        self._next = replace(
            self._profile,
            key=key,
            key_id=keyschedule.key_id(key),
            generation=generation,
            offline_since=None,
        )
        self._opened()

    def _opens(self, key: bytes, sealed: bytes) -> bool:
        """
        Does the server's "ok" open under C{key}?
        """
        return _opens_to(
            key,
            sealed,
            _OK,
            profile=self._profile.user,
            purpose=keyschedule.ROTATE_OK_PURPOSE,
        )

    def _confirms(self, message: wire.RotateDone) -> bool:
        """
        Does the server's "done" open under the new key?
        """
        return _opens_to(
            self._next.key,
            message.sealed,
            _DONE,
            profile=self._next.user,
            purpose=keyschedule.ROTATE_DONE_PURPOSE,
        )

    def _report(self, outcome: RotationOutcome, reason: str = "") -> Report:
        return Report(
            outcome,
            self._profile.key_id,
            self._profile.generation,
            reason,
            answered=self._answered,
        )

    def _forget(self) -> None:
        """
        Drop everything derived for the rotation under way.
        """
        self._pending = self._ack = self._next = None
        self._reconnect = self._offline_key = None

    # States.

    @_machine.state(initial=True)
    def idle(self):
        "Not connected yet."

    @_machine.state()
    def awaiting_version(self):
        "The server must first confirm our version."

    @_machine.state()
    def awaiting_time(self):
        "GET_TIME went out: the offline profile waits for the server's clock."

    @_machine.state()
    def awaiting_reconnect_ok(self):
        "RECONNECT went out; waiting for RECONNECT_OK."

    @_machine.state()
    def awaiting_ok(self):
        "ROTATE went out; waiting for ROTATE_OK or UNKNOWN_KEY."

    @_machine.state()
    def awaiting_done(self):
        "ROTATE_ACK went out; waiting for the server to commit."

    @_machine.state()
    def committing(self):
        "The server committed; the new key is being stored here."

    @_machine.state()
    def ready(self):
        "The last rotation is stored; waiting for the next one."

    @_machine.state()
    def done(self):
        "The connection's rotations have ended; nothing more happens."

    # Inputs.

    @_machine.input()
    def _open(self):
        "Connected to the server."

    @_machine.input()
    def _version_online(self):
        "The server confirmed our version; the profile is online."

    @_machine.input()
    def _version_offline(self):
        "The server confirmed our version; the profile is offline."

    @_machine.input()
    def _time(self):
        "SUTO_TIME_ arrived and the reconnection is sealed."

    @_machine.input()
    def _reconnected(self):
        "SUTO_RECONNECT_OK_ arrived and opened under the offline key."

    @_machine.input()
    def _denied(self):
        "SUTO_AUTH_0 arrived: the server refuses the profile."

    @_machine.input()
    def _begin(self):
        "The time for the next rotation has come."

    @_machine.input()
    def _opened(self):
        "SUTO_ROTATE_OK_ arrived and opened under the derived key."

    @_machine.input()
    def _unopened(self):
        "SUTO_ROTATE_OK_ arrived and did not open under the derived key."

    @_machine.input()
    def _unknown_key(self):
        "SUTO_ERROR_UNKNOWN_KEY arrived."

    @_machine.input()
    def _confirmed(self):
        "SUTO_ROTATE_DONE_ arrived and opened under the new key."

    @_machine.input()
    def _stored(self):
        "The new key is stored."

    @_machine.input()
    def _not_stored(self):
        "The new key could not be stored."

    @_machine.input()
    def _server_error(self):
        "SUTO_ERROR_ arrived with another code: the server is giving up."

    @_machine.input()
    def _violation(self):
        "The server broke the protocol, or its messages are unusable."

    @_machine.input()
    def _lost(self):
        "The connection closed."

    @_machine.input()
    def _expire(self):
        "The exchange took too long."

    # Outputs.

    @_machine.output()
    def _send_version(self):
        self._actions.append(Send(wire.Version(wire.PROTOCOL_VERSION)))

    @_machine.output()
    def _send_rotate(self):
        junk = self._random_bytes(keyschedule.JUNK_SIZE)
        private = X25519PrivateKey.from_private_bytes(
            self._random_bytes(keyschedule.DH_SIZE)
        )
        self._pending = _Pending(junk, private)
        public = private.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self._actions.append(
            Send(
                wire.Rotate(
                    self._profile.key_id, junk, public, self._profile.user
                )
            )
        )

    @_machine.output()
    def _send_time_request(self):
        self._asked_time = True
        self._actions.append(Send(wire.GetTime()))

    @_machine.output()
    def _send_reconnect(self):
        reconnect, self._reconnect = self._reconnect, None
        self._actions.append(Send(reconnect))

    @_machine.output()
    def _finish_denied(self):
        self._forget()
        self._actions += [
            self._report(RotationOutcome.REFUSED, _REFUSED_REASON),
            Close(),
        ]

    @_machine.output()
    def _send_ack(self):
        ack, self._ack = self._ack, None
        self._actions.append(Send(ack))

    @_machine.output()
    def _ask_commit(self):
        self._actions.append(Commit(self._next))

    @_machine.output()
    def _finish_rotated(self):
        self._profile, self._next = self._next, None
        self._actions.append(self._report(RotationOutcome.ROTATED))

    @_machine.output()
    def _finish_unknown_key(self):
        self._forget()
        self._actions += [
            self._report(RotationOutcome.UNKNOWN_KEY, _UNKNOWN_KEY_REASON),
            Close(),
        ]

    @_machine.output()
    def _finish_open_failed(self):
        self._forget()
        self._actions += [
            self._report(RotationOutcome.OPEN_FAILED, _OPEN_FAILED_REASON),
            Close(),
        ]

    @_machine.output()
    def _finish_error(self):
        self._forget()
        self._actions += [
            self._report(RotationOutcome.ERROR, self._reason),
            Close(),
        ]

    @_machine.output()
    def _finish_lost(self):
        self._forget()
        self._actions.append(self._report(RotationOutcome.ERROR, self._reason))

    @_machine.output()
    def _finish_timeout(self):
        self._forget()
        self._actions += [
            self._report(
                RotationOutcome.TIMEOUT, "the server did not answer in time"
            ),
            Close(abort=True),
        ]

    @_machine.output()
    def _ignore(self):
        "Nothing to do: no rotation was under way, or all have ended."

    # Transitions: the conversation as a table.

    idle.upon(_open, enter=awaiting_version, outputs=[_send_version])
    awaiting_version.upon(
        _version_online, enter=awaiting_ok, outputs=[_send_rotate]
    )
    awaiting_version.upon(
        _version_offline, enter=awaiting_time, outputs=[_send_time_request]
    )
    awaiting_time.upon(_time, enter=awaiting_reconnect_ok, outputs=[_send_reconnect])
    awaiting_reconnect_ok.upon(
        _reconnected, enter=awaiting_ok, outputs=[_send_rotate]
    )
    awaiting_reconnect_ok.upon(_denied, enter=done, outputs=[_finish_denied])
    awaiting_reconnect_ok.upon(
        _unknown_key, enter=done, outputs=[_finish_unknown_key]
    )
    ready.upon(_begin, enter=awaiting_ok, outputs=[_send_rotate])
    awaiting_ok.upon(_opened, enter=awaiting_done, outputs=[_send_ack])
    awaiting_ok.upon(_unopened, enter=done, outputs=[_finish_open_failed])
    awaiting_ok.upon(_unknown_key, enter=done, outputs=[_finish_unknown_key])
    awaiting_ok.upon(_denied, enter=done, outputs=[_finish_denied])
    awaiting_done.upon(_confirmed, enter=committing, outputs=[_ask_commit])
    committing.upon(_stored, enter=ready, outputs=[_finish_rotated])
    committing.upon(_not_stored, enter=done, outputs=[_finish_error])
    ready.upon(_lost, enter=done, outputs=[_ignore])

    # A version or an UNKNOWN_KEY at the wrong time is a violation; the
    # sealed messages out of order are found out before the machine.
    _versions = (_version_online, _version_offline)
    for _state, _unexpected in (
        (awaiting_version, (_unknown_key, _denied)),
        (awaiting_time, (*_versions, _unknown_key, _denied)),
        (awaiting_reconnect_ok, _versions),
        (awaiting_ok, _versions),
        (awaiting_done, (*_versions, _unknown_key, _denied)),
        (ready, (*_versions, _unknown_key, _denied)),
    ):
        for _arrival in _unexpected:
            _state.upon(_arrival, enter=done, outputs=[_finish_error])

    _talking = (awaiting_version, awaiting_time, awaiting_reconnect_ok, awaiting_ok)
    for _state in (*_talking, awaiting_done, ready):
        _state.upon(_server_error, enter=done, outputs=[_finish_error])
        _state.upon(_violation, enter=done, outputs=[_finish_error])
        _state.upon(_expire, enter=done, outputs=[_finish_timeout])
    for _state in (*_talking, awaiting_done):
        _state.upon(_lost, enter=done, outputs=[_finish_lost])

    for _late in (
        *_versions,
        _time,
        _reconnected,
        _denied,
        _begin,
        _opened,
        _unopened,
        _unknown_key,
        _confirmed,
        _server_error,
        _violation,
        _lost,
        _expire,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _state, _unexpected, _arrival, _late, _versions, _talking


def _require_rotatable(profile: EnrolledProfile) -> None:
    """
    @raise RotationError: C{profile}'s user cannot travel in
        C{SUTO_C_ROTATE_}.
    """
    if not wire.can_enroll(profile.user):
        raise RotationError(
            f"profile {profile.user!r} cannot rotate: its user name cannot "
            f"be enrolled"
        )


def _opens_to(
    key: bytes,
    sealed: bytes,
    expected: bytes,
    *,
    profile: str,
    purpose: str,
) -> bool:
    """
    Does C{sealed}, the server's rotation or reconnection message for
    C{purpose}, open under C{key} to C{expected}?
    """
    try:
        plaintext = keyschedule.open_sealed(
            key,
            sealed,
            profile=profile,
            purpose=purpose,
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=keyschedule.SEAL_COUNTERS[purpose],
        )
    except keyschedule.SealError:
        return False
    return hmac.compare_digest(plaintext, expected)


class RotationProtocol(ConversationProtocol):
    """
    Runs L{ClientRotation} on one framed connection: rotates at once, then
    again each interval (L{timing.draw_wait}) for as long as the connection
    lasts and the rotations succeed.  Each exchange (the version exchange
    and the first rotation, then each later rotation) must end within the
    timeout.
    """

    log = Logger()

    def __init__(
        self,
        rotation: ClientRotation,
        *,
        clock: IReactorTime,
        interval: float,
        timeout: float,
        random: random_module.Random,
        commit: Callable[[EnrolledProfile], None],
        report: Callable[[Report], None],
    ) -> None:
        """
        @param rotation: the machine to run.
        @param clock: schedules the rotations and the timeouts.
        @param interval: seconds between the end of a rotation and the
            start of the next, before jitter.
        @param timeout: seconds allowed for each exchange.
        @param random: draws the jitter.
        @param commit: stores a profile holding a new key durably, in place
            of the profile the rotation started from, before returning;
            raises L{CommitError} when it cannot.  Nothing counts as
            rotated before it returned.
        @param report: called with the L{Report} of each rotation.
        """
        super().__init__(rotation, wire.Framing.FRAMED, clock, timeout)
        self._interval = interval
        self._random = random
        self._commit = commit
        self._report = report
        self._next_rotation = None
        self._stopped = False

    def connectionLost(self, reason: Failure = None) -> None:
        if self._next_rotation is not None:
            self._next_rotation.cancel()
            self._next_rotation = None
        super().connectionLost(reason)

    def _rotate(self) -> None:
        self._next_rotation = None
        self._start_timer()
        self._carry_out(self._conversation.rotate())

    def _ended(self) -> bool:
        return self._stopped

    def _perform(self, action: object) -> None:
        if isinstance(action, Commit):
            self._carry_out(self._store(action.profile))
        elif isinstance(action, Report):
            self._finish(action)

    def _store(self, profile: EnrolledProfile) -> list:
        profile = replace(profile, rotated_at=self._clock.seconds())
        try:
            self._commit(profile)
        except CommitError as e:
            reason = f"could not store the new key: {e}"
        except Exception:
            self.log.failure(
                "storing the new key of {user} failed", user=profile.user
            )
            reason = "could not store the new key"
        else:
            return self._conversation.committed()
        return self._conversation.commit_failed(reason)

    def _finish(self, report: Report) -> None:
        self._stop_timer()
        if report.outcome is RotationOutcome.ROTATED:
            wait = timing.draw_wait(self._interval, self._random)
            self._next_rotation = self._clock.callLater(wait, self._rotate)
        else:
            self._stopped = True
        self._report(report)


def machine_fingerprint() -> bytes:
    """
    This machine's fingerprint hash, from every fingerprint source.

    @raise FingerprintError: no fingerprint can be computed here.
    """
    return compute_fingerprint(default_sources()).hash


def profile_endpoint(
    reactor, profile: EnrolledProfile, timeout: float
) -> IStreamClientEndpoint:
    """
    The endpoint that reaches C{profile}'s server over TLS, as an account
    with the same trust would: trusting only the pinned certificate, or
    one its CA bundle vouches for, and presenting its client certificate
    if it has one.  The files are read at every connection.

    @param timeout: seconds allowed for the TCP connection attempt.
    @raise ValueError: a file of the profile is unusable
        (L{suto_client.tls.ClientTLSError}).
    """
    return rereading_client_endpoint(
        reactor,
        Account(
            user=profile.user,
            server_host=profile.server_host,
            server_port=profile.server_port,
            pin=profile.pin,
            ca=profile.ca,
            client_cert=profile.client_cert,
            client_key=profile.client_key,
        ),
        timeout,
    )


def retry_wait(failures: int, random: random_module.Random) -> float:
    """
    Seconds to wait before connecting again after C{failures} failures in
    a row: drawn uniformly from [c/2, c], c = min(L{RETRY_BASE} x
    2^C{failures}, L{RETRY_CAP}).

    The draw is proportional to the wait, so endpoints cut off together
    spread over half of each wait instead of retrying in waves, and the
    lower half keeps a dead server from being tried more often than every
    c/2 seconds.
    """
    ceiling = min(RETRY_BASE * 2.0 ** min(failures, 64), RETRY_CAP)
    return ceiling / 2 + random.random() * ceiling / 2


class RotationFactory(Factory):
    """
    Makes a L{RotationProtocol} for each connection to one profile's
    server, and keeps what must outlive a connection: the profile with its
    latest stored key, and how long to wait before connecting again.

    Its L{retry_delay} is the C{retryPolicy} of the
    L{twisted.application.internet.ClientService} that connects it: after
    a rotation whose server message did not open, the next attempt waits
    one interval, then twice as long at each such failure in a row, up to
    L{MAX_HOLD_OFF}; otherwise it waits as L{retry_wait} says, the
    exponent growing with the failed attempts and rotations in a row but
    by at most L{UNANSWERED_DOUBLINGS} for connections the server ended
    before answering; a successful rotation resets all of them.

    @ivar profile: the profile with its latest stored key.
    """

    noisy = False
    log = Logger()

    def __init__(
        self,
        profile: EnrolledProfile,
        *,
        clock: IReactorTime,
        interval: float,
        timeout: float,
        store: Callable[[EnrolledProfile, EnrolledProfile], None],
        report: Callable[[Report], None],
        fingerprint: Callable[[], bytes] = machine_fingerprint,
        random_bytes: Callable[[int], bytes] = os.urandom,
        random: random_module.Random | None = None,
    ) -> None:
        """
        @param profile: the profile as stored.
        @param clock: schedules rotations and timeouts.
        @param interval: seconds between rotations, before jitter.
        @param timeout: seconds allowed for each exchange.
        @param store: called with the profile a rotation started from and
            the profile holding the new key; stores the latter durably in
            place of the former, or raises L{CommitError}.
        @param report: called with the L{Report} of each rotation, once
            it is logged.
        @param fingerprint: computes this machine's fingerprint hash.
        @param random_bytes: returns that many fresh random bytes.
        @param random: draws the jitter of the waits.
        @raise RotationError: the profile's user cannot rotate.
        """
        _require_rotatable(profile)
        self.profile = profile
        self._clock = clock
        self._interval = interval
        self._timeout = timeout
        self._store = store
        self._on_report = report
        self._fingerprint = fingerprint
        self._random_bytes = random_bytes
        self._random = random_module.Random() if random is None else random
        self._failures = 0
        self._unanswered = 0
        self._next_hold_off = interval
        self._hold_off: float | None = None

    def buildProtocol(self, addr) -> RotationProtocol:
        self._note_silence()
        return RotationProtocol(
            ClientRotation(
                self.profile, self._fingerprint, self._random_bytes
            ),
            clock=self._clock,
            interval=self._interval,
            timeout=self._timeout,
            random=self._random,
            commit=self._commit,
            report=self._reported,
        )

    def retry_delay(self, attempt: int) -> float:
        """
        Seconds to wait before connecting again.

        @param attempt: the connection attempts that failed in a row, as
            C{ClientService} counts them (1 after a connection ended).
        """
        self._note_silence()
        if self._hold_off is not None:
            delay, self._hold_off = self._hold_off, None
            return delay
        # ClientService counts 1 again after any connection, even one the
        # server closed at once; such closes in a row count on their own,
        # and only up to a few doublings.
        unanswered = min(self._unanswered, UNANSWERED_DOUBLINGS)
        return retry_wait(self._failures + max(attempt, unanswered), self._random)

    def _note_silence(self) -> None:
        """
        Mark the profile offline, durably, once the junk due after its last
        agreed key can no longer have been delivered: the longest wait an
        interval may draw has passed without a committed rotation.  The
        server allows a grace on top of that before it marks the profile
        offline, so the client finds out first, and a profile the server
        marked offline has always marked itself so.
        """
        now = self._clock.seconds()
        profile = self.profile
        due = timing.next_due(profile.last_agreed, self._interval)
        # A clock now earlier than the agreement went back: the silence
        # cannot be measured, and the server may have marked the profile
        # offline meanwhile, which a plain rotation would get blacklisted.
        # Reconnecting is safe either way.
        measurable = now >= profile.last_agreed
        if profile.offline_since is not None or (measurable and now < due):
            return
        offline = replace(profile, offline_since=now)
        try:
            self._store(profile, offline)
        except CommitError as e:
            # It is still offline; a restart before the file can be written
            # finds out again from the times it holds.
            self.log.warn(
                "could not record that {user} is offline: {error}",
                user=profile.user,
                error=str(e),
            )
        self.profile = offline
        self.log.info(
            "{user} is offline: the junk due since {due} was not delivered; "
            "it reconnects with its offline key",
            user=profile.user,
            due=due,
        )

    def _commit(self, profile: EnrolledProfile) -> None:
        self._store(self.profile, profile)
        self.profile = profile

    def _reported(self, report: Report) -> None:
        if report.outcome is RotationOutcome.ROTATED:
            self._failures = 0
            self._next_hold_off = self._interval
            level = LogLevel.info
        elif report.outcome in (RotationOutcome.OPEN_FAILED, RotationOutcome.REFUSED):
            # Asking again at once would only be refused again; a refusal
            # can also be a reconnection that came too soon after a spent
            # time step, which the next step mends.
            self._hold_off = self._next_hold_off
            self._next_hold_off = min(2 * self._next_hold_off, MAX_HOLD_OFF)
            level = (
                LogLevel.warn
                if report.outcome is RotationOutcome.OPEN_FAILED
                else LogLevel.error
            )
        elif report.outcome is RotationOutcome.UNKNOWN_KEY:
            level = LogLevel.error
        elif not report.answered:
            # Refused under a connection limit, or not answered at all:
            # the server said nothing about this rotation.
            self._unanswered += 1
            level = LogLevel.warn
        else:
            self._failures += 1
            level = LogLevel.warn
        if report.answered:
            self._unanswered = 0
        text = (
            "key rotation of {user} with {server_host} port {server_port}: "
            "{outcome}"
        )
        if report.reason:
            text += ": {reason}"
        self.log.emit(
            level,
            text,
            user=self.profile.user,
            server_host=self.profile.server_host,
            server_port=self.profile.server_port,
            outcome=report.outcome.value,
            reason=report.reason,
            key_id=report.key_id,
            generation=report.generation,
        )
        self._on_report(report)

