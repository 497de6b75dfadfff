# -*- test-case-name: tests.client.test_rotation,tests.client.test_reconnection,tests.client.test_version_fallback -*-
"""
Running key rotation (L{suto_client.rotation_machine}) on connections an
enrolled profile keeps open to its server (docs/PROTOCOL.md §9).

L{RotationProtocol} carries the machine's actions out on one connection
and paces the rotations; L{RotationFactory} keeps one profile's latest key
and back-off across the connections a
L{twisted.application.internet.ClientService} makes for it.

A profile whose junk was due and could not be delivered is offline
(docs/PROTOCOL.md §10): the factory marks it so, durably, and its next
connection reconnects before it rotates.

A server of the release before this one answers this release's version
with C{SUTO_ERROR_BAD_VERSION} and closes (docs/PROTOCOL.md §9.2).  The
factory then connects again at once announcing version 2 for an hour
(L{suto_client.version_fallback}), so endpoints upgraded before their
server keep rotating, in two round trips, and prime their rotations once
the server is upgraded.
"""

from __future__ import annotations

import os
import random as random_module
from dataclasses import replace
from typing import Callable

from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from suto_client.exchange import ConversationProtocol
from suto_client.failover import FailoverEndpoint
from suto_client.fingerprint import compute_fingerprint, default_sources
from suto_client.protocol import rereading_client_endpoint
from suto_client.rotation_machine import ClientRotation
from suto_client.rotation_outcome import (
    Commit,
    Report,
    RotationOutcome,
    require_rotatable,
)
from suto_client.state import Account, EnrolledProfile, server_text
from suto_client.version_fallback import (
    FALLBACK_SPELL,
    FALLBACK_VERSION,
    VersionFallback,
)
from suto_server.core import timing, wire

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


class CommitError(Exception):
    """
    The new key could not be stored; the message says why, without a
    secret.  A commit callable raises it so the rotation ends as
    L{RotationOutcome.ERROR} and the old key stays in use.
    """


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

    A profile with failover servers gets a L{FailoverEndpoint} over one
    such endpoint per server, each trusted the same way.

    @param timeout: seconds allowed for the TCP connection attempt.
    @raise ValueError: a file of the profile is unusable
        (L{suto_client.tls.ClientTLSError}).
    """
    endpoints = [
        (
            server_text(host, port),
            rereading_client_endpoint(
                reactor,
                Account(
                    user=profile.user,
                    server_host=host,
                    server_port=port,
                    pin=profile.pin,
                    ca=profile.ca,
                    client_cert=profile.client_cert,
                    client_key=profile.client_key,
                ),
                timeout,
            ),
        )
        for host, port in profile.servers
    ]
    if len(endpoints) == 1:
        return endpoints[0][1]
    return FailoverEndpoint(endpoints)


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
    before answering; a successful rotation resets all of them.  A server
    that refused this release's protocol version is not a failed rotation
    either: the next attempt comes at once, announcing an older version
    for a while (L{VersionFallback}).

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
        require_rotatable(profile)
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
        self._fallback = VersionFallback(clock)

    def buildProtocol(self, addr) -> RotationProtocol:
        self._note_silence()
        return RotationProtocol(
            ClientRotation(
                self.profile,
                self._fingerprint,
                self._random_bytes,
                self._fallback.version(),
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

    def _fell_back(self, report: Report) -> bool:
        """
        If the server refused a version it has an older one for, fall back
        to it, connect again at once, and say so once.  The refusal says
        nothing about the key: it counts toward no back-off and is not
        reported as a rotation.

        @return: whether C{report} was such a refusal.
        """
        refused = report.refused_version
        if not self._fallback.refused(refused):
            return False
        self._hold_off = 0.0
        self._unanswered = 0
        self.log.warn(
            "{server_host} port {server_port} refused protocol version "
            "{refused} and speaks only version {version}: {user} rotates in "
            "two round trips until the server is upgraded (trying version "
            "{refused} again in {spell:.0f} seconds)",
            server_host=self.profile.server_host,
            server_port=self.profile.server_port,
            user=self.profile.user,
            refused=refused,
            version=FALLBACK_VERSION,
            spell=FALLBACK_SPELL,
        )
        return True

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
        if self._fell_back(report):
            return
        if report.outcome is RotationOutcome.ROTATED:
            self._failures = 0
            self._next_hold_off = self._interval
            level = LogLevel.info
        elif report.outcome in (RotationOutcome.OPEN_FAILED, RotationOutcome.REFUSED):
            # Asking again at once would only be refused again.
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

