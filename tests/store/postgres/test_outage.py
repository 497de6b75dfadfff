# -*- test-case-name: tests.store.postgres.test_outage -*-
"""
Tests of the PostgreSQL store living through its server going away and
coming back, on a real server of the tests' own that they stop (a fast
shutdown, as an operator or a failover manager does) and start again on
the same data and port, or whose sessions they end
(C{pg_terminate_backend}): the store's calls, the leader lock and the
notice listener each fail with L{StoreError} while it is away and work
again once it is back, with nothing opened anew by the caller.
"""

from twisted.internet import reactor
from twisted.internet.defer import DeferredQueue
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.cluster.leadership import Leadership
from suto_server.cluster.relay import Relay
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.errors import StoreError
from suto_server.store.postgres import PostgresStore
from tests.support.channel import NOTICE_KEY
from tests.support.stoppable_postgres import stoppable_server
from tests.support.store_suite.values import HASH, numbered_rotation

#: Seconds the relay's recovery may take: its retry, and a notice's trip.
RELAY_WAIT = 30


class _StoreOnStoppable:
    """
    A store on the stoppable server, closed after the test.
    """

    def setUp(self):
        self.server = stoppable_server(self)
        self.location = self.server.new_location(self)
        self.store = PostgresStore.open(self.location)
        self.addCleanup(self.store.close)


class StoreOutageTests(_StoreOnStoppable, SynchronousTestCase):
    """
    The store's own connection while its server is away.
    """

    def test_stopped_and_started(self):
        """
        Once the server stopped, every call fails with L{StoreError}
        (the first on the session the server ended, the next on a
        connection refused at once); once it is back the next call
        works, and what was committed before is there.
        """
        self.store.add_user("alice", HASH, 1.0)
        self.server.stop()
        self.assertRaises(StoreError, self.store.hash_for, "alice")
        self.assertRaises(StoreError, self.store.hash_for, "alice")
        self.assertRaises(StoreError, self.store.add_user, "bob", HASH, 1.0)
        self.server.start()
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertIsNone(self.store.hash_for("bob"))

    def test_crashed(self):
        """
        A server that crashed (an immediate shutdown: no session is told)
        and recovered on its start serves the store's next call, with
        what was committed before.
        """
        self.store.add_user("alice", HASH, 1.0)
        self.server.stop("immediate")
        self.assertRaises(StoreError, self.store.hash_for, "alice")
        self.server.start()
        self.assertEqual(self.store.hash_for("alice"), HASH)

    def test_idle_through_restart(self):
        """
        A store that made no call while the server was away works at its
        first call once it is back.
        """
        self.store.add_user("alice", HASH, 1.0)
        self.server.stop()
        self.server.start()
        self.assertEqual(self.store.hash_for("alice"), HASH)

    def test_batch_not_applied(self):
        """
        A batch of rotations sent while the server is away fails whole;
        sent again once it is back, it commits.
        """
        self.store.add_user("alice", HASH, 1.0)
        enrolled = self.store.list_profiles()
        rotation = numbered_rotation("alice", 0, 1, 2000.0)
        self.server.stop()
        self.assertRaises(StoreError, self.store.commit_rotations, [rotation])
        self.server.start()
        self.assertEqual(self.store.list_profiles(), enrolled)

    def test_sibling_recovers(self):
        """
        A sibling (the database thread's store) recovers the same way.
        """
        sibling = self.store.sibling()
        self.addCleanup(sibling.close)
        sibling.add_user("alice", HASH, 1.0)
        self.server.stop()
        self.assertRaises(StoreError, sibling.hash_for, "alice")
        self.server.start()
        self.assertEqual(sibling.hash_for("alice"), HASH)

    def test_broken_mid_call(self):
        """
        A connection that breaks during a call fails that call with
        L{StoreError} and is left broken; the next call opens a new one.
        """
        self.store.add_user("alice", HASH, 1.0)
        pid = self.store._connection.info.backend_pid
        self.assertRaises(
            StoreError,
            self.store._read,
            "SELECT pg_terminate_backend(pg_backend_pid())",
        )
        self.assertTrue(self.store._connection.broken)
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertNotEqual(self.store._connection.info.backend_pid, pid)

    def test_read_only_server(self):
        """
        A write refused because the server became read only (a primary a
        failover demoted) gives the session up: the next call connects
        again, which reaches a server taking writes.
        """
        self.store._connection.execute("SET default_transaction_read_only = on")
        self.assertRaises(StoreError, self.store.add_user, "alice", HASH, 1.0)
        self.store.add_user("alice", HASH, 1.0)
        self.assertEqual(self.store.hash_for("alice"), HASH)


