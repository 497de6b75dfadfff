"""
Enrollment and rotation end to end over loopback against a daemon whose
listener has a CA-signed certificate and demands client certificates
(C{caCerts=...:requireClientCert=yes}): the endpoint trusts the server
through the CA bundle and presents a client certificate, at enrollment
and at every rotation.

The CAs, keys and certificates are made for the test with C{cryptography}.
"""

import dataclasses
import os

from twisted.internet import defer, reactor
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_client.enrollment import EnrollOutcome
from suto_client.rotation import RotationOutcome, profile_endpoint
from suto_client.tls import ClientTLSError
from suto_server.net import certificate

# The modules, not their test cases: trial would run those here again.
from tests.end_to_end import test_enrollment as test_enrollment_end_to_end
from tests.end_to_end import test_rotation as test_rotation_end_to_end
from tests.support.daemon import EnrollmentFixture, rotation_factory
from tests.support.pki import LOOPBACK, Authority, Files

#: Seconds any one wait for the daemon may take.
WAIT = 20


class MutualTLSFixture:
    """
    Mixed in before L{EnrollmentFixture}: the daemon's certificate is
    issued for 127.0.0.1 by a servers' CA, its listener demands a client
    certificate from a clients' CA, and the enroll client trusts the
    servers' CA bundle and presents such a certificate.
    """

    def make_listener(self):
        self.files = Files(os.path.join(self.data, "pki"))
        servers, clients = Authority("SUTO Servers CA"), Authority("SUTO Clients CA")
        key, server_certificate = servers.issue("suto", addresses=(LOOPBACK,))
        client_key, client_certificate = clients.issue("machine-1", client=True)
        server_cert = self.files.write("server.crt", server_certificate)
        with open(server_cert, "rb") as handle:
            # As the daemon reports it to suto-admin.
            self.pin = certificate.describe(handle.read()).fingerprint
        self.bundle = self.files.write("ca.pem", servers.certificate)
        self.client_cert = self.files.write("client.crt", client_certificate)
        self.client_key = self.files.write("client.key", client_key)
        accepted = self.files.write("clients-ca.pem", clients.certificate)
        return (
            f"ssl:0:interface={LOOPBACK}"
            f":privateKey={quoteStringArgument(self.files.write('server.key', key))}"
            f":certKey={quoteStringArgument(server_cert)}"
            f":caCerts={quoteStringArgument(accepted)}:requireClientCert=yes"
        )

    def trust(self):
        return {
            "ca": self.bundle,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
        }


class MutualTLSEnrollmentEndToEndTests(
    MutualTLSFixture, test_enrollment_end_to_end.EnrollmentEndToEndTests
):
    """
    Every enrollment end-to-end test, over CA trust and mutual TLS.
    """


class MutualTLSRotationEndToEndTests(
    MutualTLSFixture, test_rotation_end_to_end.RotationEndToEndTests
):
    """
    Every rotation end-to-end test, with the agent rotating a profile
    enrolled over CA trust and mutual TLS.
    """


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
