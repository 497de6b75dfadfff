# -*- test-case-name: tests.client.test_checks -*-
"""
The agent's answers to check packets.

A server that sees a profile's client at a new address first asks the old
one, with a L{wire.Check}, whether the legitimate client is still there.
The agent answers with a proof that it holds the profile's current key,
bound to the check's nonce (L{keyschedule.check_proof}), and answers only
its own server: a check is answered only if it names an enrolled profile
and comes from that profile's server address.  Everything else is dropped
without a reply, and answers to each source are rate-limited, so that the
agent cannot be used to flood anyone: an answer is never longer than the
check it answers (see L{wire.encode_check}), and at most C{rate} of them
go to one address per C{period}.  The log lines about checks, answered or
not, are paced per source and reason (L{suto_server.core.throttle.PacedLog}).
"""

from __future__ import annotations

import collections
import ipaddress
from typing import Callable

from twisted.logger import Logger, LogLevel

from suto_client.hello import same_host
from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire
from suto_server.core.throttle import DEFAULT_LOG_INTERVAL, PacedLog

DEFAULT_CHECK_RATE = 10
"""The most checks answered for one source per period."""

DEFAULT_CHECK_PERIOD = 1.0
"""The period of the rate limit, in seconds."""


class CheckResponder:
    """
    Decides whether to answer a check, and makes the answer.
    """

    log = Logger()

    def __init__(
        self,
        profiles_provider: Callable[[], dict[str, EnrolledProfile]],
        clock,
        rate: int = DEFAULT_CHECK_RATE,
        period: float = DEFAULT_CHECK_PERIOD,
        log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """
        @param profiles_provider: returns the enrolled profiles, keyed by
            user; called for each check, so that the answer uses the key
            the profile holds at that moment.
        @param clock: the L{IReactorTime} the rate limit reads.
        @param rate: the most answers sent to one source per C{period}.
        @param period: seconds.
        @param log_interval: the least seconds between two log lines
            about checks from one source for one reason: anyone can send
            checks from any address, and must not fill the log.
        """
        self._profiles_provider = profiles_provider
        self._clock = clock
        self._rate = rate
        self._period = period
        self._paced = PacedLog(clock, log_interval)
        # The times of the latest answers to each source.  Only servers of
        # enrolled profiles are ever answered, which bounds its size.
        self._answered: dict[str, collections.deque[float]] = {}

    def answer(self, check: wire.Check, source: str) -> bytes | None:
        """
        The datagram that answers C{check}, received from C{source}, or
        L{None} if it must go unanswered.
        """
        profile = self._profiles_provider().get(check.user)
        if profile is None:
            self._paced.emit(
                self.log,
                LogLevel.debug,
                (source, "unknown"),
                "dropped a check for {user}, which has no profile, from "
                "{source}",
                user=check.user,
                source=source,
            )
            return None
        # Any server of the profile's deployment may check on it (§9.5).
        server = next(
            (host for host, _ in profile.servers if same_host(source, host)), None
        )
        if server is None:
            self._paced.emit(
                self.log,
                LogLevel.info,
                (source, "elsewhere"),
                "dropped a check for {user} from {source}, which is not "
                "its server {server}",
                user=check.user,
                source=source,
                server=profile.server_host,
            )
            return None
        if not self._may_answer(server):
            self._paced.emit(
                self.log,
                LogLevel.warn,
                (source, "too_many"),
                "dropped a check for {user} from {source}: too many checks",
                user=check.user,
                source=source,
            )
            return None
        proof = keyschedule.check_proof(profile.key, check.nonce, check.user)
        self._paced.emit(
            self.log,
            LogLevel.info,
            (source, "answered", check.user),
            "answered a check for {user} from {source}",
            user=check.user,
            source=source,
        )
        return wire.encode_check_proof(wire.CheckProof(check.nonce, proof))

    def _may_answer(self, server: str) -> bool:
        """
        Count an answer to C{server} if the rate limit allows one now.
        """
        now = self._clock.seconds()
        times = self._answered.setdefault(
            str(ipaddress.ip_address(server)),
            collections.deque(maxlen=self._rate),
        )
        # A clock that went back counts as a period gone by, so that the
        # limit cannot stay shut for as long as the clock jumped.
        if len(times) == self._rate and 0 <= now - times[0] < self._period:
            return False
        times.append(now)
        return True
