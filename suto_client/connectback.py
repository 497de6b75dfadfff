# -*- test-case-name: tests.client.test_connectback -*-
"""
Answering an accepted hello: connecting back to the server, and again if
it turned the connection away.

A server over one of its connection limits (too many connections
starting, say) closes a new connection at once, before TLS and without a
message (docs/PROTOCOL.md §4), while its authentication request keeps
waiting for the device.  One refused connect-back would lose that login,
so the agent tries again after a short back-off: the first retry after
C{FIRST_RETRY} seconds, each wait doubling up to C{LONGEST_RETRY}, each a
uniform draw from the upper half of its range so that a fleet told at
once does not come back at once.  It stops at the first result that is not
a turn-away (a verdict, a TLS trust failure such as a pin mismatch, any
error once the server spoke), after C{MOST_ATTEMPTS} attempts, or when the
next attempt would start after the time the agent gives itself to answer
a hello (its C{--timeout}).
"""

from __future__ import annotations

import random as random_module
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from suto_client.classic_machine import Outcome
from suto_client.protocol import AuthResult

FIRST_RETRY = 0.25
"""Seconds before the first retry, at most."""

LONGEST_RETRY = 2.0
"""The most seconds between two attempts."""

MOST_ATTEMPTS = 5
"""The most connections made to answer one hello."""


def connect_back(
    attempt: Callable[[], Deferred],
    clock: IReactorTime,
    within: float,
    random: random_module.Random,
) -> Deferred:
    """
    Run C{attempt} until its result is not a turn-away, or the retries run
    out.

    @param attempt: runs one authentication; returns a L{Deferred} firing
        with its L{AuthResult}.
    @param clock: times the back-off and the deadline.
    @param within: seconds from now after which no attempt starts.
    @param random: draws the jitter.
    @return: a L{Deferred} firing with the last attempt's result;
        cancelling it abandons the attempt running, or the wait.
    """
    return _ConnectBack(attempt, clock, clock.seconds() + within, random).run()


class _ConnectBack:
    """
    The attempts made to answer one hello.  At any time one attempt runs
    or one retry waits, until C{_result} fires.
    """

    def __init__(self, attempt, clock, deadline: float, random) -> None:
        self._attempt = attempt
        self._clock = clock
        self._deadline = deadline
        self._random = random
        self._attempts = 0
        self._abandoned = False
        self._running: Deferred | None = None
        self._retry = None
        self._result = Deferred(self._cancel)

    def run(self) -> Deferred:
        self._start()
        return self._result

    def _start(self) -> None:
        self._retry = None
        self._attempts += 1
        self._running = self._attempt()
        self._running.addCallbacks(self._ended, self._crashed)

    def _ended(self, result: AuthResult) -> None:
        self._running = None
        if self._result.called:
            return
        delay = self._backoff()
        if (
            result.turned_away
            and not self._abandoned
            and self._attempts < MOST_ATTEMPTS
            and self._clock.seconds() + delay < self._deadline
        ):
            self._retry = self._clock.callLater(delay, self._start)
        else:
            self._result.callback(result)

    def _crashed(self, failure: Failure) -> None:
        self._running = None
        if not self._result.called:
            self._result.errback(failure)

    def _backoff(self) -> float:
        """
        The wait before the next attempt: a uniform draw from the upper
        half of a range that doubles with each attempt made.
        """
        longest = min(FIRST_RETRY * 2 ** (self._attempts - 1), LONGEST_RETRY)
        return self._random.uniform(longest / 2, longest)

    def _cancel(self, result: Deferred) -> None:
        self._abandoned = True
        if self._running is not None:
            # The abandoned attempt's result ends the answer.
            self._running.cancel()
        elif self._retry is not None:
            self._retry.cancel()
            self._retry = None
            result.callback(
                AuthResult(Outcome.ERROR, "the exchange was abandoned")
            )
