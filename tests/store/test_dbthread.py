"""
Tests for L{suto_server.store.dbthread}: store calls on a real thread of their
own, with the thread's own SQLite connection, the group commit over it,
and stopping while a call is in flight; and how L{SutoServer} starts,
uses and stops its database thread.
"""

import os
import sqlite3
import threading

from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.defer import (
    CancelledError,
    fail,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.settings import EnrollmentSettings
from suto_server.store.dbthread import (
    DatabasePool,
    DatabaseThread,
    PoolFull,
    store_method,
)
from suto_server.store.errors import StoreError
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.memory import MemoryStore
from suto_server.store.sqlite import SQLiteStore
from tests.support.masterkey import new_master_key
from tests.support.server import make_server
from tests.support.store_suite.values import (
    HASH,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
    profile_for,
    window_for,
)


def _commit(store, rotations):
    return store.commit_rotations(rotations)


class _RecordingSiblings:
    """
    Stands for the daemon's store: opens the real store's siblings, and
    records the thread each was opened on.
    """

    def __init__(self, store):
        self.store = store
        self.opened = []

    def sibling(self):
        self.opened.append(threading.current_thread())
        return self.store.sibling()


def _enrolled_store(case):
    """
    @return: a new SQLite store, closed after C{case}, with C{alice}
        enrolled.
    """
    folder = case.mktemp()
    os.makedirs(folder)
    store = SQLiteStore.open(os.path.join(folder, "suto.db"))
    case.addCleanup(store.close)
    store.open_window(window_for("alice"))
    store.complete_enrollment(
        profile_for("alice", key_sealed=numbered_seal(0), key_id=numbered_key_id(0))
    )
    return store


def _started(case, make):
    """
    Start C{make(siblings)} over a store of L{_enrolled_store}'s, as
    C{case.store}, and stop it after C{case} unless the test did;
    C{case.opened} receives the thread of each store the siblings open.

    @return: the started service.
    """
    case.store = _enrolled_store(case)
    siblings = _RecordingSiblings(case.store)
    case.opened = siblings.opened
    service = make(siblings)
    service.startService()

    def stop():
        if service.running:
            return service.stopService()

    case.addCleanup(stop)
    return service


class DatabaseThreadTests(TestCase):
    """
    L{DatabaseThread} over a SQLite store with one enrolled profile.
    """

    def setUp(self):
        self.database = _started(
            self, lambda siblings: DatabaseThread(reactor, siblings)
        )

    @inlineCallbacks
    def test_runs_on_its_thread(self):
        """
        Calls run on the one thread, not the reactor's, with a store the
        thread opened itself once; what they commit is what the reactor
        thread's own connection reads next.
        """
        ran = []

        def where(store):
            ran.append((threading.current_thread(), store))

        yield self.database.run(where)
        applied = yield self.database.run(
            _commit, [numbered_rotation("alice", 0, 1, 2000.0)]
        )
        yield self.database.run(where)
        self.assertEqual(applied, [True])
        self.assertEqual(len(self.opened), 1)
        self.assertEqual({thread for thread, _ in ran}, set(self.opened))
        self.assertIsNot(self.opened[0], threading.current_thread())
        self.assertIsNot(ran[0][1], self.store)
        self.assertIs(ran[0][1], ran[1][1])
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(1))

    @inlineCallbacks
    def test_failure_delivered(self):
        """
        What a call raises fails its L{Deferred}, and the thread goes on
        with the next call.
        """
        bad = numbered_rotation("alice", 0, 1, 2000.0, new_key_id=None)
        with self.assertRaises(ValueError):
            yield self.database.run(_commit, [bad])
        applied = yield self.database.run(
            _commit, [numbered_rotation("alice", 0, 1, 2000.0)]
        )
        self.assertEqual(applied, [True])

    @inlineCallbacks
    def test_acknowledged_after_commit(self):
        """
        Over the thread, a group commit's results come only once the
        thread's commit has returned: while it is held up, nothing is
        delivered and nothing is visible to the reactor thread.
        """
        started, go = threading.Event(), threading.Event()

        def held(store, rotations):
            started.set()
            go.wait(30)
            return store.commit_rotations(rotations)

        committer = GroupCommitter(
            reactor, lambda batch: self.database.run(held, batch)
        )
        d = committer.submit(numbered_rotation("alice", 0, 1, 2000.0))
        # The batch starts on the next turn; the thread then holds it.
        yield deferLater(reactor, 0, lambda: None)
        self.assertTrue(started.wait(30))
        self.assertNoResult(d)
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(0))
        go.set()
        applied = yield d
        self.assertTrue(applied)
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(1))

    @inlineCallbacks
    def test_stop_waits_for_call_in_flight(self):
        """
        Stopping waits for the call in flight, whose result is still
        delivered, then closes the thread's store; calls after that fail
        with L{StoreError} at once.
        """
        go = threading.Event()
        stores = []

        def held(store):
            stores.append(store)
            go.wait(30)
            return "done"

        d = self.database.run(held)
        stopped = self.database.stopService()
        self.assertNoResult(stopped)
        self.failureResultOf(self.database.run(held), StoreError)
        go.set()
        self.assertEqual((yield d), "done")
        yield stopped
        self.assertRaises(StoreError, stores[0].get_profile, "alice")

    def test_stop_unstarted(self):
        """
        Stopping a thread that never started succeeds at once.
        """
        siblings = _RecordingSiblings(self.store)
        database = DatabaseThread(reactor, siblings)
        self.successResultOf(database.stopService())
        self.assertEqual(siblings.opened, [])


