"""
Tests for L{suto_server.dbthread}: store calls on a real thread of their
own, with the thread's own SQLite connection, the group commit over it,
and stopping while a call is in flight.
"""

import os
import sqlite3
import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from suto_server.dbthread import DatabaseThread
from suto_server.groupcommit import GroupCommitter
from suto_server.store.errors import StoreError
from suto_server.store.sqlite import SQLiteStore
from tests.store_suite import (
    _profile,
    _window,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
)


def _commit(store, rotations):
    return store.commit_rotations(rotations)


class DatabaseThreadTests(TestCase):
    """
    L{DatabaseThread} over a SQLite store with one enrolled profile.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        self.store = SQLiteStore.open(os.path.join(folder, "suto.db"))
        self.addCleanup(self.store.close)
        self.store.open_window(_window("alice"))
        self.store.complete_enrollment(
            _profile("alice", key_sealed=numbered_seal(0), key_id=numbered_key_id(0))
        )
        self.opened = []
        self.database = DatabaseThread(reactor, self.open_sibling)
        self.database.startService()
        self.addCleanup(self.stop)

    def open_sibling(self):
        self.opened.append(threading.current_thread())
        return self.store.sibling()

    def stop(self):
        if self.database.running:
            return self.database.stopService()

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
        yield self.turn()
        self.assertTrue(started.wait(30))
        self.assertNoResult(d)
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(0))
        go.set()
        applied = yield d
        self.assertTrue(applied)
        self.assertEqual(self.store.get_profile("alice").key_id, numbered_key_id(1))

    def turn(self):
        """
        @return: a L{Deferred} firing on a later turn of the reactor.
        """
        d = Deferred()
        reactor.callLater(0, d.callback, None)
        return d

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
        database = DatabaseThread(reactor, self.open_sibling)
        self.successResultOf(database.stopService())
        self.assertEqual(self.opened, [])


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
