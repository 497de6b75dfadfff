"""
Key rotation end to end over loopback: enroll through the daemon, run the
endpoint agent with a short interval, and check that both sides advance
together and that the enrolled key no longer opens a session.
"""

import os

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.rules.rotation import Rotation
from tests.support.daemon import EnrollmentFixture, fingerprint_of
from tests.support.mutual_tls import MutualTLSFixture

ROTATIONS = 3


class RotationEndToEndTests(EnrollmentFixture, TestCase):
    """
    Enrollment through the daemon, then the agent rotating for real.
    """

    @defer.inlineCallbacks
    def enroll_and_run_agent(self):
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        self.state_path = os.path.join(self.data, "client.json")
        save_state(self.state_path, ClientState(accounts={}, profiles={"alice": result.profile}))
        self.agent = Agent(
            reactor,
            self.state_path,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            rotation_interval=0.2,
            fingerprint=fingerprint_of("machine-1"),
        )
        self.rotations = defer.DeferredQueue()
        self.agent.add_rotation_observer(
            lambda user, outcome, key_id: self.rotations.put((user, outcome, key_id))
        )
        self.agent.startService()
        self.addCleanup(self.stop_agent)
        return result.profile

    def stop_agent(self):
        if self.agent.running:
            return self.agent.stopService()

    @defer.inlineCallbacks
    def test_rotations_advance_together(self):
        """
        Several rotations later the server's profile, the agent's state file
        and the reported key ids agree, at the generation reached, and each
        rotation produced a new key id.
        """
        enrolled = yield self.enroll_and_run_agent()
        seen = [enrolled.key_id]
        for _ in range(ROTATIONS):
            user, outcome, key_id = yield self.rotations.get()
            self.assertEqual((user, outcome), ("alice", RotationOutcome.ROTATED))
            seen.append(key_id)
        yield self.stop_agent()
        self.assertEqual(len(set(seen)), len(seen))
        server_profile = self.server.store.get_profile("alice")
        client_profile = load_state(self.state_path).profiles["alice"]
        self.assertEqual(server_profile.key_id, client_profile.key_id)
        self.assertEqual(server_profile.generation, client_profile.generation)
        self.assertGreaterEqual(server_profile.generation, ROTATIONS)
        self.assertIn(server_profile.key_id, seen)

    @defer.inlineCallbacks
    def test_later_rotations_primed(self):
        """
        On its one connection the agent's first rotation takes two round
        trips and every later one is primed (protocol version 3): the
        server begins it with the share it handed out at the last commit.
        """
        forms = []
        begin = Rotation.begin

        def recording(rotation, *args, server_private=None, **kwargs):
            forms.append("primed" if server_private is not None else "plain")
            return begin(rotation, *args, server_private=server_private, **kwargs)

        self.patch(Rotation, "begin", recording)
        yield self.enroll_and_run_agent()
        for _ in range(ROTATIONS):
            _, outcome, _ = yield self.rotations.get()
            self.assertEqual(outcome, RotationOutcome.ROTATED)
        self.assertEqual(forms, ["plain"] + ["primed"] * (ROTATIONS - 1))

    @defer.inlineCallbacks
    def test_stolen_enrollment_key_is_stale(self):
        """
        A copy of the state taken at enrollment no longer opens a session
        once the legitimate agent has rotated twice: the server answers
        UNKNOWN_KEY and records clone_suspected.
        """
        enrolled = yield self.enroll_and_run_agent()
        for _ in range(2):
            _, outcome, _ = yield self.rotations.get()
            self.assertEqual(outcome, RotationOutcome.ROTATED)
        yield self.stop_agent()
        report = yield self.rotate(enrolled)
        self.assertEqual(report.outcome, RotationOutcome.UNKNOWN_KEY)
        yield self.server.audit.flushed()
        events = [e.event for e in self.server.store.audit_events()]
        self.assertIn("clone_suspected", events)


class MutualTLSRotationEndToEndTests(MutualTLSFixture, RotationEndToEndTests):
    """
    Every rotation end-to-end test, with the agent rotating a profile
    enrolled over CA trust and mutual TLS.
    """