class DatabasePoolTests(TestCase):
    """
    L{DatabasePool} over a SQLite store with one enrolled profile.
    """

    def setUp(self):
        self.pool = _started(
            self, lambda siblings: DatabasePool(reactor, siblings, size=3)
        )

    async def test_calls_at_once(self):
        """
        Calls given while the others are still running go to the threads
        with none waiting: three calls that each wait for the others to
        start run at once, each on its own thread with the store it opened
        there; a fourth goes to one of them, with that thread's store.
        """
        started = threading.Barrier(3, timeout=30)
        ran = []

        def together(store):
            started.wait()
            ran.append((threading.current_thread(), store))
            return store.get_profile("alice").key_id

        keys = await gatherResults([self.pool.run(together) for _ in range(3)])
        self.assertEqual(keys, [numbered_key_id(0)] * 3)
        self.assertEqual(len({thread for thread, _ in ran}), 3)
        self.assertEqual({thread for thread, _ in ran}, set(self.opened))
        self.assertEqual(len({id(store) for _, store in ran}), 3)

        def where(store):
            return threading.current_thread(), store

        self.assertIn(await self.pool.run(where), ran)

    async def test_least_busy(self):
        """
        A call goes to a thread with nothing waiting rather than behind a
        call that is held up.
        """
        go = threading.Event()
        threads = []

        def held(store):
            threads.append(threading.current_thread())
            go.wait(30)

        def where(store):
            return threading.current_thread()

        first = self.pool.run(held)
        others = [await self.pool.run(where) for _ in range(4)]
        self.assertNoResult(first)
        go.set()
        await first
        self.assertNotIn(threads[0], others)

    async def test_bounded(self):
        """
        A pool whose every thread holds its bound of calls (a store that
        stopped answering) refuses the next call at once with L{PoolFull},
        a L{StoreError}, rather than queueing it behind the others; once
        the calls held are answered, it takes calls again.
        """
        pool = DatabasePool(reactor, self.store, size=2, bound=2)
        pool.startService()
        self.addCleanup(pool.stopService)
        go = threading.Event()
        self.addCleanup(go.set)

        def held(store):
            go.wait(30)
            return store.get_profile("alice").key_id

        calls = [pool.run(held) for _ in range(4)]
        refused = self.failureResultOf(pool.run(held), PoolFull)
        self.assertIsInstance(refused.value, StoreError)
        self.assertIn("4 calls wait", str(refused.value))
        go.set()
        self.assertEqual(await gatherResults(calls), [numbered_key_id(0)] * 4)
        self.assertEqual(await pool.run(held), numbered_key_id(0))

    async def test_cancelled_still_counted(self):
        """
        A call its caller gave up on (cancelled, as a verification's
        deadline does) still holds its place until its thread has run
        it: the bound counts what the threads hold, not what callers
        still wait for.
        """
        pool = DatabasePool(reactor, self.store, size=1, bound=1)
        pool.startService()
        self.addCleanup(pool.stopService)
        go = threading.Event()
        self.addCleanup(go.set)
        given_up = pool.run(lambda store: go.wait(30))
        given_up.cancel()
        self.failureResultOf(given_up, CancelledError)
        self.failureResultOf(pool.run(lambda store: None), PoolFull)
        go.set()
        # The thread runs its calls in order: once this one is answered,
        # the cancelled one has been too.
        [thread] = pool._threads
        await thread.run(lambda store: None)
        self.assertEqual(await pool.run(lambda store: "taken"), "taken")

    async def test_given_up_not_made(self):
        """
        A call its caller gave up on before its thread took it is not
        made: nobody waits for its answer.
        """
        pool = DatabasePool(reactor, self.store, size=1, bound=2)
        pool.startService()
        self.addCleanup(pool.stopService)
        go = threading.Event()
        self.addCleanup(go.set)
        made = []
        busy = pool.run(lambda store: go.wait(30))
        given_up = pool.run(lambda store: made.append("made"))
        given_up.cancel()
        self.failureResultOf(given_up, CancelledError)
        go.set()
        await busy
        [thread] = pool._threads
        await thread.run(lambda store: None)
        self.assertEqual(made, [])

    async def test_stop(self):
        """
        Stopping lets the calls given finish, then closes each thread's
        store on it; calls after that fail with L{StoreError} at once.
        """
        stores = await gatherResults(
            [self.pool.run(lambda store: store) for _ in range(3)]
        )
        await self.pool.stopService()
        self.failureResultOf(self.pool.run(lambda store: None), StoreError)
        for store in stores:
            self.assertRaises(StoreError, store.get_profile, "alice")


