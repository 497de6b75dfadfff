# -*- test-case-name: tests.phases.test_rotation_awaits,tests.phases.test_primed_awaits -*-
"""
The rotation listener over a store that answers later, as one across the
network does: L{HeldStoreMixin} puts L{HeldCalls} under the rotation and
reconnection rules, so a test shows what the connection does while the
store has not answered, and what it answers when the store fails.
"""

from dataclasses import replace

from twisted.internet import error
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure

from suto_server.audit.log import AuditLog
from suto_server.phases.connection import STORE_FAILURE_LOG_EVERY
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rotation import Rotation
from suto_server.store.errors import StoreError
from suto_server.store.groupcommit import GroupCommitter
from tests.support.heldcalls import HeldCalls
from tests.support.rotation_listener import VERSION, RotationListenerMixin

BUSY = b"SUTO_ERROR_BUSY\r\n"


class HeldStoreMixin(RotationListenerMixin):
    """
    The rotation listener with the rotation and reconnection rules over
    L{HeldCalls}: every store call, the commit's included, waits for
    C{self.held.answer_all()}.
    """

    def setUp(self):
        super().setUp()
        self.held = HeldCalls(self.store)
        audit = AuditLog(self.store)
        rotation = Rotation(
            self.held,
            self.master_key,
            GroupCommitter(self.clock, self.held.commit_rotations),
            audit,
            new_private_key=lambda: next(self.server_keys),
        )
        self.factory = self.make_factory(rotation)
        self.factory.rotation = replace(
            self.factory.rotation,
            reconnection=Reconnection(self.held, rotation, audit),
        )

    def release(self):
        """
        Answer every store call, and run the group commit they lead to.

        @return: the names of the calls answered.
        """
        answered = self.held.answer_all()
        self.clock.advance(0)
        return answered + self.held.answer_all()

    def state(self):
        return (
            self.store.get_profile("alice"),
            self.store.offline_since("alice"),
            self.store.spent_offline_step("alice"),
            self.store.blacklist_entry("alice"),
            [e.event for e in self.store.audit_events()],
        )

    def assert_failing_call_busy(self, name, line):
        """
        On a new connection whose store fails the call C{name}, the first
        message C{line} is answered as L{assert_busy} says.
        """
        self.held.fail_every(StoreError("could not connect to server"), name)
        # Past the pacing of the store's failures' lines: this one is logged.
        self.clock.advance(STORE_FAILURE_LOG_EVERY)
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + line)
        before = self.state()
        transport.clear()
        with capturedLogs() as events:
            self.release()
        self.assert_busy(transport, events, before)
        protocol.connectionLost(Failure(error.ConnectionDone()))

    def assert_busy(self, transport, events, before):
        """
        The connection was answered C{SUTO_ERROR_BUSY} and closed, the
        store holds what it held C{before}, and the log has one warning
        naming the failure.
        """
        self.assertEqual(transport.value(), BUSY)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.state(), before)
        self.assertEqual(self.flushLoggedErrors(), [])
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("for alice failed: the store did not answer", formatEvent(warnings[0]))
