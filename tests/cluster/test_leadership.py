# -*- test-case-name: tests.cluster.test_leadership -*-
"""
Tests for L{suto_server.cluster.leadership}: the once-only jobs run in
one process, and move to another when their leader dies; with two
leaders on one real PostgreSQL server (L{tests.support.postgres}), whose
retry loops a L{task.Clock} steps.
"""

from twisted.application.service import Service
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from suto_server.cluster.leadership import RETRY_EVERY, Leadership, leadership_for
from suto_server.store.clustering import IClusterLock
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.postgres import PostgresStore
from suto_server.store.postgres.advisory import LEADER_LOCK
from tests.support.postgres import admin_connection, new_location


class _Job(Service):
    """
    A once-only job that only remembers whether it runs.
    """


@implementer(IClusterLock)
class _UnreachableLock:
    """
    A leader lock whose store cannot be reached; counts its tries.
    """

    def __init__(self):
        self.tries = 0
        self.released = False

    def try_acquire(self):
        self.tries += 1
        raise StoreError("connecting to the store failed")

    def release(self):
        self.released = True


class SoleProcessTests(SynchronousTestCase):
    """
    A store no other process shares: the one process leads.
    """

    def test_leads_from_start(self):
        """
        Without a lock the jobs start with the service and stop with it.
        """
        leadership = leadership_for(Clock(), MemoryStore())
        job = _Job()
        job.setServiceParent(leadership.jobs)
        leadership.startService()
        self.assertTrue(leadership.leading)
        self.assertTrue(job.running)
        self.successResultOf(leadership.stopService())
        self.assertFalse(leadership.leading)
        self.assertFalse(job.running)


class _Leaders:
    """
    Builds leaderships whose retry loops run on clocks of their own, and
    stops them after the test.
    """

    def leader(self, lock):
        """
        @return: a started L{Leadership} on C{lock} with one L{_Job},
            its loop on a new L{Clock} (C{leadership.clock}).
        """
        clock = Clock()
        leadership = Leadership(reactor, lock, clock=clock)
        leadership.clock = clock
        leadership.job = _Job()
        leadership.job.setServiceParent(leadership.jobs)
        leadership.startService()
        self.addCleanup(lambda: leadership.running and leadership.stopService())
        return leadership


class UnreachableStoreTests(_Leaders, TestCase):
    """
    A store that cannot be reached: no lead, and tries go on.
    """

    async def test_retries(self):
        """
        A failed try is logged and leaves the jobs stopped; the loop tries
        again every L{RETRY_EVERY} seconds, and stopping lets the lock go.
        """
        lock = _UnreachableLock()
        with capturedLogs() as events:
            leadership = self.leader(lock)
            await leadership.attempt()
            self.assertEqual(lock.tries, 1)
            leadership.clock.advance(RETRY_EVERY)
            await leadership.attempt()
        # The explicit attempts joined the loop's tries under way.
        self.assertEqual(lock.tries, 2)
        self.assertFalse(leadership.leading)
        self.assertFalse(leadership.job.running)
        self.assertEqual(
            [e["error"] for e in events if e["log_level"] == LogLevel.warn],
            ["connecting to the store failed"] * 2,
        )
        await leadership.stopService()
        self.assertTrue(lock.released)


class PostgresLeaderTests(_Leaders, TestCase):
    """
    Two processes' leaderships on one PostgreSQL store.
    """

    def setUp(self):
        self.store = PostgresStore.open(new_location(self))
        self.addCleanup(self.store.close)

    async def two_leaders(self):
        """
        @return: two started leaderships on the store, the first leading.
        """
        first = self.leader(self.store.leader_lock())
        await first.attempt()
        second = self.leader(self.store.leader_lock())
        await second.attempt()
        return first, second

    def end_leader_session(self):
        """
        End the session holding the leader lock, as the server does when
        the leader's process or host dies.
        """
        admin = admin_connection()
        [(pid,)] = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND objsubid = 2",
            (LEADER_LOCK,),
        ).fetchall()
        # Waiting (up to 10 s) for the session to be gone, and its lock.
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))

    async def test_one_leads(self):
        """
        Of two processes, the first to try leads and runs the jobs; the
        other, trying again and again, does not.
        """
        first, second = await self.two_leaders()
        second.clock.advance(RETRY_EVERY)
        await second.attempt()
        self.assertEqual(
            [(first.leading, first.job.running), (second.leading, second.job.running)],
            [(True, True), (False, False)],
        )

    async def test_takeover_when_leader_dies(self):
        """
        When the leader's session ends, the other process leads from its
        next try, and the old leader stops its jobs at its own next try
        and does not lead again while the new one lives.
        """
        first, second = await self.two_leaders()
        self.end_leader_session()
        second.clock.advance(RETRY_EVERY)
        await second.attempt()
        self.assertTrue(second.job.running)
        first.clock.advance(RETRY_EVERY)
        await first.attempt()
        self.assertFalse(first.job.running)
        first.clock.advance(RETRY_EVERY)
        await first.attempt()
        self.assertEqual((first.leading, second.leading), (False, True))

    async def test_takeover_when_leader_stops(self):
        """
        A leader that stops lets the lock go at once: the other process
        leads from its next try.
        """
        first, second = await self.two_leaders()
        await first.stopService()
        self.assertFalse(first.job.running)
        second.clock.advance(RETRY_EVERY)
        await second.attempt()
        self.assertTrue(second.job.running)

    async def test_schemas_elect_apart(self):
        """
        Stores in two schemas of one database each have their leader.
        """
        other = PostgresStore.open(new_location(self))
        self.addCleanup(other.close)
        first = self.leader(self.store.leader_lock())
        second = self.leader(other.leader_lock())
        await first.attempt()
        await second.attempt()
        self.assertEqual((first.leading, second.leading), (True, True))
