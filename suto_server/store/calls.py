# -*- test-case-name: tests.store.test_calls -*-
"""
The store's calls as the rules on the reactor thread make them: each
returns a L{Deferred}.

The rules decide on the reactor thread, in the order messages arrive, and
most decisions read or change the store.  Where the store is local (the
in-memory one, a SQLite file) a call answers in microseconds, so
L{LocalCalls} makes it where it is asked and returns a L{Deferred} that
has already fired: a rule's coroutine awaiting it goes on in the same
turn, as if it had called the store directly, and nothing about the order
of decisions changes.  Where the store is across a network (PostgreSQL) a
call answers after a round trip, or not at all while the network or the
server is away: L{ThreadedCalls} makes it on the database threads, and
the reactor serves every other connection meanwhile.  L{calls_for}
chooses, so the rules never know which store they have.

A failure of the store reaches the caller as the L{Deferred}'s failure
(L{suto_server.store.errors.StoreError}), never as an exception raised
by the call itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from twisted.internet.defer import Deferred, maybeDeferred
from zope.interface import Interface, implementer

from suto_server.store.clustering import IClusteredStore
from suto_server.store.dbthread import store_method
from suto_server.store.interfaces import IStore

#: The calls these objects carry: every method of L{IStore} and of
#: L{IClusteredStore} but the lifecycle, which belongs to whoever opened
#: the store.
CALLS = frozenset(
    name
    for interface in (IStore, IClusteredStore)
    for name in interface.names(all=True)
    if name not in ("sibling", "close", "leader_lock", "notice_listener")
)


class IStoreCalls(Interface):
    """
    The methods of L{IStore} (and, on a shared store, the notices and
    claims of L{IClusteredStore}) under their names, taking the same
    arguments, each returning a L{Deferred} of what the store's method
    returns, or failing with what it raises.  Called on the reactor thread
    only.
    """


@implementer(IStoreCalls)
class _Calls:
    """
    Makes each call once, by name, then keeps it on the object, so looking
    it up costs nothing after its first use.

    @param make: makes the call of a name in L{CALLS}.
    """

    def __init__(self, make: Callable[[str], Callable[..., Deferred]]) -> None:
        self._make = make

    def __getattr__(self, name: str) -> Callable[..., Deferred]:
        if name not in CALLS:
            raise AttributeError(name)
        call = self._make(name)
        setattr(self, name, call)
        return call


class LocalCalls(_Calls):
    """
    L{IStoreCalls} on a local store: each call runs at once on the
    reactor thread.
    """

    def __init__(self, store) -> None:
        def make(name: str) -> Callable[..., Deferred]:
            return partial(maybeDeferred, getattr(store, name))

        super().__init__(make)


#: The calls that must run on one store object, in the order made: a
#: claim is held by the session that took it, and notices from one
#: session arrive in the order sent.
_SESSION_CALLS = frozenset(IClusteredStore.names()) & CALLS


class ThreadedCalls(_Calls):
    """
    L{IStoreCalls} on a store across a network: each call runs on the
    database threads, with their own store objects.

    @param database: a L{suto_server.store.dbthread.DatabaseThread}.
    @param pool: a L{suto_server.store.dbthread.DatabasePool} for the
        calls of L{IStore}, which need no order among themselves; L{None}
        to run them on C{database} too.  The calls of L{IClusteredStore}
        always run on C{database}, in order, on one session.
    """

    def __init__(self, database, pool=None) -> None:
        def make(name: str) -> Callable[..., Deferred]:
            method = store_method(name)
            threads = database if pool is None or name in _SESSION_CALLS else pool

            def call(*args, **kwargs) -> Deferred:
                return threads.run(method, *args, **kwargs)

            return call

        super().__init__(make)


def calls_for(store, database=None, pool=None) -> _Calls:
    """
    @param store: the daemon's L{IStore}, on the reactor thread.
    @param database: the daemon's database thread, or L{None} where there
        is none (the in-memory store in tests).
    @param pool: the daemon's pool of database threads for a store across
        the network, if it has one (see L{ThreadedCalls}).
    @return: the L{IStoreCalls} the rules use: threaded for a store
        several processes share over the network, local otherwise.
    """
    if database is not None and IClusteredStore.providedBy(store):
        return ThreadedCalls(database, pool)
    return LocalCalls(store)
