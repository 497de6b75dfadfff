# -*- test-case-name: tests.api.test_verifier,tests.api.test_verifier_off_reactor -*-
"""
"Is this user at their device right now, and does the device prove it?":
the decision behind C{POST /v1/verify} (docs/PROTOCOL.md §11).

The device is the one SUTO already knows, never one the caller names:

  - an enrolled profile that is blacklisted is answered C{blacklisted},
    and one the offline sweep marked offline, or without a live rotation
    connection, C{device_offline}, at once: none of them can prove
    anything now;
  - otherwise the agent on the profile's live rotation connection (the
    one that last proved the key and the machine's fingerprint) proves
    its current rolling key, bound to a fresh nonce; when that
    connection is on another server process sharing the store, that
    process challenges it and tells this one the outcome
    (L{suto_server.cluster.verify_relay});
  - an account without a profile is asked with the classic challenge at
    the targets the operator gave it in the verify-targets file (the
    locations file's format, one line per user: C{alice: 192.0.2.7}).

The caller's deadline bounds the whole answer: it is written when the
deadline passes, whatever is still in flight.  That includes the store:
the profile, its standing and the account's hash are read through the
store's calls (L{suto_server.store.calls}), which on PostgreSQL answer
after a round trip the reactor does not wait for; a store that cannot
answer, or not within the deadline, gets the caller C{error}.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suto_server.core.keyschedule import CHECK_NONCE_SIZE
from suto_server.locations import LocationError, Locations
from suto_server.rules.authenticator import Authenticator, UnknownAccount
from suto_server.rules.registry import LiveSession, LiveSessions, TooManyChallenges
from suto_server.rules.rendezvous import RequestConflict, Verdict
from suto_server.rules.windows import hello_targets
from suto_server.store.errors import StoreError

#: The deadline a caller gets when it names none, in seconds; the server's
#: bounds (L{suto_server.settings.VerifyApiSettings}) clamp it.
DEFAULT_DEADLINE = 10.0


class Answer(enum.Enum):
    """
    The verdicts of the verification API.  Only C{ACCEPTED} means yes.
    """

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NO_DEVICE = "no_device"
    DEVICE_OFFLINE = "device_offline"
    BLACKLISTED = "blacklisted"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"


@dataclass(frozen=True)
class VerifyResult:
    """
    One verification's verdict, with a short reason free of secrets.

    @ivar device: where the device was asked, or L{None} when it was not.
    """

    user: str
    answer: Answer
    reason: str
    device: str | None = None


#: How each ending of the classic challenge reads as an answer.
_CLASSIC = {
    Verdict.ACCEPTED: Answer.ACCEPTED,
    Verdict.REJECTED: Answer.REJECTED,
    Verdict.CANCELLED: Answer.REJECTED,
    Verdict.TIMEOUT: Answer.DEVICE_OFFLINE,
    Verdict.TLS_TRUST_FAILURE: Answer.ERROR,
    Verdict.REFUSED_BY_LIMITS: Answer.ERROR,
    Verdict.ERROR: Answer.ERROR,
}

#: How each answer of a live connection's challenge reads.
_PROOF = {
    True: (Answer.ACCEPTED, "the device proved its current key on its live connection"),
    False: (Answer.REJECTED, "the device's proof does not match the profile's key"),
    None: (Answer.DEVICE_OFFLINE, "the live connection gave no answer"),
}

_NO_LIVE_CONNECTION = (
    Answer.DEVICE_OFFLINE,
    "the profile's device has no live connection to the server",
)

#: How each outcome another process announced reads
#: (L{suto_server.cluster.notice.PROOF_OUTCOMES}).
_REMOTE = {
    "matched": _PROOF[True],
    "mismatched": _PROOF[False],
    "no_answer": _PROOF[None],
    "busy": (Answer.ERROR, "too many verifications wait for this device's answer; try again"),
}


def clamp_deadline(deadline: float | None, low: float, high: float) -> float:
    """
    @return: C{deadline} (L{DEFAULT_DEADLINE} when L{None}) within
        C{[low, high]}.
    """
    wanted = DEFAULT_DEADLINE if deadline is None else deadline
    return min(max(wanted, low), high)


class Verifier:
    """
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls})
        the profiles, their standing and the blacklist are read through.
    @param live: the live rotation connections.
    @param authenticator: runs the classic challenge at an address.
    @param targets: the verify-targets file, read as named locations
        whose names are users.
    @param hello_port: the port the devices hear hellos on.
    @param random_bytes: draws the challenges' nonces.
    @param remote: asks the other server processes on the store to verify
        a live connection they hold
        (L{suto_server.cluster.verify_relay.VerifyRelay}); L{None} when
        no other process shares the store.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        calls,
        live: LiveSessions,
        authenticator: Authenticator,
        targets: Locations,
        hello_port: int,
        random_bytes: Callable[[int], bytes] = os.urandom,
        remote=None,
    ) -> None:
        self._clock = clock
        self._calls = calls
        self._live = live
        self._authenticator = authenticator
        self._targets = targets
        self._hello_port = hello_port
        self._random_bytes = random_bytes
        self._remote = remote

    def verify(self, user: str, deadline: float) -> Deferred:
        """
        Verify C{user} at their device within C{deadline} seconds.

        @return: a L{Deferred} firing with a L{VerifyResult}, never
            failing, within C{deadline} seconds.
        """
        return Deferred.fromCoroutine(self._verify(user, deadline)).addErrback(
            self._failed, user
        )

    def _failed(self, failure, user: str, device: str | None = None) -> VerifyResult:
        """
        Deciding failed in a way no rule answers: a fault, logged with its
        traceback, and the caller's C{error}, so that the caller still
        gets an answer (and the API lets go of its place).
        """
        self.log.failure("verifying {user}", failure, user=user)
        return VerifyResult(user, Answer.ERROR, "internal error", device)

    async def _verify(self, user: str, deadline: float) -> VerifyResult:
        started = self._clock.seconds()
        try:
            standing = await Deferred.fromCoroutine(self._standing(user)).addTimeout(
                deadline, self._clock
            )
        except (StoreError, TimeoutError) as error:
            self.log.warn(
                "reading {user}'s profile for a verification failed: {error}",
                user=user,
                error=str(error) or "no answer within the deadline",
            )
            return VerifyResult(user, Answer.ERROR, "the store could not be read")
        # What is left of the deadline once the store answered.
        deadline -= self._clock.seconds() - started
        if standing is None:
            return await self._classic(user, deadline)
        blacklisted, offline_since = standing
        if blacklisted:
            return VerifyResult(user, Answer.BLACKLISTED, "the profile is blacklisted")
        if offline_since is not None:
            return VerifyResult(
                user,
                Answer.DEVICE_OFFLINE,
                "the profile is marked offline: its device stopped rotating",
            )
        # The live connections are read now, after the store answered.
        session = self._live.get(user)
        if session is not None:
            return await self._prove(session, deadline)
        if self._remote is not None and self._remote.has_others():
            return await self._prove_elsewhere(user, deadline)
        return VerifyResult(user, *_NO_LIVE_CONNECTION)

    async def _standing(self, user: str) -> tuple | None:
        """
        @return: the profile's C{(blacklisted, offline_since)}, or L{None}
            when C{user} has no profile.
        """
        # One read for the profile and both marks (one round trip on a
        # store across the network).
        start = await self._calls.rotation_start(user)
        if start.profile is None:
            return None
        return start.blacklisted, start.offline_since

    def _prove(self, session: LiveSession, deadline: float) -> Deferred:
        """
        Ask the agent on C{session} to prove the profile's current key.
        """
        user, device = session.user, session.address
        challenge = session.connection.challenge(self._random_bytes(CHECK_NONCE_SIZE))

        def read(proven):
            answer, reason = _PROOF[proven]
            return VerifyResult(user, answer, reason, device)

        def busy(failure):
            if failure.trap(TooManyChallenges, StoreError) is StoreError:
                # The proofs the challenge expects could not be read: the
                # device was not asked (the connection logged why).
                return VerifyResult(
                    user, Answer.ERROR, "the store could not be read", device
                )
            return VerifyResult(
                user,
                Answer.ERROR,
                "too many verifications wait for this device's answer; try again",
                device,
            )

        challenge.addCallbacks(read, busy).addErrback(_given_up)
        late = VerifyResult(
            user, Answer.DEVICE_OFFLINE, "the device did not answer within the deadline", device
        )
        return self._within(challenge, deadline, late, user, device, challenge.cancel)

    def _prove_elsewhere(self, user: str, deadline: float) -> Deferred:
        """
        Ask the other server processes to challenge C{user}'s live
        connection, which one of them may hold.
        """
        asked = self._remote.ask(user, deadline)

        def read(answered):
            if answered is None:
                # No process holds a live connection.
                return VerifyResult(user, *_NO_LIVE_CONNECTION)
            return VerifyResult(user, *_REMOTE[answered.outcome], answered.device)

        asked.addCallback(read)
        asked.addErrback(_given_up)
        late = VerifyResult(
            user, Answer.DEVICE_OFFLINE, "the device did not answer within the deadline"
        )
        return self._within(asked, deadline, late, user, None, asked.cancel)

    async def _classic(self, user: str, deadline: float) -> VerifyResult:
        """
        Run the classic challenge at the targets configured for C{user},
        an account without a profile.
        """
        try:
            location = self._targets.resolve(user)
        except LocationError:
            location = None
        if location is None or location.name != user:
            return VerifyResult(
                user,
                Answer.NO_DEVICE,
                "no enrolled profile and no configured target for the user",
            )
        device = location.describe()
        targets = hello_targets(location, self._hello_port)
        if not targets:
            return VerifyResult(
                user, Answer.NO_DEVICE, "the configured targets get no hello", device
            )
        outcome = Deferred.fromCoroutine(
            self._authenticator.authenticate(user, targets, deadline)
        )

        def ended(ending):
            return VerifyResult(
                user, _CLASSIC[ending.verdict], ending.reason or ending.verdict.value, device
            )

        def unasked(failure):
            error = failure.trap(UnknownAccount, RequestConflict, OSError, StoreError)
            if error is StoreError:
                self.log.warn(
                    "reading {user}'s account for a verification failed: {error}",
                    user=user,
                    error=failure.getErrorMessage(),
                )
            return VerifyResult(user, Answer.ERROR, _UNASKED[error](failure.value), device)

        outcome.addCallbacks(ended, unasked)
        late = VerifyResult(
            user, Answer.ERROR, "the device did not finish within the deadline", device
        )
        # The request ends by its own timeout, set to the deadline: nothing
        # to give up.
        return await self._within(outcome, deadline, late, user, device, lambda: None)

    def _within(
        self,
        outcome: Deferred,
        deadline: float,
        late: VerifyResult,
        user: str,
        device: str | None,
        give_up: Callable[[], None],
    ) -> Deferred:
        """
        @return: a L{Deferred} firing with what C{outcome} fires with, or
            with C{late} once C{deadline} passes first (and then
            C{give_up} is called); never failing.
        """
        answered = Deferred()

        def expire():
            _answer_once(answered, late)
            give_up()

        timer = self._clock.callLater(deadline, expire)

        def ended(result):
            if timer.active():
                timer.cancel()
            if result is not None:
                _answer_once(answered, result)

        outcome.addErrback(self._failed, user, device).addCallback(ended)
        return answered


#: Why the classic challenge was not asked, by what stopped it.
_UNASKED = {
    UnknownAccount: lambda error: (
        "the server has no password for the user to challenge the device with"
    ),
    RequestConflict: lambda error: (
        "another authentication waits for this device; try again"
    ),
    OSError: lambda error: f"the hello could not be sent: {error.strerror or error}",
    StoreError: lambda error: "the store could not be read",
}


def _given_up(failure) -> None:
    """
    The deadline gave up on a challenge: its answer was written already.
    """
    failure.trap(CancelledError)


def _answer_once(answered: Deferred, result: VerifyResult) -> None:
    if not answered.called:
        answered.callback(result)
