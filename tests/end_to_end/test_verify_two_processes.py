# -*- test-case-name: tests.end_to_end.test_verify_two_processes -*-
"""
The verification API of two servers sharing one store on a real
PostgreSQL server (L{tests.support.postgres}), over real loopback
sockets: the agent's live rotation connection is on one server, the
verification is asked of the other, which has the first challenge the
connection (L{suto_server.cluster.verify_relay}).
"""

import datetime
import http.client
import json
import os
import ssl
import time

from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import save_state
from suto_server import tap
from suto_server.net import certificate
from tests.support.daemon import WAIT, EnrollmentFixture
from tests.support.folders import socket_folder
from tests.support.masterkeys import share_master_key
from tests.support.pki import Authority, Files
from tests.support.postgres import new_location


class VerifyElsewhereTests(EnrollmentFixture, TestCase):
    """
    Server B (the fixture's daemon) holds alice's live connection; server
    A, on the same store, answers the verification API.
    """

    def make_listener(self):
        self.location = new_location(self)
        self.server_arguments = ("--store", self.location, "--hello-port", "9")
        return super().make_listener()

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.asked, self.api_port = yield self.start_asked()
        yield defer.gatherResults(
            [self.asked.relay.meet(1), self.server.relay.meet(1)]
        ).addTimeout(WAIT, reactor)
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        state = os.path.join(self.data, "client.json")
        save_state(state, ClientState(profiles={"alice": result.profile}))
        rotated = self.start_agent(state, 0)
        self.assertEqual((yield rotated.addTimeout(WAIT, reactor)), RotationOutcome.ROTATED)
        self.assertIn("alice", self.server.live)
        self.assertNotIn("alice", self.asked.live)

    @defer.inlineCallbacks
    def start_asked(self):
        """
        Start server A on the shared store, with the verification API.

        @return: a L{Deferred} firing with the server and its API's port.
        """
        data = socket_folder(self, "suto-asked-")
        # One deployment: both processes hold the master key.
        share_master_key(self.data, data)
        key, cert, _ = certificate.ensure_self_signed(
            data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        self.asked_cert = cert
        self.files = Files(os.path.join(data, "pki"))
        self.callers = Authority("SUTO API callers CA")
        callers_ca = self.files.write("callers.pem", self.callers.certificate)
        options = tap.Options()
        options.parseOptions([
            "--data", data,
            "--store", self.location,
            "--hello-port", "9",
            "--listen",
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
            f":certKey={quoteStringArgument(cert)}",
            "--api-listen",
            f"ssl:0:interface=127.0.0.1:caCerts={quoteStringArgument(callers_ca)}"
            ":requireClientCert=yes",
            "--verify-ou", "suto-hosts",
        ])  # fmt: skip
        server = tap.makeService(options)
        server.startService()
        self.addCleanup(server.stopService)
        port = yield server.listeners[-1].listening
        return server, port.getHost().port

    def verify(self, deadline):
        """
        Ask server A's API to verify alice, as a host with the verify role.

        @return: a L{Deferred} firing with the answer's JSON body.
        """
        key, issued = self.callers.issue("db1", client=True, units=("suto-hosts",))
        identity = (self.files.write("db1.crt", issued), self.files.write("db1.key", key))

        def call():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(self.asked_cert)
            context.load_cert_chain(*identity)
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.api_port, context=context, timeout=WAIT
            )
            try:
                body = json.dumps({"user": "alice", "deadline": deadline})
                connection.request("POST", "/v1/verify", body)
                response = connection.getresponse()
                self.assertEqual(response.status, 200)
                return json.loads(response.read())
            finally:
                connection.close()

        return threads.deferToThread(call)

    @defer.inlineCallbacks
    def test_accepted(self):
        """
        The server holding alice's live connection challenges it for the
        server asked: the device proves its current key, accepted.
        """
        body = yield self.verify(deadline=5)
        self.assertEqual(body["verdict"], "accepted", body)
        self.assertIn("live connection", body["reason"])

    @defer.inlineCallbacks
    def test_device_stopped(self):
        """
        With the agent stopped, no server holds a live connection: the
        verification is device_offline within its deadline.
        """
        yield self.stop_agent()
        yield self.until_gone()
        started = time.monotonic()
        body = yield self.verify(deadline=3)
        self.assertEqual(body["verdict"], "device_offline", body)
        self.assertLess(time.monotonic() - started, 3)

    @defer.inlineCallbacks
    def until_gone(self):
        """
        Wait until server B has seen the live connection end.
        """
        deadline = time.monotonic() + WAIT
        while "alice" in self.server.live:
            self.assertLess(time.monotonic(), deadline)
            yield task.deferLater(reactor, 0.05, lambda: None)
