# -*- test-case-name: tests.cluster.test_shared_presence -*-
"""
Port tracking in two server processes over one real PostgreSQL store
(L{tests.support.postgres}): each process has its own store, relay
(listening on the store's channel on a thread of its own), verify relay,
presence and L{Tracking}, on the real reactor.  A copy reaching one
process while its original's connection is live on the other is refused
as a clone; the original reconnecting through the other process replaces
its old connection there, which is closed.
"""

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase

from suto_server.cluster.presence import presence_for
from suto_server.cluster.relay import Relay
from suto_server.cluster.verify_relay import VerifyRelay
from suto_server.locations import Locations
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous
from suto_server.rules.tracking import Tracking
from suto_server.store.calls import LocalCalls
from suto_server.store.postgres import PostgresStore
from tests.support.channel import NOTICE_KEY
from tests.support.postgres import new_location
from tests.support.store_suite.values import PROFILE, WINDOW
from tests.support.tracking import RecordingAudit, RecordingChecks

OLD = PROFILE.location
COPY = "10.9.0.4"
KEY = bytes(range(32))


class _Device:
    """
    A live rotation connection whose agent proves the key at once, and
    that records its closing.
    """

    def __init__(self):
        self.challenged = 0
        self.closed = Deferred()

    def challenge(self, nonce):
        self.challenged += 1
        return succeed(True)

    def close(self):
        self.closed.callback(None)


class _Process:
    """
    One server process's tracking on its own store.
    """

    def __init__(self, test, location):
        self.store = PostgresStore.open(location)
        test.addCleanup(self.store.close)
        self.relay = Relay(reactor, self.store, key=NOTICE_KEY)
        self.relay.serve(Rendezvous(reactor, timeout=5, peers=self.relay))
        self.live = LiveSessions()
        verifications = VerifyRelay(reactor, self.relay, self.live)
        self.relay.serve_verifications(verifications)
        presence = presence_for(reactor, self.relay, verifications, self.live, 3.0)
        self.audit = RecordingAudit()
        self.checks = RecordingChecks()
        self.tracking = Tracking(
            LocalCalls(self.store), self.audit, self.live, self.checks, Locations()
        )
        self.tracking.share(presence)
        self.relay.startService()
        test.addCleanup(self.relay.stopService)

    async def admit(self, address, connection):
        """
        @return: whether C{connection}, which proved alice's key, may serve
            her from C{address}.
        """
        return await self.tracking.admit(
            self.store.get_profile("alice"),
            KEY,
            address,
            connection,
            reactor.seconds(),
            proven=True,
        )


class SharedPresenceTests(TestCase):
    """
    Alice's device is live on the first process.
    """

    timeout = 60

    async def setUp(self):
        location = new_location(self)
        self.first = _Process(self, location)
        self.second = _Process(self, location)
        self.first.store.open_window(WINDOW)
        self.first.store.complete_enrollment(PROFILE)
        for process in (self.first, self.second):
            await process.relay.listening
        # Each hears the other's "here" notices.
        for process in (self.first, self.second):
            await process.relay.meet(1).addTimeout(20, reactor)
        self.device = _Device()
        self.assertTrue(await self.first.admit(OLD, self.device))

    async def test_copy_refused(self):
        """
        A copy from another address reaching the second process is refused
        as a clone once the device's live connection on the first proved
        the key; no move is recorded.
        """
        self.assertFalse(await self.second.admit(COPY, _Device()))
        [(event, source, reason, _)] = self.second.audit.records
        self.assertEqual((event, source), ("clone_suspected", COPY))
        self.assertIn("a live session exists there", reason)
        self.assertEqual(self.device.challenged, 1)
        self.assertEqual(self.second.checks.sent, [])
        self.assertEqual(self.second.store.get_profile("alice").last_address, OLD)
        self.assertIn("alice", self.first.live)
        self.assertFalse(self.device.closed.called)

    async def test_reconnection_replaces(self):
        """
        The device reconnecting from its address through the second
        process is admitted with no alert, and its old connection on the
        first is let go and closed.
        """
        again = _Device()
        self.assertTrue(await self.second.admit(OLD, again))
        await self.device.closed.addTimeout(20, reactor)
        self.assertNotIn("alice", self.first.live)
        self.assertIs(self.second.live.get("alice").connection, again)
        self.assertEqual(self.first.audit.records + self.second.audit.records, [])
        self.assertFalse(again.closed.called)
