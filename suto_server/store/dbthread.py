# -*- test-case-name: tests.store.test_dbthread -*-
"""
Store writes that end in a sync to disk, run on a thread of their own.

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
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore


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

    def __init__(self, reactor, store: IStore) -> None:
        self._reactor = reactor
        self._main = store
        self._store = None
        self._threads: ThreadPool | None = None

    def startService(self) -> None:
        """
        Start the thread.  This needs no running reactor, so tests may
        start it themselves.
        """
        super().startService()
        # A stopped ThreadPool cannot start again: each run gets its own.
        self._threads = ThreadPool(minthreads=1, maxthreads=1, name="suto-db")
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
