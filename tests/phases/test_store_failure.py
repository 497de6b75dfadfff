# -*- test-case-name: tests.phases.test_store_failure -*-
"""
Tests for the connection's answer to a store that fails under a decision
(L{suto_server.phases.connection}): C{SUTO_ERROR_BUSY} and a close, a
paced warning and never a traceback, nothing changed, and the next
connection served once the store is back.
"""

from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.core import wire
from suto_server.phases.connection import STORE_FAILURE_LOG_EVERY
from suto_server.rules.rotation import Rotation
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from tests.support.away import AWAY, AwayStore
from tests.support.rotation_listener import VERSION, RotationListenerMixin

BUSY = wire.encode(wire.Error(wire.ERROR_BUSY), wire.Framing.FRAMED)


class StoreFailureTests(RotationListenerMixin, SynchronousTestCase):
    """
    A rotation connection on a store that goes away and comes back.
    """

    def setUp(self):
        super().setUp()
        self.away = AwayStore(self.store)
        self.factory = self.make_factory(
            Rotation(
                LocalCalls(self.away),
                self.master_key,
                GroupCommitter(self.clock, self.away.commit_rotations),
                AuditLog(self.store),
                new_private_key=lambda: next(self.server_keys),
            )
        )
        self.counted = []
        self.factory.store_failed = self.counted.append

    def busy_rotation(self):
        """
        Connect and ask for a rotation while the store is away.

        @return: what the server answered, and whether it closed.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        return reply, transport.disconnecting

    def test_busy(self):
        """
        The device is told C{SUTO_ERROR_BUSY} (after the version echo)
        and the connection closes; the key is not changed, no failure is
        counted against the device, and the log holds a warning with the
        store's message and no traceback.
        """
        key_id = self.key_id()
        self.away.away = True
        with capturedLogs() as events:
            reply, closed = self.busy_rotation()
        self.assertEqual((reply, closed), (VERSION + BUSY, True))
        self.away.away = False
        self.assertEqual(self.key_id(), key_id)
        self.assertEqual(self.failures(), [])
        self.assertFalse([e for e in events if "log_failure" in e])
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["error"], AWAY)

    def test_each_counted(self):
        """
        Every rotation answered busy is counted under C{rotation}, though
        the log has one line for them.
        """
        self.away.away = True
        with capturedLogs() as events:
            answers = [self.busy_rotation() for _ in range(3)]
        self.assertEqual(answers, [(VERSION + BUSY, True)] * 3)
        self.assertEqual(self.counted, ["rotation"] * 3)
        self.assertEqual(
            len([e for e in events if e["log_level"] == LogLevel.warn]), 1
        )

    def test_commit_fails(self):
        """
        A store that goes away between a rotation's start and its commit
        fails the commit: the device is told C{SUTO_ERROR_BUSY}, never
        C{SUTO_ROTATE_DONE_}, the key is not changed, and the log holds a
        warning and no traceback.
        """
        key_id = self.key_id()
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        ack = self.ok_line(reply[len(VERSION) :])
        self.away.away = True
        with capturedLogs() as events:
            self.exchange(protocol, transport, ack)
            self.clock.advance(0)
        self.assertEqual((transport.value(), transport.disconnecting), (BUSY, True))
        self.away.away = False
        self.assertEqual(self.key_id(), key_id)
        self.assertFalse([e for e in events if "log_failure" in e])
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["error"], AWAY)

    def test_served_when_back(self):
        """
        Once the store is back, the next connection rotates.
        """
        self.away.away = True
        self.busy_rotation()
        self.away.away = False
        key_id = self.key_id()
        self.rotated()
        self.assertNotEqual(self.key_id(), key_id)

    def test_paced(self):
        """
        Connections the store fails are logged at most once per
        L{STORE_FAILURE_LOG_EVERY} seconds, the next line counting those
        kept quiet.
        """
        self.away.away = True
        with capturedLogs() as events:
            for _ in range(3):
                self.assertEqual(self.busy_rotation()[0], VERSION + BUSY)
            self.clock.advance(STORE_FAILURE_LOG_EVERY)
            self.busy_rotation()
        self.assertEqual(
            [e["quiet"] for e in events if e["log_level"] == LogLevel.warn], [0, 2]
        )
