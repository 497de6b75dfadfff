# -*- test-case-name: tests.api.test_verifier -*-
"""
"Is this user at their device right now, and does the device prove it?":
the decision behind C{POST /v1/verify}.

The device is the one SUTO already knows, never one the caller names:

  - for an enrolled profile, the address the port-tracking registry has
    for it (its live rotation connection's, else the last address it
    proved the key from).  A blacklisted profile is answered
    C{blacklisted}, and one the offline sweep marked offline
    C{device_offline}, at once and without a hello: neither can pass;
  - for an account without a profile, the targets the operator gave it in
    the verify-targets file (the locations file's format, one line per
    user: C{alice: 192.0.2.7}).

Then the device proves the user's password with the classic salted
challenge (docs/PROTOCOL.md §11 says why this proof, not one of the
rotation key): a hello to that address only, and only a connection from
it may answer.  The caller's deadline bounds the whole answer: the device
has that long to connect back, and the answer is written when it passes,
whatever is still in flight.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suto_server.locations import Location, LocationError, Locations
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.registry import LiveSessions
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

    @ivar device: the address the device was asked at, or L{None} when
        none was.
    """

    user: str
    answer: Answer
    reason: str
    device: str | None = None


#: How each ending of the classic challenge reads as an answer.
_ANSWERS = {
    Verdict.ACCEPTED: Answer.ACCEPTED,
    Verdict.REJECTED: Answer.REJECTED,
    Verdict.CANCELLED: Answer.REJECTED,
    Verdict.TIMEOUT: Answer.DEVICE_OFFLINE,
    Verdict.TLS_TRUST_FAILURE: Answer.ERROR,
    Verdict.REFUSED_BY_LIMITS: Answer.ERROR,
    Verdict.ERROR: Answer.ERROR,
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
    @param store: the L{suto_server.store.interfaces.IStore} the profiles,
        their standing and the blacklist are read from.
    @param live: the live rotation connections.
    @param authenticator: runs the classic challenge at an address.
    @param targets: the verify-targets file, read as named locations
        whose names are users.
    @param hello_port: the port the devices hear hellos on.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        store,
        live: LiveSessions,
        authenticator: Authenticator,
        targets: Locations,
        hello_port: int,
    ) -> None:
        self._clock = clock
        self._store = store
        self._live = live
        self._authenticator = authenticator
        self._targets = targets
        self._hello_port = hello_port

    def verify(self, user: str, deadline: float) -> Deferred:
        """
        Verify C{user} at their device within C{deadline} seconds.

        @return: a L{Deferred} firing with a L{VerifyResult}, never
            failing, within C{deadline} seconds.
        """
        try:
            where = self._device(user)
        except StoreError:
            self.log.failure("reading {user}'s profile for a verification", user=user)
            where = VerifyResult(user, Answer.ERROR, "the store could not be read")
        if isinstance(where, VerifyResult):
            return succeed(where)
        device, location = where
        return self._challenge(user, device, location, deadline)

    def _device(self, user: str):
        """
        @return: C{(description, location)} of where to ask C{user}'s
            device, or the L{VerifyResult} that needs no device.
        """
        profile = self._store.get_profile(user)
        if profile is not None:
            blacklisted, offline_since = self._store.standing(user)
            if blacklisted:
                return VerifyResult(user, Answer.BLACKLISTED, "the profile is blacklisted")
            if offline_since is not None:
                return VerifyResult(
                    user,
                    Answer.DEVICE_OFFLINE,
                    "the profile is marked offline: its device stopped rotating",
                )
            session = self._live.get(user)
            address = session.address if session is not None else profile.last_address
            if address is None:
                return VerifyResult(
                    user, Answer.NO_DEVICE, "the profile has no known address"
                )
            network = ipaddress.ip_network(address)
            return address, Location((network,))
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
        return location.describe(), location

    def _challenge(self, user: str, device: str, location, deadline: float) -> Deferred:
        """
        Run the classic challenge at C{location}, answering within
        C{deadline} whatever happens.
        """
        if not self._authenticator.has_account(user):
            return succeed(
                VerifyResult(
                    user,
                    Answer.ERROR,
                    "the server has no password for the user to challenge "
                    "the device with",
                    device,
                )
            )
        targets = hello_targets(location, self._hello_port)
        if not targets:
            return succeed(
                VerifyResult(
                    user, Answer.NO_DEVICE, "the configured targets get no hello", device
                )
            )
        try:
            outcome = self._authenticator.authenticate(user, targets, deadline)
        except RequestConflict:
            return succeed(
                VerifyResult(
                    user,
                    Answer.ERROR,
                    "another authentication waits for this device; try again",
                    device,
                )
            )
        except OSError as error:
            return succeed(
                VerifyResult(
                    user,
                    Answer.ERROR,
                    f"the hello could not be sent: {error.strerror or error}",
                    device,
                )
            )
        answered = Deferred()
        timer = self._clock.callLater(
            deadline,
            _answer_once,
            answered,
            VerifyResult(
                user, Answer.ERROR, "the device did not finish within the deadline", device
            ),
        )

        def ended(result):
            if timer.active():
                timer.cancel()
            _answer_once(answered, result)

        outcome.addCallback(
            lambda ending: VerifyResult(
                user, _ANSWERS[ending.verdict], ending.reason or ending.verdict.value, device
            )
        ).addErrback(self._failed, user, device).addCallback(ended)
        return answered

    def _failed(self, failure, user: str, device: str) -> VerifyResult:
        self.log.failure("verifying {user}", failure, user=user)
        return VerifyResult(user, Answer.ERROR, "internal error", device)


def _answer_once(answered: Deferred, result: VerifyResult) -> None:
    if not answered.called:
        answered.callback(result)
