# -*- test-case-name: tests.client.test_rotation,tests.client.test_primed_rotation,tests.client.test_reconnection,tests.machines.test_spec -*-
"""
What each message of the server means to the agent's rotation
(docs/PROTOCOL.md §6.7): the inputs of
L{suto_client.rotation_machine.ClientRotation} and the decisions that
choose them, before the machine moves.

L{RotationInputs} holds what a rotation keeps between its messages: this
side's fresh material, the new key ready to open the server's "done",
the acknowledgement to send, the server's share for the next rotation,
a reconnection attempt's key.  Each message is inspected here, what is
sealed opened with L{suto_client.rotation_keys}, and exactly one input
fed; the machine's module says in what order the inputs may come and
what each does.  Nothing held here is ever stored or logged: it is
dropped (L{RotationInputs._forget}) when a rotation ends early, and
replaced by the next rotation's.

Every rotation recomputes the hardware fingerprint once the server's
half is known (its C{SUTO_ROTATE_OK_}, or the share of the last "done"
for a primed rotation): the fingerprint is never sent, so state copied
to another machine derives another key and can open nothing the server
seals under it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from suto_client import rotation_keys
from suto_client.conversation import EXPIRE, LOST, VIOLATION, Conversation
from suto_client.fingerprint import FingerprintError
from suto_client.rotation_outcome import require_rotatable, server_error_reason
from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire

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


class RotationInputs(Conversation):
    """
    The base of L{suto_client.rotation_machine.ClientRotation}: what its
    rotations hold between messages, and the decisions that turn each
    message into one of its inputs.

    @param profile: the profile as stored, holding the current key.
    @param fingerprint: computes this machine's
        L{keyschedule.FINGERPRINT_SIZE}-byte fingerprint hash, or raises
        L{FingerprintError}; called once per rotation.
    @param random_bytes: returns that many fresh random bytes.
    @param version: the protocol version to announce (L{Conversation}).
    @raise RotationError: the profile's user cannot rotate.
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
        version: int = wire.PROTOCOL_VERSION,
    ) -> None:
        require_rotatable(profile)
        super().__init__(version)
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

    def receive(self, message) -> list:
        self._answered = True
        return super().receive(message)

    def protocol_error(self, error: wire.ProtocolError) -> list:
        self._answered = True
        return super().protocol_error(error)

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
            fingerprint_hash = self._fingerprint_hash()
        except _CannotDerive as e:
            return self._fail(str(e))
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
        fingerprint_hash = self._fingerprint_hash()
        try:
            return derivation(self._profile, pending, fingerprint_hash, server_public)
        except keyschedule.KeyScheduleError as e:
            raise _CannotDerive(f"cannot derive the next key: {e}") from None

    def _fingerprint_hash(self) -> bytes:
        """
        This machine's fingerprint hash, computed now.

        @raise _CannotDerive: it cannot be computed.
        """
        try:
            return self._fingerprint()
        except FingerprintError as e:
            raise _CannotDerive(
                f"cannot compute the hardware fingerprint: {e}"
            ) from None

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
        if self._next is None or carries_share != (self.version >= wire.PRIMED_SINCE):
            return self._input(VIOLATION)
        if carries_share:
            self._share = rotation_keys.next_share(self._sealing, message.sealed)
            if self._share is not None:
                return self._input(CONFIRMED_NEXT)
        elif rotation_keys.confirms(self._sealing, message.sealed):
            return self._input(CONFIRMED)
        return self._fail("the server's rotation confirmation did not open")

    def _prepare_primed(self) -> list:
        """
        Derive the new key of a primed rotation from the server's share of
        the last "done", and the message that proves it; feed C{begin}, or
        the violation a key that cannot be derived is.
        """
        pending = rotation_keys.Pending.draw(self._random_bytes)
        try:
            key, sealing, self._primed = self._derive(
                rotation_keys.primed_rotation, pending, self._share
            )
        except _CannotDerive as e:
            return self._fail(str(e))
        self._hold(key, sealing)
        return self._input(BEGIN)

    def _forget(self) -> None:
        """
        Drop everything derived for the rotation under way.
        """
        self._pending = self._ack = self._next = self._sealing = None
        self._reconnect = self._attempt = self._share = self._primed = None