class LockAndListenerOutageTests(_StoreOnStoppable, SynchronousTestCase):
    """
    The leader lock and the notice listener, each on a session of its
    own, while the server is away.
    """

    def test_lock_taken_again(self):
        """
        The lock is lost with the server: a try while it is away fails
        with L{StoreError} and holds nothing; the first try once it is
        back takes the lock again.
        """
        lock = self.store.leader_lock()
        self.addCleanup(lock.release)
        self.assertTrue(lock.try_acquire())
        self.server.stop()
        self.assertRaises(StoreError, lock.try_acquire)
        self.assertFalse(lock.held)
        self.assertRaises(StoreError, lock.try_acquire)
        self.server.start()
        self.assertTrue(lock.try_acquire())

    def test_listener_hears_again(self):
        """
        A wait for notices on a session the server ended fails with
        L{StoreError}; once the server is back the next wait listens on
        a new session and hears what is sent from then on.
        """
        listener = self.store.notice_listener()
        self.addCleanup(listener.close)
        listener.listen()
        self.server.stop()
        self.assertRaises(StoreError, listener.receive, 1)
        self.assertRaises(StoreError, listener.receive, 1)
        self.server.start()
        self.assertEqual(listener.receive(0), [])
        self.store.announce("back")
        self.assertEqual(listener.receive(10), ["back"])


class _Opened:
    """
    Stands for a rendezvous, queueing the user of each request another
    process opens.
    """

    def __init__(self):
        self.users = DeferredQueue()

    def remote_opened(self, key, user, accept_from, timeout):
        self.users.put(user)

    def drop_mirrors(self):
        """
        The relay stopped: nothing to drop.
        """


class ClusterRecoveryTests(_StoreOnStoppable, TestCase):
    """
    The services on the lock and the listener (L{Leadership},
    L{Relay}) recover by themselves once the server is back.
    """

    async def test_leader_elected_again(self):
        """
        The leader stops its jobs at the first try that finds the server
        gone, and leads again at the first try once it is back; no try
        logs a traceback.
        """
        clock = Clock()
        leadership = Leadership(reactor, self.store.leader_lock(), clock=clock)
        leadership.startService()
        self.addCleanup(lambda: leadership.running and leadership.stopService())
        with capturedLogs() as events:
            await leadership.attempt()
            self.assertTrue(leadership.leading)
            self.server.stop()
            await leadership.attempt()
            self.assertFalse(leadership.leading)
            await leadership.attempt()
            self.assertFalse(leadership.leading)
            self.server.start()
            await leadership.attempt()
            self.assertTrue(leadership.leading)
        self.assertFalse([e for e in events if e.get("log_failure") is not None])
        self.assertTrue([e for e in events if e["log_level"] == LogLevel.warn])

    async def test_relay_hears_again(self):
        """
        A relay whose listener lost its session to the server's stop
        listens again once the server is back, and hears another
        process's requests again.
        """
        other = PostgresStore.open(self.location)
        self.addCleanup(other.close)
        opened = _Opened()
        listening = Relay(reactor, self.store, key=NOTICE_KEY)
        listening.serve(opened)
        listening.startService()
        self.addCleanup(listening.stopService)
        await listening.listening
        sending = Relay(reactor, other, key=NOTICE_KEY)
        rendezvous = Rendezvous(Clock(), peers=sending)
        sending.serve(rendezvous)
        rendezvous.open("alice", ["10.0.0.5"], timeout=60)
        self.assertEqual(
            await opened.users.get().addTimeout(RELAY_WAIT, reactor), "alice"
        )
        self.server.stop()
        self.server.start()
        # Notices sent before the relay listens again are lost to it, as
        # to any process not listening: ask until one is heard.
        heard = opened.users.get().addTimeout(RELAY_WAIT, reactor)
        number = 0
        while not heard.called:
            number += 1
            source = f"10.1.{number // 256}.{number % 256}"
            rendezvous.open(f"user{number}", [source], timeout=60)
            await deferLater(reactor, 0.1, lambda: None)
        self.assertTrue((await heard).startswith("user"))
