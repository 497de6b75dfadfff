# -*- test-case-name: tests.cred.test_hashpool -*-
"""
Password hashes computed off the reactor thread.

A crypt computation costs milliseconds (sha512-crypt a few, yescrypt tens);
run on the reactor thread it would stall every connection.  L{HashPool}
owns a thread pool, started and stopped with the service, and runs
L{suto_server.core.libxcrypt.crypt} there; libxcrypt releases the GIL, so the
threads compute in parallel.  The number of computations waiting or
running is bounded: past C{max_pending} a request fails at once with
L{HashPoolBusy} instead of queueing without limit, so a flood of logins
cannot grow memory or latency without bound.
"""

from __future__ import annotations

import os

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from suto_server.core import libxcrypt

#: The bound on computations waiting or running: at a few milliseconds
#: each, a full queue drains in well under a second on a few cores.
DEFAULT_MAX_PENDING = 256


class HashPoolBusy(Exception):
    """
    The pool cannot take a computation now: C{max_pending} are already
    waiting or running, or the pool is not running.  Try again later; this
    says nothing about the credentials.
    """


class HashPool(Service):
    """
    Computes crypt hashes in its own threads.

    @ivar size: the number of threads.
    @ivar max_pending: the most computations waiting or running at once.
    """

    def __init__(
        self,
        reactor,
        size: int | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        on_busy=None,
    ) -> None:
        """
        @param reactor: delivers the results (an L{IReactorFromThreads}).
        @param size: the number of threads; by default one per CPU.
        @param max_pending: the bound on computations waiting or running.
        @param on_busy: called with no argument each time a computation is
            refused because C{max_pending} are pending (for the metrics).
        @raise ValueError: C{size} or C{max_pending} is not positive.
        """
        size = (os.cpu_count() or 1) if size is None else size
        if size < 1 or max_pending < 1:
            raise ValueError("a hash pool needs at least one thread and one slot")
        self._reactor = reactor
        self.size = size
        self.max_pending = max_pending
        self._on_busy = on_busy
        self._pending = 0
        self._threads: ThreadPool | None = None

    @property
    def pending(self) -> int:
        """
        The number of computations waiting or running.
        """
        return self._pending

    def startService(self) -> None:
        """
        Start the threads.  This needs no running reactor, so tests may
        start the pool themselves.
        """
        super().startService()
        # A stopped ThreadPool cannot start again: each run gets its own.
        self._threads = ThreadPool(minthreads=0, maxthreads=self.size, name="suto-hash")
        self._threads.start()

    def stopService(self) -> None:
        """
        Stop the threads, after they finish the computations already
        accepted (milliseconds each), whose results are still delivered.
        """
        super().stopService()
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.stop()

    def crypt(self, phrase: str | bytes, setting: str) -> Deferred[str]:
        """
        C{libxcrypt.crypt(phrase, setting)} in a pool thread.

        @return: a L{Deferred} firing on the reactor thread with the hash,
            or failing with L{libxcrypt.CryptError}, or failing at once with
            L{HashPoolBusy} when C{max_pending} computations are already
            pending or the pool is not running.
        """
        if self._threads is None:
            return fail(HashPoolBusy("the hash pool is not running"))
        if self._pending >= self.max_pending:
            if self._on_busy is not None:
                self._on_busy()
            return fail(HashPoolBusy(f"{self._pending} hash computations are pending"))
        self._pending += 1
        d = deferToThreadPool(
            self._reactor, self._threads, libxcrypt.crypt, phrase, setting
        )
        d.addBoth(self._settled)
        return d

    def _settled(self, result):
        self._pending -= 1
        return result