class SiblingTests(TestCase):
    """
    L{SQLiteStore.sibling}.
    """

    def test_bare_connection(self):
        """
        A store built on a bare connection has no file to open again.
        """
        store = SQLiteStore(sqlite3.connect(":memory:"))
        self.addCleanup(store.close)
        self.assertRaises(StoreError, store.sibling)


class RecordingDatabase(Service):
    """
    Stands for a L{DatabaseThread}: runs calls at once on a
    L{MemoryStore}, and records when it starts and stops next to what
    the rest of the server is doing.
    """

    def __init__(self, store, record):
        self.store = store
        self.record = record

    def startService(self):
        super().startService()
        self.record.append("database started")

    def stopService(self):
        super().stopService()
        self.record.append("database stopped")
        self.written_at_stop = [e.event for e in self.store.audit_events()]
        return succeed(None)

    def run(self, call, *args):
        if not self.running:
            return fail(StoreError("the database thread is not running"))
        return maybeDeferred(call, self.store, *args)


class ServerDatabaseTests(SynchronousTestCase):
    """
    How L{SutoServer} runs its database thread.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()
        # The offline sweep at start needs a time past its allowed silence.
        self.reactor.advance(1_700_000_000)
        self.store = MemoryStore()
        self.record = []
        self.database = RecordingDatabase(self.store, self.record)
        self.server = make_server(
            self.reactor,
            store=self.store,
            enrollment=EnrollmentSettings(new_master_key(self)),
            database=self.database,
        )
        self.server.hello.startService = lambda: self.record.append("hello started")

    def test_starts_first(self):
        """
        The database thread starts before the other parts, so what they
        record while starting is written.
        """
        self.server.startService()
        self.assertEqual(self.record[:2], ["database started", "hello started"])

    def test_audit_through_database(self):
        """
        Audit records go through the database thread, in a group commit:
        on the reactor's next turn.
        """
        self.server.startService()
        self.server.audit.record(1.0, "blacklisted", "alice", None, "by IT")
        self.assertEqual(self.store.audit_events(), [])
        self.reactor.advance(0)
        self.assertEqual(
            [e.event for e in self.store.audit_events()], ["blacklisted"]
        )

    def test_stops_last(self):
        """
        Stopping writes what the other parts record while they stop, then
        stops the database thread, then closes the store.
        """
        self.server.startService()

        class Stopping(Service):
            def stopService(inner):
                super().stopService()
                self.server.audit.record(2.0, "blacklisted", "bob", None, "late")

        Stopping().setServiceParent(self.server)
        stopped = self.server.stopService()
        self.assertNotIn("database stopped", self.record)
        self.reactor.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.record[-1], "database stopped")
        self.assertEqual(self.database.written_at_stop, ["blacklisted"])
        self.assertRaises(StoreError, self.store.audit_events)


class StoreMethodTests(SynchronousTestCase):
    """
    L{store_method} names a store method for L{DatabaseThread.run} to call
    on the thread's own store.
    """

    def test_calls_the_given_store(self):
        """
        The call goes to the store it is handed, with the arguments after
        it, and returns what the method returned.
        """
        store = MemoryStore()
        store.add_user("alice", HASH, 1.0)
        self.assertEqual(store_method("hash_for")(store, "alice"), HASH)
