"""
What a daemon refuses end to end over loopback when its listener has a
CA-signed certificate and demands client certificates
(C{caCerts=...:requireClientCert=yes}), and that the endpoint presents its
client certificate at enrollment and at every rotation.

The enrollment and rotation end-to-end tests run again over the same
listener in their own modules (C{MutualTLS...EndToEndTests}).
"""

import dataclasses
import os

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation import profile_endpoint
from suto_client.rotation_outcome import RotationOutcome
from suto_client.tls import ClientTLSError
from tests.support.daemon import EnrollmentFixture, rotation_factory
from tests.support.mutual_tls import MutualTLSFixture

#: Seconds any one wait for the daemon may take.
WAIT = 20


class MutualTLSRefusalTests(MutualTLSFixture, EnrollmentFixture, TestCase):
    """
    What the daemon refuses when it demands a client certificate.
    """

    @defer.inlineCallbacks
    def enrolled_profile(self):
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        self.assertEqual(
            (
                result.profile.pin,
                result.profile.ca,
                result.profile.client_cert,
                result.profile.client_key,
            ),
            (None, self.bundle, self.client_cert, self.client_key),
        )
        return result.profile

    @defer.inlineCallbacks
    def rotate_once(self, profile):
        """
        Connect as the agent does for C{profile}, wait, bounded, for the
        report of its first rotation, and then for the connection to
        close.
        """
        reported = defer.Deferred()
        factory = rotation_factory(
            profile, reported.callback
        )
        connecting = profile_endpoint(reactor, profile, 5).connect(factory)
        protocol = yield connecting.addTimeout(WAIT, reactor)
        lost = defer.Deferred()
        connection_lost = protocol.connectionLost

        def record_loss(reason):
            # First: the report below may come from this very loss.
            lost.callback(None)
            connection_lost(reason)

        protocol.connectionLost = record_loss
        report = yield reported.addTimeout(WAIT, reactor)
        if not lost.called:
            protocol.transport.loseConnection()
        yield lost.addTimeout(WAIT, reactor)
        return report

    @defer.inlineCallbacks
    def test_rotation_presents_client_certificate(self):
        """
        The profile's rotation connects with its CA bundle and client
        certificate, and the server rolls its key forward.
        """
        profile = yield self.enrolled_profile()
        report = yield self.rotate_once(profile)
        self.assertEqual(report.outcome, RotationOutcome.ROTATED)
        self.assertEqual(self.server.store.get_profile("alice").generation, 1)

    @defer.inlineCallbacks
    def test_enrollment_without_client_certificate_refused(self):
        """
        An enrollment that presents no client certificate fails in the
        handshake, saying so, and nothing is enrolled.
        """
        password = yield self.open_window()
        self.trust = lambda: {"ca": self.bundle}
        result = yield self.enroll(password)
        self.assertEqual(result.outcome, EnrollOutcome.ERROR)
        self.assertIn("certificate required", result.reason)
        self.assertIsNone(self.server.store.get_profile("alice"))

    @defer.inlineCallbacks
    def test_profile_without_client_certificate_refused(self):
        """
        A profile without a client certificate does not rotate: the
        server's key stays at the enrolled generation.
        """
        profile = yield self.enrolled_profile()
        bare = dataclasses.replace(profile, client_cert=None, client_key=None)
        report = yield self.rotate_once(bare)
        self.assertNotEqual(report.outcome, RotationOutcome.ROTATED)
        self.assertIn("certificate required", report.reason)
        self.assertEqual(self.server.store.get_profile("alice").generation, 0)

    @defer.inlineCallbacks
    def test_files_read_at_every_connection(self):
        """
        The profile's files are read again at each connection: a client
        key that is gone fails the next attempt, naming the file.
        """
        profile = yield self.enrolled_profile()
        endpoint = profile_endpoint(reactor, profile, 5)
        os.remove(self.client_key)
        failure = yield self.assertFailure(
            endpoint.connect(None), ClientTLSError
        )
        self.assertIn(self.client_key, str(failure))
