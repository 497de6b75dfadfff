# -*- test-case-name: tests.end_to_end.test_failover -*-
"""
Agent failover end to end: two real C{twistd suto} processes on
loopback share one real PostgreSQL store (one deployment: one master key,
one certificate), the agent's profile names the second as its failover
server, and the first is killed (C{SIGKILL}) in the middle of a rotation,
at the cut points of PROTOCOL.md §9.3 a test can reach deterministically:
right after the server's C{SUTO_ROTATE_OK_} (nothing committed) and right
after its commit (C{SUTO_ROTATE_DONE_} lost with the server).  The agent
goes on rotating with the second server, no key is lost, and no alert is
raised.

The cut is made on the agent's side of the TLS connection, where the
server's messages arrive decrypted: the message that marks the cut point
is withheld from the agent and the first server killed before anything
else happens, which is what the agent would see had the server died
there itself.
"""

import json
import os
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from suto_client.agent import Agent
from suto_client.rotation import profile_endpoint
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.store.open import open_store
from tests.support.admin import run_admin_in_thread
from tests.support.daemon import WAIT, fingerprint_of
from tests.support.two_daemons import TwoDaemons

#: The alerts a failover must never raise.
FALSE_ALERTS = {"clone_suspected", "reconnect_failed", "fingerprint_mismatch"}


class _Cut(ProtocolWrapper):
    """
    The agent's protocol, watched: the first time the server's message
    C{factory.marker} arrives, it is withheld and C{factory.cut()} runs.
    """

    def dataReceived(self, data):
        if self.factory.marker is not None and self.factory.marker in data:
            self.factory.marker = None
            self.factory.cut()
            return
        super().dataReceived(data)


@implementer(IStreamClientEndpoint)
class _CutEndpoint:
    """
    An agent's endpoint whose connections are L{_Cut}.
    """

    def __init__(self, endpoint, marker, cut):
        self._endpoint = endpoint
        self._marker = marker
        self._cut = cut

    def connect(self, factory):
        watching = WrappingFactory(factory)
        watching.protocol = _Cut
        watching.marker = self._marker
        watching.cut = self._cut
        # Only the first connection's server is cut.
        self._marker = None
        # The caller gets its own protocol back, as from any endpoint.
        connecting = self._endpoint.connect(watching)
        return connecting.addCallback(lambda cut: cut.wrappedProtocol)


class FailoverEndToEndTests(TestCase):
    """
    Two daemons of one deployment, the agent, and the first daemon's
    death.
    """

    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        deployment = yield TwoDaemons.start(self, "suto-fo-")
        self.location = deployment.location
        self.first, self.second = deployment.first, deployment.second
        self.first_data, self.second_data = deployment.first_data, deployment.second_data
        self.second_port = deployment.second_port
        self.state = os.path.join(deployment.folder, "client.json")
        self.deployment = deployment

    @defer.inlineCallbacks
    def enroll(self):
        """
        Enroll alice through the first daemon, and save her profile with
        the second daemon as its failover server.

        @return: the profile saved.
        """
        enrolled = yield self.deployment.enroll(self)
        profile = replace(enrolled, failover=(("127.0.0.1", self.second_port),))
        save_state(self.state, ClientState(profiles={"alice": profile}))
        return profile

    def run_agent(self, marker):
        """
        Start the agent, its first connection cut at the server's message
        C{marker} by killing the first daemon.

        @return: a L{defer.DeferredQueue} of its rotations' outcomes.
        """
        outcomes = defer.DeferredQueue()

        def endpoint(reactor, profile, timeout):
            return _CutEndpoint(
                profile_endpoint(reactor, profile, timeout), marker, self.first.kill
            )

        agent = Agent(
            reactor,
            self.state,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            rotation_interval=0.5,
            fingerprint=fingerprint_of("machine-1"),
            rotation_endpoint=endpoint,
        )
        agent.add_rotation_observer(lambda user, outcome, key_id: outcomes.put(outcome))
        agent.startService()
        self.addCleanup(agent.stopService)
        return outcomes

    @defer.inlineCallbacks
    def rotated_on_second(self, outcomes, rotations=2):
        """
        Wait for the first daemon's death and for C{rotations} rotations
        after it, each of which can only have been with the second.

        @return: the outcomes other than C{ROTATED} seen meanwhile.
        """
        yield self.first.ended.addTimeout(WAIT, reactor)
        others = []
        while rotations:
            outcome = yield outcomes.get().addTimeout(4 * WAIT, reactor)
            if outcome is RotationOutcome.ROTATED:
                rotations -= 1
            else:
                others.append(outcome)
        return others

    @defer.inlineCallbacks
    def check_deployment(self, enrolled):
        """
        The agent and the store agree on the key, which has moved on from
        the enrolled one; the second daemon lists no false alert, the
        profile is not blacklisted, and the audit chain is intact.

        @return: the names of the audit events.
        """
        stored = load_state(self.state).profiles["alice"]
        store = open_store(self.location, read_only=True)
        self.addCleanup(store.close)
        profile = store.get_profile("alice")
        self.assertEqual(stored.key_id, profile.key_id)
        self.assertGreater(profile.generation, enrolled.generation)
        self.assertIsNone(store.blacklist_entry("alice"))
        self.assertEqual(store.verify_audit(), [])
        code, out, err = yield run_admin_in_thread(self.second_data, "alerts", "--json")
        self.assertEqual(code, 0, err)
        alerts = {alert["type"] for alert in json.loads(out)}
        self.assertFalse(alerts & FALSE_ALERTS, alerts)
        return [event.event for event in store.audit_events()]

    @defer.inlineCallbacks
    def test_dies_after_ok(self):
        """
        The first daemon dies right after sending C{SUTO_ROTATE_OK_}: it
        committed nothing, so the agent rotates from its current key on
        the second daemon.
        """
        enrolled = yield self.enroll()
        outcomes = self.run_agent(b"SUTO_ROTATE_OK_")
        others = yield self.rotated_on_second(outcomes)
        self.assertNotIn(RotationOutcome.UNKNOWN_KEY, others)
        events = yield self.check_deployment(enrolled)
        self.assertNotIn("rotation_rolled_back", events)

    @defer.inlineCallbacks
    def test_dies_after_commit(self):
        """
        The first daemon dies right after committing the new key, its
        C{SUTO_ROTATE_DONE_} lost: the agent never committed that key and
        comes back to the second daemon with the previous one, which the
        store kept, so the second daemon rolls the profile back to it and
        rotates on (PROTOCOL.md §9.3).
        """
        enrolled = yield self.enroll()
        outcomes = self.run_agent(b"SUTO_ROTATE_DONE_")
        others = yield self.rotated_on_second(outcomes)
        self.assertNotIn(RotationOutcome.UNKNOWN_KEY, others)
        events = yield self.check_deployment(enrolled)
        self.assertIn("rotation_rolled_back", events)
