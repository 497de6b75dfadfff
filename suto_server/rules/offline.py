# -*- test-case-name: tests.rules.test_offline,tests.rules.test_rotation_threaded -*-
"""
Offline detection: a profile whose junk was due and did not come is marked
offline, durably and with the time (docs/PROTOCOL.md §10.1).

An agent rotates every interval, each wait up to
L{suto_server.core.timing.JITTER} longer; a profile last seen longer ago
than that plus a grace has missed a rotation
(L{suto_server.core.timing.silence_allowed}).
Rather than a timer per profile (a fleet of thousands would keep the
reactor's timer heap busy), one periodic sweep asks the store for the
profiles last seen before that deadline, leaves out those with a live
connection, and marks the rest offline in one transaction.  Last-seen
times are durable, so the first sweep after a restart finds every profile
that fell silent while the server was down.

The sweep awaits the store's calls (L{suto_server.store.calls.IStoreCalls}):
on a store across the network the reactor serves connections while it
reads and marks, and the next sweep is timed from the end of this one, so
two never overlap.  Which profiles are live is read after the silent ones
arrive, not before; and the store marks a profile only if it is still
silent (C{silent_before}), so one that rotated meanwhile on another
connection or process stays as it is.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from suto_server.core import timing
from suto_server.store.errors import StoreError

#: Seconds between two sweeps at most.
MAX_SWEEP = 10.0


class OfflineWatch(TimerService):
    """
    Sweeps for silent profiles every C{min(grace, MAX_SWEEP)} seconds.

    @param clock: the L{IReactorTime} the sweeps run on.
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}).
    @param is_live: tells whether a profile has a live connection now.
    """

    log = Logger()

    def __init__(
        self,
        clock,
        calls,
        interval: float,
        grace: float,
        is_live: Callable[[str], bool],
    ) -> None:
        super().__init__(min(grace, MAX_SWEEP), self._sweep_logged)
        self.clock = clock
        self._calls = calls
        self._allowed = timing.silence_allowed(interval, grace)
        self._is_live = is_live

    def _sweep_logged(self) -> Deferred:
        # A failed sweep (the store could not be read or written) must not
        # stop the next ones: the failure is logged, never returned.
        return Deferred.fromCoroutine(self.sweep()).addErrback(self._sweep_failed)

    def _sweep_failed(self, failure) -> None:
        if failure.check(StoreError):
            self.log.warn(
                "sweeping for offline profiles failed: {error}; the next "
                "sweep tries again",
                error=failure.value,
            )
        else:
            self.log.failure("sweeping for offline profiles failed", failure)

    async def sweep(self) -> list[str]:
        """
        Mark offline every profile silent for too long without a live
        connection.

        @return: the user names newly marked.
        """
        now = self.clock.seconds()
        before = now - self._allowed
        silent = [
            user
            for user in await self._calls.silent_profiles(before)
            if not self._is_live(user)
        ]
        if not silent:
            return []
        marked = await self._calls.mark_offline(silent, now, silent_before=before)
        if marked:
            self.log.info(
                "{count} profile(s) marked offline: their junk was due and "
                "did not come",
                count=len(marked),
                users=marked,
            )
        return marked
