# -*- test-case-name: tests.cluster.test_leadership,tests.store.postgres.test_outage -*-
"""
The jobs that must run once however many server processes share a store
(the offline sweep, the certificate expiry warnings), run by one elected
leader.

How it works: L{Leadership} tries its store's leader lock
(L{suto_server.store.clustering.IClusterLock}) when it starts and every
L{RETRY_EVERY} seconds after, on a thread of its own, since each try is
a round trip to the store.  The try that takes the lock starts the jobs;
while leading, each try checks the lock is still held, and the one that
finds it gone (the store dropped the connection, or cannot be reached)
stops them.  A leader that dies loses the lock with its connection, and
another process takes over at its next try: within L{RETRY_EVERY}
seconds when the process ended, within the lock connection's keepalive
bound (about 11 seconds) more when its host vanished.

Until a leader learns its lock is gone, and another takes it, both may
run the jobs for up to one retry interval: the jobs bear that (a second
sweep finds nothing left to mark; a warning may go out twice).

While the store is away (stopped, restarting, failing over) no process
can hold the lock, so none leads: each try fails, is logged as a
warning, and the jobs stay stopped.  The lock connects again at each
try, so the first try once the store is back elects a leader again,
with no restart (C{tests/store/postgres/test_outage.py}).

A store no other process can share (a SQLite file, locked with its data
folder) has no lock: the one process leads from its start.
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from suto_server.store.clustering import IClusteredStore
from suto_server.store.errors import StoreError

#: Seconds between two tries of the leader lock.
RETRY_EVERY = 3.0


class Leadership(Service):
    """
    Runs L{jobs} while this process leads.

    @param reactor: delivers the lock's answers from its thread (an
        L{IReactorFromThreads}).
    @param lock: the store's L{IClusterLock}; L{None} to lead from the
        start.
    @param clock: the L{IReactorTime} the tries are scheduled on; the
        reactor unless given.

    @ivar jobs: the L{MultiService} of the once-only jobs; add them
        before this service starts.
    @ivar leading: whether this process runs the jobs now.
    """

    log = Logger()

    def __init__(
        self, reactor, lock=None, retry_every: float = RETRY_EVERY, clock=None
    ) -> None:
        self.jobs = MultiService()
        self.leading = False
        self._reactor = reactor
        self._clock = reactor if clock is None else clock
        self._lock = lock
        self._retry_every = retry_every
        self._threads: ThreadPool | None = None
        self._loop: LoopingCall | None = None
        # The try under way, and who waits for it.
        self._trying: Deferred | None = None
        self._waiters: list[Deferred] = []

    def startService(self) -> None:
        super().startService()
        if self._lock is None:
            self._lead()
            return
        self._threads = ThreadPool(minthreads=1, maxthreads=1, name="suto-leader")
        self._threads.start()
        self._loop = LoopingCall(self.attempt)
        self._loop.clock = self._clock
        self._loop.start(self._retry_every, now=True)

    def attempt(self) -> Deferred:
        """
        Try the lock once, and start or stop the jobs by the answer; or,
        while a try is under way, wait for that one.  The retry loop
        calls this, and waits for it before counting down to the next
        try.

        @return: a L{Deferred} firing with L{None} once the jobs follow
            the answer; it never fails (a store that cannot be reached
            is logged, and means not leading).
        """
        if self._trying is None:
            self._trying = deferToThreadPool(
                self._reactor, self._threads, self._lock.try_acquire
            )
            self._trying.addErrback(self._failed).addCallback(self._follow)
            self._trying.addBoth(self._tried)
        waiter = Deferred()
        self._waiters.append(waiter)
        return waiter

    def _failed(self, failure) -> bool:
        failure.trap(StoreError)
        self.log.warn(
            "the leader lock could not be tried: {error}",
            error=failure.getErrorMessage(),
        )
        return False

    def _tried(self, result) -> None:
        if isinstance(result, Failure):
            self.log.failure("starting or stopping the once-only jobs failed", result)
        self._trying = None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _follow(self, holding: bool):
        if not self.running:
            return None
        if holding and not self.leading:
            self._lead()
        elif not holding and self.leading:
            self.log.warn("this process lost the lead: stopping the once-only jobs")
            return self._step_down()
        return None

    def _lead(self) -> None:
        if self._lock is not None:
            self.log.info("this process leads: starting the once-only jobs")
        self.leading = True
        self.jobs.startService()

    def _step_down(self) -> Deferred:
        self.leading = False
        return self.jobs.stopService()

    def stopService(self) -> Deferred:
        """
        Stop the tries and the jobs, then let the lock go (at once, so
        another process need not wait for this one's connection to
        time out) and stop the lock's thread.
        """
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        d = self._step_down() if self.leading else succeed(None)
        threads, self._threads = self._threads, None
        if threads is None:
            return d

        def release(_):
            return deferToThreadPool(self._reactor, threads, self._lock.release)

        def stop(result):
            threads.stop()
            return result

        return d.addCallback(release).addBoth(stop)


def leadership_for(reactor, store, retry_every: float = RETRY_EVERY) -> Leadership:
    """
    @param store: the server's store; one several processes may share
        (an L{IClusteredStore}) gives the leader lock.
    @return: the L{Leadership} of a server on C{store}.
    """
    lock = store.leader_lock() if IClusteredStore.providedBy(store) else None
    return Leadership(reactor, lock, retry_every)
