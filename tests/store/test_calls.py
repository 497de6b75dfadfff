"""
Tests for L{suto_server.store.calls}: the store's calls as Deferreds, at
once on a local store and on the database thread for a shared one.
"""

import threading

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import directlyProvides
from zope.interface.verify import verifyObject

from suto_server.store.calls import (
    CALLS,
    IStoreCalls,
    LocalCalls,
    ThreadedCalls,
    calls_for,
)
from suto_server.store.clustering import IClusteredStore
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError, UserExists
from suto_server.store.memory import MemoryStore
from tests.support.coroutines import failure_of, result_of
from tests.support.store_suite.values import HASH


class LocalCallsTests(SynchronousTestCase):
    """
    L{LocalCalls} runs each call at once and hands back a fired Deferred.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.calls = LocalCalls(self.store)

    def test_interface(self):
        self.assertTrue(verifyObject(IStoreCalls, self.calls))

    def test_result(self):
        """
        What the store returns is the Deferred's result, already there.
        """
        self.store.add_user("alice", HASH, 0.0)
        self.assertEqual(self.successResultOf(self.calls.hash_for("alice")), HASH)

    def test_keywords(self):
        """
        Keyword arguments reach the store's method.
        """
        self.successResultOf(
            self.calls.add_user(username="bob", password_hash=HASH, now=0.0)
        )
        self.assertEqual(self.store.hash_for("bob"), HASH)

    def test_failure(self):
        """
        What the store raises is the Deferred's failure, not raised by the
        call.
        """
        self.store.close()
        self.failureResultOf(self.calls.get_profile("alice"), StoreError)

    def test_only_store_calls(self):
        """
        Only the store's calls are offered: not its lifecycle, nor a name
        it does not have.
        """
        for name in ("sibling", "close", "leader_lock", "no_such_call"):
            self.assertRaises(AttributeError, getattr, self.calls, name)
        self.assertIn("commit_rotations", CALLS)
        self.assertIn("announce", CALLS)

    def test_kept(self):
        """
        A call is made once and kept, so a later lookup finds the same one.
        """
        self.assertIs(self.calls.get_profile, self.calls.get_profile)


class ThreadedCallsTests(TestCase):
    """
    L{ThreadedCalls} runs each call on the database thread, with the
    thread's own store object.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.threads = []
        store = self.store

        class Sibling:
            def __getattr__(inner, name):
                method = getattr(store, name)

                def call(*args, **kwargs):
                    self.threads.append(threading.current_thread())
                    return method(*args, **kwargs)

                return call

        self.store.sibling = Sibling
        self.database = DatabaseThread(reactor, self.store)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        self.calls = ThreadedCalls(self.database)

    @inlineCallbacks
    def test_on_thread(self):
        """
        The call runs off the reactor thread, and its result arrives as the
        Deferred's.
        """
        self.store.add_user("alice", HASH, 0.0)
        found = yield self.calls.hash_for("alice")
        self.assertEqual(found, HASH)
        self.assertEqual(len(self.threads), 1)
        self.assertIsNot(self.threads[0], threading.current_thread())

    @inlineCallbacks
    def test_failure(self):
        """
        What the store raises on the thread is the Deferred's failure.
        """
        self.store.add_user("alice", HASH, 0.0)
        with self.assertRaises(UserExists):
            yield self.calls.add_user("alice", HASH, 0.0)


class _Recording:
    """
    Stands for a database thread or pool: records the names of the calls
    it is given, and makes them at once on C{store}.
    """

    def __init__(self, store):
        self.store = store
        self.names = []

    def run(self, call, *args, **kwargs):
        self.names.append(args[0] if args else None)
        return maybeDeferred(call, self.store, *args, **kwargs)


class PooledCallsTests(SynchronousTestCase):
    """
    With a pool, L{ThreadedCalls} gives it the calls of L{IStore}, and
    keeps those of L{IClusteredStore} on the one database thread: a claim
    belongs to the session that took it, and notices keep their order
    only from one session.
    """

    def test_routes(self):
        """
        A call of L{IStore} goes to the pool; a claim, its release and a
        notice go to the database thread.
        """
        store = MemoryStore()
        store.add_user("alice", HASH, 0.0)
        store.take_claim = store.release_claim = store.announce = lambda key: key
        database, pool = _Recording(store), _Recording(store)
        calls = ThreadedCalls(database, pool)
        self.assertEqual(self.successResultOf(calls.hash_for("alice")), HASH)
        for name in ("take_claim", "release_claim", "announce"):
            self.successResultOf(getattr(calls, name)(name))
        self.assertEqual(pool.names, ["alice"])
        self.assertEqual(database.names, ["take_claim", "release_claim", "announce"])

    def test_calls_for(self):
        """
        L{calls_for} hands a shared store's calls the pool it is given.
        """
        store = MemoryStore()
        directlyProvides(store, IClusteredStore)
        database, pool = _Recording(store), _Recording(store)
        self.successResultOf(calls_for(store, database, pool).get_profile("alice"))
        self.assertEqual((database.names, pool.names), ([], ["alice"]))


class CallsForTests(SynchronousTestCase):
    """
    L{calls_for} chooses by the store: threaded only for a shared store
    with a database thread.
    """

    def test_local_store(self):
        store = MemoryStore()
        self.assertIsInstance(
            calls_for(store, DatabaseThread(reactor, store)), LocalCalls
        )

    def test_no_thread(self):
        store = MemoryStore()
        directlyProvides(store, IClusteredStore)
        self.assertIsInstance(calls_for(store), LocalCalls)

    def test_shared_store(self):
        store = MemoryStore()
        directlyProvides(store, IClusteredStore)
        self.assertIsInstance(
            calls_for(store, DatabaseThread(reactor, store)), ThreadedCalls
        )


class CoroutineHelperTests(SynchronousTestCase):
    """
    The tests' way of running a coroutine over L{LocalCalls} finds its
    result, or its failure, at once.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.calls = LocalCalls(self.store)

    async def _hash(self, user):
        return await self.calls.hash_for(user)

    def test_result(self):
        self.store.add_user("alice", HASH, 0.0)
        self.assertEqual(result_of(self, self._hash("alice")), HASH)

    def test_failure(self):
        self.store.close()
        failure_of(self, self._hash("alice"), StoreError)
