# -*- test-case-name: tests.end_to_end.test_two_processes -*-
"""
End to end over real loopback sockets: two servers, each built from its
options exactly as C{twistd suto} builds it (its own data folder, its
own TLS listener), sharing one store on a real PostgreSQL server
(L{tests.support.postgres}), as two processes of a site do; and the
endpoint agent.  A classic authentication asked of one server is
answered by the device connecting to the other; one of the two leads.
"""

import datetime
import os
import time

from twisted.internet import defer, reactor
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.classic_machine import Outcome
from suto_client.state import Account, ClientState
from suto_client.statefile import save_state
from suto_server import tap
from suto_server.core import schemes
from suto_server.net import certificate
from suto_server.net.discovery import parse_targets
from suto_server.rules.rendezvous import Verdict
from suto_server.store.postgres import PostgresStore
from tests.support.folders import socket_folder
from tests.support.postgres import new_location

PASSWORD = "alice's secret"

#: Seconds any one awaited event may take.
WAIT = 15


class TwoServersTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.location = new_location(self)
        store = PostgresStore.open(self.location)
        store.add_user(
            "alice", schemes.hash_password(PASSWORD, "sha512_crypt"), time.time()
        )
        store.close()
        self.asked, self.asked_port, _ = yield self.start_server("suto-asked-")
        self.reached, self.reached_port, pin = yield self.start_server("suto-reached-")
        # Both hear each other's requests from now on.
        yield defer.gatherResults(
            [self.asked.relay.listening, self.reached.relay.listening]
        )
        self.state_path = os.path.join(socket_folder(self, "suto-agent-"), "state.json")
        self.account = dict(
            user="alice",
            server_host="127.0.0.1",
            server_port=self.reached_port,
            pin=pin.replace(":", "").lower(),
        )
        self.agent = Agent(
            reactor, self.state_path, hello_endpoint_port=0, hello_interface="127.0.0.1"
        )
        self.results = defer.DeferredQueue()
        self.agent.add_observer(lambda user, result: self.results.put(result))

    @defer.inlineCallbacks
    def start_server(self, prefix):
        """
        Start a server on the shared store with a data folder of its own.

        @return: a L{Deferred} firing with the server, its TLS port and
            its certificate's fingerprint.
        """
        data = socket_folder(self, prefix)
        key, cert, _ = certificate.ensure_self_signed(
            data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert, "rb") as handle:
            pin = certificate.describe(handle.read()).fingerprint
        options = tap.Options()
        options.parseOptions(
            [
                "--data", data,
                "--store", self.location,
                "--listen",
                f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
                f":certKey={quoteStringArgument(cert)}",
                "--hello-port", "9",
                "--auth-timeout", "10",
            ]
        )  # fmt: skip
        server = tap.makeService(options)
        server.startService()
        self.addCleanup(server.stopService)
        port = yield server.listeners[0].listening
        return server, port.getHost().port, pin

    def start_agent(self, password):
        save_state(
            self.state_path,
            ClientState(accounts={"alice": Account(**self.account, password=password)}),
        )
        self.agent.startService()
        self.addCleanup(self.agent.stopService)

    def authenticate(self):
        """
        Ask the first server to authenticate alice at the agent, whose
        account names the second server.
        """
        targets = parse_targets(f"127.0.0.1:{self.agent.hello_port}")
        return self.asked.authenticator.authenticate("alice", targets).addTimeout(
            WAIT, reactor
        )

    @defer.inlineCallbacks
    def audited(self):
        """
        The authentication events of the shared audit log, once both
        servers wrote what they recorded.
        """
        yield defer.gatherResults(
            [self.asked.audit.flushed(), self.reached.audit.flushed()]
        )
        return [
            (e.event, e.username, e.source)
            for e in self.asked.store.audit_events()
            if e.event.startswith("authentication")
        ]

    @defer.inlineCallbacks
    def test_answered_through_other(self):
        """
        The device connects to the other server, which runs the challenge:
        the server asked learns the device proved the password, and the
        shared audit log records it once.
        """
        self.start_agent(PASSWORD)
        outcome = yield self.authenticate()
        self.assertEqual(
            (outcome.verdict, outcome.source), (Verdict.ACCEPTED, "127.0.0.1")
        )
        result = yield self.results.get().addTimeout(WAIT, reactor)
        self.assertEqual(result.outcome, Outcome.ACCEPTED)
        self.assertEqual(
            (yield self.audited()),
            [("authentication_accepted", "alice", "127.0.0.1")],
        )
        self.assertEqual(self.asked.rendezvous.pending, ())

    @defer.inlineCallbacks
    def test_rejected_through_other(self):
        """
        A wrong password given to the other server is a rejection for the
        server asked.
        """
        self.start_agent("guess")
        outcome = yield self.authenticate()
        self.assertEqual(outcome.verdict, Verdict.REJECTED)
        self.assertEqual(
            (yield self.audited()),
            [("authentication_rejected", "alice", "127.0.0.1")],
        )

    @defer.inlineCallbacks
    def test_one_leads(self):
        """
        Of the two servers, one runs the once-only jobs.
        """
        yield defer.gatherResults(
            [self.asked.leadership.attempt(), self.reached.leadership.attempt()]
        )
        self.assertEqual(
            sorted([self.asked.leadership.leading, self.reached.leadership.leading]),
            [False, True],
        )
