"""
The rotation path's rules over L{ThreadedCalls}: every store call on a
real database thread with its own connection, as the daemon runs them
against a store across the network: on a L{DatabaseThread} over SQLite,
and on a L{DatabasePool} beside one over PostgreSQL, as the daemon does.
Each decision's coroutine has not finished when the call that starts it
returns (the reactor's turn ends before the store answers), and comes to
the same result as over a local store once it does.
"""

from functools import partial

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule
from suto_server.net.checks import CheckResult
from suto_server.rules.offline import OfflineWatch
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rotation import Rotation, RotationRefused
from suto_server.rules.tracking import Tracking
from suto_server.store.calls import ThreadedCalls
from suto_server.store.dbthread import DatabasePool, DatabaseThread, store_method
from suto_server.store.errors import StoreError
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.postgres import PostgresStore
from tests.support.masterkey import new_master_key
from tests.support.postgres import new_location
from tests.support.reconnection import opens_ok, reconnect_message
from tests.support.rotation import ELSEWHERE, NOW, SOURCE, enroll
from tests.support.stores import SQLiteStoreMixin


class _Locations:
    def name_of(self, address):
        return None

    def describe_address(self, address):
        return address


class ThreadedRotationMixin:
    """
    The rules over a store's database threads, C{alice} enrolled at
    L{SOURCE}.  A test case mixes it with a store mixin, and says with
    C{pooled} whether the rules' calls go to a L{DatabasePool}.
    """

    pooled = False

    def setUp(self):
        self.store = self.make_store()
        self.addCleanup(self.store.close)
        self.master_key = new_master_key(self)
        self.device = enroll(self.store, self.master_key, "alice")
        self.database = DatabaseThread(reactor, self.store)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        pool = None
        if self.pooled:
            self.pool = pool = DatabasePool(reactor, self.store)
            pool.startService()
            self.addCleanup(pool.stopService)
        self.calls = ThreadedCalls(self.database, pool)
        self.audit = AuditLog(self.store)
        self.rotation = Rotation(
            self.calls,
            self.master_key,
            GroupCommitter(
                reactor, partial(self.database.run, store_method("commit_rotations"))
            ),
            self.audit,
        )
        self.reconnection = Reconnection(
            self.calls, self.rotation, self.audit
        )

    def started(self, coroutine):
        """
        Start C{coroutine}, and check that it waits for the store.

        @return: its L{Deferred}.
        """
        d = Deferred.fromCoroutine(coroutine)
        self.assertNoResult(d)
        return d

    async def rotate(self, source=SOURCE, **kwargs):
        request = self.device.request()
        pending = await self.started(
            self.rotation.begin(
                "alice", request.key_id, request.junk, request.public, source, NOW, **kwargs
            )
        )
        ack = self.device.acknowledge(pending.server_public, pending.ok)
        done = await self.started(self.rotation.acknowledge(pending, ack, source, NOW + 1))
        self.device.commit(done.sealed)
        return pending

    async def test_rotation(self):
        """
        A rotation begun and acknowledged over the thread commits the
        key the device derived.
        """
        await self.rotate()
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation),
            (keyschedule.key_id(self.device.key), 1),
        )

    async def test_refused(self):
        """
        A retired key is refused over the thread as over a local store,
        and recorded as a suspected clone.
        """
        first = self.device.request()
        await self.rotate()
        await self.rotate()
        failure = None
        try:
            await self.started(self.rotation.check_key("alice", first.key_id, ELSEWHERE, NOW))
        except RotationRefused as refusal:
            failure = refusal
        self.assertEqual(failure.reason, "unknown_key")
        self.assertEqual(
            [e.event for e in self.store.audit_events()][-1:], ["clone_suspected"]
        )

    async def test_reconnection(self):
        """
        An offline profile's reconnection is accepted over the thread, and
        the rotation that follows spends its step.
        """
        self.store.mark_offline(["alice"], NOW)
        step = keyschedule.time_step(NOW, self.reconnection.step)
        accepted = await self.started(
            self.reconnection.reconnect(reconnect_message(self.device, step), SOURCE, NOW)
        )
        self.assertTrue(opens_ok(self.device, accepted.step, accepted.ok))
        await self.started(
            self.reconnection.check_rotation(
                "alice", keyschedule.key_id(self.device.key), SOURCE, NOW, True
            )
        )
        await self.rotate(
            offline_step=accepted.step, attempt_nonce=accepted.attempt_nonce
        )
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(self.store.spent_offline_step("alice").step, step)

    async def test_tracking_move(self):
        """
        A proven newcomer from a new address, with nobody answering at the
        old one, moves the profile over the thread.
        """

        class Silent:
            def check(self, user, address, key, previous=None):
                return CheckResult.SILENT

        live = LiveSessions()
        tracking = Tracking(self.calls, self.audit, live, Silent(), _Locations())
        profile = self.store.get_profile("alice")
        admitted = await self.started(
            tracking.admit(profile, self.device.key, ELSEWHERE, "newcomer", NOW, proven=True)
        )
        self.assertTrue(admitted)
        self.assertEqual(live.get("alice").address, ELSEWHERE)
        self.assertEqual(self.store.get_profile("alice").last_address, ELSEWHERE)

    async def test_sweep(self):
        """
        The offline sweep reads and marks over the thread.
        """
        clock = task.Clock()
        clock.advance(NOW + 3600)
        watch = OfflineWatch(clock, self.calls, 60, 30, lambda user: False)
        marked = await self.started(watch.sweep())
        self.assertEqual(marked, ["alice"])
        self.assertEqual(self.store.offline_since("alice"), NOW + 3600)

    async def test_stopped_thread(self):
        """
        A database thread that stopped fails every call with
        L{StoreError}, which the rules pass on having recorded nothing.
        """
        await self.database.stopService()
        if self.pooled:
            await self.pool.stopService()
        request = self.device.request()
        with self.assertRaises(StoreError):
            await self.rotation.check_key("alice", request.key_id, SOURCE, NOW)
        self.assertEqual(self.store.audit_events(), [])


class SQLiteThreadedRotationTests(ThreadedRotationMixin, SQLiteStoreMixin, TestCase):
    """
    The rules over a SQLite store's one database thread.
    """


class PostgresThreadedRotationTests(ThreadedRotationMixin, TestCase):
    """
    The rules over a PostgreSQL store, on the pool of database threads.
    """

    pooled = True

    def make_store(self):
        return PostgresStore.open(new_location(self))
