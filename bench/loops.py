"""
Bounded load loops: every loop in the benchmark stops when its time is up
or its count is spent, whichever comes first.

A L{Budget} is shared by all the workers of one measurement, so the count
bounds the measurement as a whole; L{run_workers} runs Twisted workers
against one and waits for all of them, and L{measure_workers} also times
them and reads the CPU both sides spent.
"""

from __future__ import annotations

import threading
from typing import Callable

from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks

from bench.cpu import CpuMeter
from bench.measurement import Tally


class Budget:
    """
    Permission to start one more iteration, until a deadline or a count.

    Safe to share between threads: crypt workers take from it outside the
    reactor.

    @ivar started: how many iterations were allowed to start.
    """

    def __init__(
        self, now: Callable[[], float], duration: float, max_count: int
    ) -> None:
        """
        @param now: the clock the deadline is read on (seconds).
        @param duration: seconds from now during which iterations may start.
        @param max_count: the most iterations allowed in all.
        @raise ValueError: C{duration} or C{max_count} is not positive.
        """
        if not duration > 0 or max_count < 1:
            raise ValueError("a budget needs positive time and count")
        self._now = now
        self._deadline = now() + duration
        self._max_count = max_count
        self._lock = threading.Lock()
        self.started = 0

    def take(self) -> bool:
        """
        @return: whether one more iteration may start (and count it).
        """
        with self._lock:
            if self.started >= self._max_count or self._now() >= self._deadline:
                return False
            self.started += 1
            return True


@inlineCallbacks
def _worker(budget: Budget, step: Callable[[], Deferred]):
    while budget.take():
        yield step()


def run_workers(budget: Budget, steps: list[Callable[[], Deferred]]) -> Deferred:
    """
    Run one worker per step function, each calling its step again as soon
    as the previous call's L{Deferred} fires, while C{budget} allows.

    @param steps: zero-argument callables returning L{Deferred}s; each
        must bound its own duration (timeouts) so the workers end.
    @return: a L{Deferred} firing when every worker has stopped, failing
        with the first unexpected error of a step.
    """
    return gatherResults(
        [_worker(budget, step) for step in steps], consumeErrors=True
    )


@inlineCallbacks
def measure_workers(
    reactor,
    tally: Tally,
    steps: list[Callable[[], Deferred]],
    *,
    duration: float,
    max_count: int,
    server_pid: int | None,
):
    """
    L{run_workers} under a fresh L{Budget}, timed on the reactor's clock,
    with the CPU both sides spent meanwhile.

    @param tally: where the steps record their outcomes.
    @param server_pid: the server under load, whose CPU time is read.
    @return: a L{Deferred} firing with the L{Measurement}.
    """
    meter = CpuMeter(server_pid)
    start = reactor.seconds()
    yield run_workers(Budget(reactor.seconds, duration, max_count), steps)
    seconds = reactor.seconds() - start
    return tally.measurement(seconds, meter.read())
