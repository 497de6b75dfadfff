# -*- test-case-name: tests.client.test_failover -*-
"""
Tests for L{suto_client.failover}: which server of a deployment each
connection attempt goes to, the endpoint L{profile_endpoint} builds for a
profile with failover servers, and the agent carrying a rotation cut off
by a server's death over to another server, paced by its back-off.
"""

import os
from dataclasses import replace

from twisted.internet import error as internet_error
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_client.failover import FailoverEndpoint
from suto_client.rotation import RETRY_CAP, profile_endpoint
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.core import wire
from tests.support.client_rotation import (
    PROFILE,
    TIMEOUT,
    USER,
    FakeEndpoint,
    FakeServer,
    pump,
    rotated_profile,
    start_agent,
)
from tests.support.udp import MemoryUDPReactor

SERVERS = (("192.0.2.11", 2021), ("2001:db8::12", 2022))

FAILOVER_PROFILE = replace(PROFILE, failover=SERVERS)


class FailoverEndpointTests(SynchronousTestCase):
    """
    L{FailoverEndpoint} over recording endpoints.
    """

    def setUp(self):
        self.endpoints = {name: FakeEndpoint() for name in ("a", "b", "c")}
        self.failover = FailoverEndpoint(list(self.endpoints.items()))

    def attempted(self):
        """
        @return: the names of the servers with an attempt pending.
        """
        return [name for name, e in self.endpoints.items() if e.attempts]

    def test_interface(self):
        """
        It is a client endpoint.
        """
        self.assertTrue(verifyObject(IStreamClientEndpoint, self.failover))

    def test_first_server_first(self):
        """
        The first attempt goes to the first server.
        """
        self.failover.connect(object())
        self.assertEqual(self.attempted(), ["a"])

    def test_failure_moves_on(self):
        """
        A failed attempt fails as the server's endpoint failed it, and
        the next attempt goes to the next server, then the one after,
        then round to the first.
        """
        for expected in ["a", "b", "c", "a"]:
            failed = self.failover.connect(object())
            self.assertEqual(self.attempted(), [expected])
            self.endpoints[expected].refuse()
            self.failureResultOf(failed, internet_error.ConnectionRefusedError)

    def test_stays_with_working_server(self):
        """
        Once a server was reached, the attempts after go to it again, not
        back to the first.
        """
        failed = self.failover.connect(object())
        self.endpoints["a"].refuse()
        self.failureResultOf(failed)
        factory = _Factory()
        connected = self.failover.connect(factory)
        self.endpoints["b"].accept()
        self.assertIs(self.successResultOf(connected), factory.built)
        self.failover.connect(factory)
        self.assertEqual(self.attempted(), ["b"])
        self.assertEqual(self.failover.current, "b")

    def test_move_on(self):
        """
        L{FailoverEndpoint.move_on}, for a server that was reached but
        did not answer, sends the next attempt to the next server.
        """
        factory = _Factory()
        self.failover.connect(factory)
        self.endpoints["a"].accept()
        self.failover.move_on("closed before answering")
        self.failover.connect(factory)
        self.assertEqual(self.attempted(), ["b"])

    def test_one_server(self):
        """
        With one server every attempt goes to it.
        """
        endpoint = FakeEndpoint()
        failover = FailoverEndpoint([("only", endpoint)])
        failed = failover.connect(object())
        endpoint.refuse()
        self.failureResultOf(failed)
        failover.connect(object())
        self.assertEqual(len(endpoint.attempts), 1)
        self.assertEqual(failover.current, "only")

    def test_needs_a_server(self):
        """
        A failover endpoint without a server is refused.
        """
        self.assertRaises(ValueError, FailoverEndpoint, [])


class _Factory:
    """
    Builds one recorded protocol, as a rotation factory would.
    """

    def buildProtocol(self, address):
        self.built = Protocol()
        return self.built


