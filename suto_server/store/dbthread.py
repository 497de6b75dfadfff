# -*- test-case-name: tests.store.test_dbthread,tests.store.test_calls -*-
"""
The store's threads: writes that end in a sync to disk on a thread of
their own, and the rules' calls to a store across the network on a pool.

A durable SQLite commit waits for C{fdatasync}, which takes far longer
than the statements before it; on the reactor thread every connection
would wait with it.  L{DatabaseThread} owns one thread and, in it, one
store object of its own (the store's L{IStore.sibling}, opened on the
thread: a store object belongs to the thread that opened it, see
L{IStore}), and runs the calls it is given there, one at a time, in the
order given.

One thread rather than several: the writes it carries (a batch of
rotations) take SQLite's single write lock anyway, and their order is
the order of the compare-and-swaps.  A one-thread L{ThreadPool} with
L{deferToThreadPool} rather than L{twisted.enterprise.adbapi}: adbapi
commits or rolls back around each call, which clashes with the store's
own C{BEGIN IMMEDIATE} transactions, and opens plain connections without
the store's pragmas.

The rules' own calls on a store across the network (PostgreSQL: each a
read or a single write of one connection's decision, see
L{suto_server.store.calls}) go to a L{DatabasePool} instead, of
L{POOL_SIZE} such threads, each with its own sibling, so that they never
queue behind a batch and a slow one holds up only its own thread.  Their
order does not matter: the store's transactions decide their races, as
they do between processes.  (The notices and claims of a shared store
stay on the ordered thread: a claim belongs to the session that took it,
and notices keep their order only from one session.)  A thread waiting on the network holds no
lock of Python's, so the threads' waits overlap.  Measured on a 2-core
machine, against a PostgreSQL server over a Unix socket, with 256
connections each starting rotations back to back (two calls each:
C{standing}, C{get_profile}): 2,400-2,800 starts/s on one thread,
3,100-3,900 on four, 3,800-4,400 on eight; with 0.3 ms of round trip
added to every call, as across a network, 470-560, 1,600-2,000 and
2,500-3,000.  Four threads keep most of that gain for half the server
connections of eight (each process holds the pool's, the ordered
thread's, the leader lock's and the notices'); a fleet of 100,000
devices rotating every minute starts about 1,700 rotations a second.

The pool holds at most L{POOL_WAITING} calls per thread, the running one
included; a call beyond that fails at once with L{PoolFull} (a
L{StoreError}), which a device's step answers C{SUTO_ERROR_BUSY}, as for
a store that did not answer.  Without a bound an outage grows the queue
without end: a call to a host that drops packets waits out the connect
timeout (5 s) before it fails, four at a time, while a fleet keeps
starting rotations by the thousand a second; each device's connection
times out after its exchange timeout, but its calls stay queued, so the
queue holds the calls of connections long gone, and once the server is
back every new connection waits behind them.  256 calls a thread wait at
most a quarter of a second on a store that answers in a millisecond,
far less than an exchange's timeout, so a healthy burst (the fleet
coming back after a restart) is not refused.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore

#: The threads of a L{DatabasePool}.
POOL_SIZE = 4

#: The calls a L{DatabasePool} holds per thread, the running one
#: included, before it refuses more.
POOL_WAITING = 256


class PoolFull(StoreError):
    """
    Every thread of a L{DatabasePool} holds its L{POOL_WAITING} calls: the
    store is answering too slowly (away, or overloaded) to take another.
    """


def store_method(name: str) -> Callable:
    """
    @return: a call of the store method C{name}, for L{DatabaseThread.run}
        to make on the thread's own store.
    """

    def call(store, *args, **kwargs):
        return getattr(store, name)(*args, **kwargs)

    return call


class DatabaseThread(Service):
    """
    Runs store calls on one thread with its own store object.

    @param reactor: delivers the results (an L{IReactorFromThreads}).
    @param store: the L{IStore} the daemon opened; the thread opens its
        L{IStore.sibling} before its first call, and closes that sibling
        (never C{store} itself) when the service stops.
    """

    def __init__(self, reactor, store: IStore, name: str = "suto-db") -> None:
        self._reactor = reactor
        self._main = store
        self._name = name
        self._store = None
        self._threads: ThreadPool | None = None

    def startService(self) -> None:
        """
        Start the thread.  This needs no running reactor, so tests may
        start it themselves.
        """
        super().startService()
        # A stopped ThreadPool cannot start again: each run gets its own.
        self._threads = ThreadPool(minthreads=1, maxthreads=1, name=self._name)
        self._threads.start()

    def stopService(self) -> Deferred[None]:
        """
        Stop taking calls, let the ones already given finish (their
        results are still delivered), close the thread's store, and stop
        the thread.

        @return: a L{Deferred} firing once the thread has stopped.
        """
        super().stopService()
        threads, self._threads = self._threads, None
        if threads is None:
            return succeed(None)

        def stop(result):
            threads.stop()
            return result

        # The thread runs calls in order: this one comes after every call
        # already given.
        return deferToThreadPool(self._reactor, threads, self._close).addBoth(stop)

    def run(self, call: Callable, *args, **kwargs) -> Deferred:
        """
        C{call(store, *args, **kwargs)} on the thread, with the thread's
        store.

        @return: a L{Deferred} firing on the reactor thread with what it
            returned, or failing with what it raised; failing at once with
            L{StoreError} when the thread is not running.
        """
        if self._threads is None:
            return fail(StoreError("the database thread is not running"))
        return deferToThreadPool(
            self._reactor, self._threads, self._on_thread, call, args, kwargs
        )

    def _on_thread(self, call: Callable, args: tuple, kwargs: dict):
        if self._store is None:
            self._store = self._main.sibling()
        return call(self._store, *args, **kwargs)

    def _close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


class DatabasePool(Service):
    """
    Runs store calls on several L{DatabaseThread}s, each with its own
    store object (its sibling, opened on it at its first call and closed
    on it at stop), giving each call to the thread with the fewest calls
    waiting.  Calls on different threads run at once, so their order is
    not kept: for the rules' calls, each a decision's own read or single
    write, whose races the store's transactions decide.

    @param reactor: delivers the results (an L{IReactorFromThreads}).
    @param store: the L{IStore} the daemon opened.
    @param size: the threads.
    @param bound: the calls each thread holds, the running one included,
        before the pool refuses more (see L{PoolFull}).
    """

    def __init__(
        self, reactor, store: IStore, size: int = POOL_SIZE, bound: int = POOL_WAITING
    ) -> None:
        self._threads = [
            DatabaseThread(reactor, store, name=f"suto-db-{number}")
            for number in range(size)
        ]
        self._waiting = [0] * size
        self._bound = bound

    def startService(self) -> None:
        super().startService()
        for thread in self._threads:
            thread.startService()

    def stopService(self) -> Deferred[None]:
        """
        Stop every thread once the calls given to it are done.

        @return: a L{Deferred} firing once they all stopped.
        """
        super().stopService()
        stopped = [thread.stopService() for thread in self._threads]
        return gatherResults(stopped, consumeErrors=True).addCallback(lambda _: None)

    def run(self, call: Callable, *args, **kwargs) -> Deferred:
        """
        C{call(store, *args, **kwargs)} on the least busy thread, with
        that thread's store; see L{DatabaseThread.run}.

        @return: as L{DatabaseThread.run}'s, or failing at once with
            L{PoolFull} when every thread holds its bound of calls.
        """
        waiting = self._waiting
        least = min(waiting)
        if least >= self._bound:
            return fail(
                PoolFull(
                    f"the database pool is full: {least * len(waiting)} calls "
                    f"wait for the store"
                )
            )
        index = waiting.index(least)
        waiting[index] += 1

        def done(result):
            waiting[index] -= 1
            return result

        # The caller gets a Deferred of its own: cancelling it (giving up
        # on the answer) leaves the call counted until its thread took it,
        # and a call given up before then is not made at all: a
        # verification past its deadline costs the store nothing more.
        # Only a cancel fires the answer before its thread has returned.
        answer = Deferred()

        def unless_given_up(store, *args, **kwargs):
            if answer.called:
                return None
            return call(store, *args, **kwargs)

        self._threads[index].run(unless_given_up, *args, **kwargs).addBoth(
            done
        ).chainDeferred(answer)
        return answer
