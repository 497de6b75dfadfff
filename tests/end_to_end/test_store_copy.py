# -*- test-case-name: tests.end_to_end.test_store_copy -*-
"""
A deployment moved with C{suto-admin store copy} goes on serving its
agents: a profile enrolled and rotated on the daemon's SQLite store is
copied to PostgreSQL, the daemon started again on the copy, and the
agent's next rotation is accepted there with no alert.
"""

import os
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation import profile_endpoint
from suto_client.rotation_outcome import RotationOutcome
from suto_server.datafolder import DATABASE_FILE
from tests.support.admin import run_admin
from tests.support.daemon import WAIT, EnrollmentFixture, rotation_factory
from tests.support.postgres import new_location


class StoreCopyEndToEndTests(EnrollmentFixture, TestCase):
    """
    The daemon on loopback, stopped, its store copied, and started again
    on the copy.
    """

    @defer.inlineCallbacks
    def rotate_once(self, profile):
        """
        Run one rotation of C{profile} against the daemon.

        @return: a L{Deferred} firing with the rotation's report and the
            profile the agent would store after it.
        """
        reported = defer.Deferred()
        factory = rotation_factory(profile, reported.callback)
        protocol = yield profile_endpoint(reactor, profile, 5).connect(factory)
        report = yield reported.addTimeout(WAIT, reactor)
        lost = defer.Deferred()
        connection_lost = protocol.connectionLost

        def record_loss(reason):
            connection_lost(reason)
            lost.callback(None)

        protocol.connectionLost = record_loss
        protocol.transport.loseConnection()
        yield lost.addTimeout(WAIT, reactor)
        return report, factory.profile

    @defer.inlineCallbacks
    def test_rotation_continues_on_the_copy(self):
        """
        After the copy, the daemon serving PostgreSQL holds the profile
        mid-rotation as the SQLite store held it (the current key not yet
        confirmed), accepts the agent's next rotation from it, and has
        raised no alert.
        """
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        report, profile = yield self.rotate_once(result.profile)
        self.assertEqual(report.outcome, RotationOutcome.ROTATED)
        yield self.server.audit.flushed()
        before = self.server.store.get_profile("alice")
        yield self.stop_server()

        location = new_location(self)
        code, _, err = run_admin(
            "store", "copy", "--from", os.path.join(self.data, DATABASE_FILE),
            "--to", location,
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.server_arguments = (*self.server_arguments, "--store", location)
        yield self.start_server()
        self.assertEqual(self.server.store.get_profile("alice"), before)
        self.assertFalse(before.current_confirmed)

        report, _ = yield self.rotate_once(replace(profile, server_port=self.port))
        self.assertEqual(report.outcome, RotationOutcome.ROTATED, report.reason)
        self.assertEqual(self.server.store.get_profile("alice").key_id, report.key_id)
        yield self.server.audit.flushed()
        events = {event.event for event in self.server.store.audit_events()}
        self.assertFalse(events & {"clone_suspected", "reconnect_failed"}, events)
        self.assertIsNone(self.server.store.blacklist_entry("alice"))
        self.assertEqual(self.server.store.verify_audit(), [])