class ProfileEndpointTests(SynchronousTestCase):
    """
    L{profile_endpoint} for a profile with failover servers.
    """

    def test_servers_in_order(self):
        """
        The endpoint of a profile with failover servers tries its own
        server, then each failover server in turn, each over TLS trusted
        by the profile's pin.
        """
        reactor = MemoryReactorClock()
        endpoint = profile_endpoint(reactor, FAILOVER_PROFILE, TIMEOUT)
        self.assertIsInstance(endpoint, FailoverEndpoint)
        expected = [(PROFILE.server_host, PROFILE.server_port), *SERVERS]
        for number, server in enumerate(expected):
            failed = endpoint.connect(_Factory())
            host, port, factory, timeout, _ = reactor.tcpClients[number]
            self.assertEqual((host, port, timeout), (*server, TIMEOUT))
            factory.clientConnectionFailed(
                None, Failure(internet_error.ConnectionRefusedError())
            )
            self.failureResultOf(failed, internet_error.ConnectionRefusedError)

    def test_no_failover(self):
        """
        A profile without failover servers gets its server's endpoint
        alone.
        """
        endpoint = profile_endpoint(MemoryReactorClock(), PROFILE, TIMEOUT)
        self.assertNotIsInstance(endpoint, FailoverEndpoint)


class AgentFailoverTests(SynchronousTestCase):
    """
    The agent rotating a profile with a failover server, whose first
    server dies in the middle of a rotation; the two servers share one
    store, the L{FakeServer}.
    """

    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        save_state(self.path, ClientState(profiles={USER: FAILOVER_PROFILE}))
        self.server = FakeServer()
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(PROFILE.enrolled_at)
        self.first, self.second = FakeEndpoint(), FakeEndpoint()
        self.outcomes = []
        start_agent(
            self,
            self.reactor,
            self.path,
            self.endpoint,
            observer=lambda user, outcome, key_id: self.outcomes.append(outcome),
        )

    def endpoint(self, reactor, profile, timeout):
        return FailoverEndpoint([("first", self.first), ("second", self.second)])

    def test_unanswered_moves_on(self):
        """
        A server that accepts the connection and closes it before saying
        anything (hung, or refusing under its connection limits) is left
        for the next server at the next attempt.
        """
        protocol, _ = self.first.accept()
        protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.reactor.advance(RETRY_CAP)
        self.assertEqual((len(self.first.attempts), len(self.second.attempts)), (0, 1))

    def test_answered_stays(self):
        """
        A connection on which the server answered, then lost, is made
        again to the same server: only a failed attempt or a silent
        server moves the agent on.
        """
        protocol, transport = self.first.accept()
        pump(protocol, transport, self.server, until=wire.RotateAck)
        protocol.connectionLost(Failure(internet_error.ConnectionLost()))
        self.reactor.advance(RETRY_CAP)
        self.assertEqual((len(self.first.attempts), len(self.second.attempts)), (1, 0))

    def test_server_dies_mid_rotation(self):
        """
        The first server dies once the agent has acknowledged its
        C{SUTO_ROTATE_OK_}, before it committed: the agent keeps its key,
        connects again after its back-off, finds the first server down,
        and after one more back-off rotates from that same key on the
        second server, which the shared store lets it do.
        """
        protocol, transport = self.first.accept()
        pump(protocol, transport, self.server, until=wire.RotateAck)
        protocol.connectionLost(Failure(internet_error.ConnectionLost()))
        self.assertEqual(load_state(self.path).profiles[USER], FAILOVER_PROFILE)
        self.assertEqual(self.outcomes, [RotationOutcome.ERROR])

        # Every wait of the back-off is within the cap, none is nothing.
        self.assertEqual(self.first.attempts, [])
        self.reactor.advance(RETRY_CAP)
        self.first.refuse()
        self.assertEqual(self.second.attempts, [])
        self.reactor.advance(RETRY_CAP)
        self.assertEqual(self.first.attempts, [])
        protocol, transport = self.second.accept()
        pump(protocol, transport, self.server)

        self.assertEqual(self.outcomes[-1], RotationOutcome.ROTATED)
        self.assertEqual(
            load_state(self.path).profiles[USER],
            replace(
                rotated_profile(self.server, self.reactor.seconds()), failover=SERVERS
            ),
        )
