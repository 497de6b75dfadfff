# -*- test-case-name: tests.end_to_end.test_two_connections -*-
"""
One live connection per profile across two real C{twistd suto}
processes on loopback sharing one real PostgreSQL store (one deployment:
one master key, one certificate).  A copy of the device's state file on
127.0.0.2 reaching the second process, while the device's connection is
live on the first, is refused as a clone there (the first challenges its
connection, which answers); the device failing over to the second
process replaces its old connection, which the first closes, with no
alert.
"""

import json
import os
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from suto_client.agent import Agent
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.store.open import open_store
from tests.support.admin import run_admin_in_thread
from tests.support.bound_endpoint import bound_to
from tests.support.daemon import WAIT, fingerprint_of
from tests.support.two_daemons import TwoDaemons

DEVICE = "127.0.0.1"
COPY = "127.0.0.2"

#: The alerts a failover must never raise.
FALSE_ALERTS = {"clone_suspected", "reconnect_failed", "fingerprint_mismatch"}


class _Strandable(ProtocolWrapper):
    """
    The agent's protocol, which the test can strand: the agent is told
    its connection was lost, while the TCP connection stays open (a path
    that broke with the server not told), until the server closes it.
    """

    stranded = False

    def strand(self):
        self.stranded = True
        self.wrappedProtocol.connectionLost(Failure(ConnectionLost("stranded")))

    def dataReceived(self, data):
        if not self.stranded:
            super().dataReceived(data)

    def write(self, data):
        if not self.stranded:
            super().write(data)

    def connectionLost(self, reason):
        if not self.stranded:
            super().connectionLost(reason)
        self.factory.closed.callback(None)


@implementer(IStreamClientEndpoint)
class _FirstThenSecond:
    """
    The device's rotation endpoint: its first connection reaches the
    first process, strandable; every later one the second process, as an
    agent failing over does.
    """

    def __init__(self, reactor, profile, timeout, second_port, first):
        self._first = first
        self._endpoints = (
            bound_to(DEVICE)(reactor, profile, timeout),
            bound_to(DEVICE, second_port)(reactor, profile, timeout),
        )

    def connect(self, factory):
        if self._first.protocol is not None:
            return self._endpoints[1].connect(factory)
        watching = WrappingFactory(factory)
        watching.protocol = _Strandable
        watching.closed = self._first.closed

        def connected(wrapper):
            self._first.protocol = wrapper
            return wrapper.wrappedProtocol

        return self._endpoints[0].connect(watching).addCallback(connected)


class _FirstConnection:
    """
    The device's first connection, once made, and its end.
    """

    def __init__(self):
        self.protocol = None
        self.closed = defer.Deferred()


class TwoConnectionsTests(TestCase):
    """
    Two daemons of one deployment and alice's device.
    """

    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        self.deployment = yield TwoDaemons.start(self, "suto-2c-")
        self.location = self.deployment.location
        self.second_port = self.deployment.second_port
        self.profile = yield self.deployment.enroll(self)

    def run_agent(self, name, profile, address, endpoint, machine, interval=1):
        """
        Run an agent from C{address} on the machine C{machine}, with
        C{profile} in a state file of its own, rotating at connection and
        then every C{interval} seconds.

        @return: a L{defer.DeferredQueue} of its rotations' outcomes, and
            its state file.
        """
        state = os.path.join(self.deployment.folder, f"{name}.json")
        save_state(state, ClientState(profiles={"alice": profile}))
        outcomes = defer.DeferredQueue()
        agent = Agent(
            reactor,
            state,
            hello_endpoint_port=0,
            hello_interface=address,
            rotation_interval=interval,
            fingerprint=fingerprint_of(machine),
            rotation_endpoint=endpoint,
        )
        agent.add_rotation_observer(lambda user, outcome, key_id: outcomes.put(outcome))
        agent.startService()
        self.addCleanup(agent.stopService)
        return outcomes, state

    @defer.inlineCallbacks
    def rotated(self, outcomes):
        """
        Wait for the agent's next rotation.

        @return: the outcomes other than C{ROTATED} seen meanwhile.
        """
        others = []
        while True:
            outcome = yield outcomes.get().addTimeout(4 * WAIT, reactor)
            if outcome is RotationOutcome.ROTATED:
                return others
            others.append(outcome)

    def audit(self):
        store = open_store(self.location, read_only=True)
        self.addCleanup(store.close)
        self.assertEqual(store.verify_audit(), [])
        return store, store.audit_events()

    @defer.inlineCallbacks
    def test_copy_refused_on_other_process(self):
        """
        The device's connection is live on the first process, idle after
        its rotation; a copy of its state file, taken then, on another
        machine at 127.0.0.2, reaches the second: the first challenges
        the device's connection, which answers, and the second refuses
        the copy as a clone, with its alert.  No move is recorded, the
        key stays the device's, and its connection stays live.
        """
        device, state = self.run_agent(
            "device", self.profile, DEVICE, bound_to(DEVICE), "machine-1", 60
        )
        self.assertEqual((yield self.rotated(device)), [])
        current = load_state(state).profiles["alice"]
        copied = replace(current, server_port=self.second_port)
        copy, _ = self.run_agent("copy", copied, COPY, bound_to(COPY), "machine-2", 60)
        outcome = yield copy.get().addTimeout(4 * WAIT, reactor)
        self.assertEqual(outcome, RotationOutcome.UNKNOWN_KEY)
        code, out, err = yield run_admin_in_thread(
            self.deployment.first_data, "clients", "--json"
        )
        self.assertEqual(code, 0, err)
        [row] = json.loads(out)
        self.assertEqual((row["state"], row["address"]), ("connected", DEVICE))
        store, events = self.audit()
        self.assertEqual(store.get_profile("alice").key_id, current.key_id)
        [clone] = [event for event in events if event.event == "clone_suspected"]
        self.assertEqual(clone.source, COPY)
        self.assertIn("a live session exists there", clone.reason)
        self.assertEqual(clone.locations, (DEVICE, COPY))
        self.assertEqual(store.get_profile("alice").last_address, DEVICE)
        self.assertEqual(store.moves("alice"), [])

    @defer.inlineCallbacks
    def test_failover_replaces_connection(self):
        """
        The device's path to the first process breaks with the first not
        told, and the device fails over to the second: its connection
        there is admitted and rotates, and the first closes the old one
        at once (long before its idle timeout), with no alert.
        """
        first = _FirstConnection()

        def endpoint(reactor, profile, timeout):
            return _FirstThenSecond(reactor, profile, timeout, self.second_port, first)

        device, _ = self.run_agent("device", self.profile, DEVICE, endpoint, "machine-1")
        self.assertEqual((yield self.rotated(device)), [])
        first.protocol.strand()
        others = yield self.rotated(device)
        self.assertNotIn(RotationOutcome.UNKNOWN_KEY, others)
        yield first.closed.addTimeout(WAIT, reactor)
        store, events = self.audit()
        self.assertFalse({event.event for event in events} & FALSE_ALERTS)
        self.assertEqual(store.get_profile("alice").last_address, DEVICE)
        self.assertEqual(store.moves("alice"), [])
