"""
Port tracking end to end over loopback: the daemon built by makeService,
and two endpoint agents holding the same copied state file, one on
127.0.0.1 and one on 127.0.0.2, both receiving check packets on the same
UDP port of their own address and connecting from that address.
"""

import shutil
import socket

from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectError
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server import tap
from suto_server.store.dbthread import DatabaseThread
from tests.support.bound_endpoint import bound_to
from tests.support.daemon import WAIT, EnrollmentFixture, fingerprint_of

LEGITIMATE = "127.0.0.1"
THIEF = "127.0.0.2"
#: Seconds the daemon waits for the answer to a check.
CHECK_TIMEOUT = "0.5"


def free_udp_port() -> int:
    """
    A UDP port number free on both loopback addresses, for the agents: the
    server sends every check to one agent port, so both agents need the
    same number, which port 0 cannot give two sockets.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((LEGITIMATE, 0))
            port = first.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((THIEF, port))
                except OSError:
                    continue
        return port


class _Unreachable:
    "An endpoint that never connects: an agent that only answers checks."

    def connect(self, factory):
        return defer.fail(ConnectError("unreachable in this test"))


class TrackingEndToEndTests(EnrollmentFixture, TestCase):
    """
    A copied client state on a second address against the legitimate one.
    """

    def setUp(self):
        self.agent_port = free_udp_port()
        return super().setUp()

    @defer.inlineCallbacks
    def start_server(self):
        options = tap.Options()
        options.parseOptions(
            [
                "--data", self.data,
                "--listen", self.listen,
                "--hello-port", str(self.agent_port),
                "--hello-interface", LEGITIMATE,
                "--check-timeout", CHECK_TIMEOUT,
            ]
        )
        self.server = tap.makeService(options)
        self.server.startService()
        self.addCleanup(self.stop_server)
        port = yield self.server.listeners[0].listening
        self.port = port.getHost().port

    @defer.inlineCallbacks
    def enrolled_state(self):
        """
        Enroll alice from 127.0.0.1 and write the agent's state file.

        @return: the state file's path.
        """
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        path = self.mktemp()
        save_state(path, ClientState(accounts={}, profiles={"alice": result.profile}))
        return path

    def start_agent(self, state_path, address, endpoint=None, machine="machine-1"):
        """
        Run an agent on C{address} with C{state_path}, rotating once at
        connection and then only every minute, on the machine whose
        fingerprint source reads C{machine}.

        @return: the agent and a L{defer.DeferredQueue} of its rotation
            outcomes.
        """
        agent = Agent(
            reactor,
            state_path,
            hello_endpoint_port=self.agent_port,
            hello_interface=address,
            timeout=5,
            rotation_interval=60,
            fingerprint=fingerprint_of(machine),
            rotation_endpoint=endpoint or bound_to(address),
        )
        outcomes = defer.DeferredQueue()
        agent.add_rotation_observer(lambda user, outcome, key_id: outcomes.put(outcome))
        agent.startService()
        self.addCleanup(lambda: agent.running and agent.stopService())
        return agent, outcomes

    @defer.inlineCallbacks
    def until(self, predicate):
        """
        Wait, for at most L{WAIT} seconds, until C{predicate()} holds.
        """
        deadline = reactor.seconds() + WAIT
        while not predicate():
            if reactor.seconds() > deadline:
                self.fail("timed out waiting for the server")
            yield task.deferLater(reactor, 0.01, lambda: None)

    def copy(self, path):
        copied = self.mktemp()
        shutil.copy(path, copied)
        return copied

    @defer.inlineCallbacks
    def test_clone_refused_then_move(self):
        """
        A copy of the current state on 127.0.0.2 is refused with
        clone_suspected, naming both addresses, while the legitimate agent
        is online on 127.0.0.1; once that agent is stopped the copy is
        accepted as a move: location_changed, the move kept, the registry
        at the new address, and the copy's rotation committed.
        """
        legitimate_path = yield self.enrolled_state()
        legitimate, outcomes = self.start_agent(legitimate_path, LEGITIMATE)
        self.assertEqual((yield self.next_outcome(outcomes)), RotationOutcome.ROTATED)
        thief_path = self.copy(legitimate_path)

        thief, thief_outcomes = self.start_agent(thief_path, THIEF)
        outcome = yield self.next_outcome(thief_outcomes)
        self.assertEqual(outcome, RotationOutcome.UNKNOWN_KEY)
        [clone] = (yield self.events("clone_suspected"))
        self.assertEqual(clone.source, THIEF)
        self.assertEqual(clone.locations, (LEGITIMATE, THIEF))
        self.assertEqual(self.server.live.get("alice").address, LEGITIMATE)
        self.assertEqual(self.server.store.get_profile("alice").last_address, LEGITIMATE)
        self.assertEqual(self.server.store.moves("alice"), [])

        yield legitimate.stopService()
        yield self.until(lambda: "alice" not in self.server.live)
        yield thief.stopService()
        _, thief_outcomes = self.start_agent(thief_path, THIEF)
        outcome = yield self.next_outcome(thief_outcomes)
        self.assertEqual(outcome, RotationOutcome.ROTATED)
        [moved] = (yield self.events("location_changed"))
        self.assertEqual((moved.source, moved.locations), (THIEF, (LEGITIMATE, THIEF)))
        [move] = self.server.store.moves("alice")
        self.assertEqual((move.old_address, move.new_address), (LEGITIMATE, THIEF))
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.last_address, THIEF)
        self.assertEqual(profile.key_id, load_state(thief_path).profiles["alice"].key_id)
        status = yield defer.ensureDeferred(self.server.status())
        self.assertEqual(status["connected"], 1)

    @defer.inlineCallbacks
    def test_old_location_answers_check(self):
        """
        With no live connection but the legitimate agent still answering
        on 127.0.0.1, a copy on 127.0.0.2 is refused because the agent
        answered the server's check packet with a valid proof: the real
        UDP round trip, not the live-session shortcut.
        """
        legitimate_path = yield self.enrolled_state()
        thief_path = self.copy(legitimate_path)
        self.start_agent(legitimate_path, LEGITIMATE, endpoint=lambda *a: _Unreachable())
        _, thief_outcomes = self.start_agent(thief_path, THIEF)
        outcome = yield self.next_outcome(thief_outcomes)
        self.assertEqual(outcome, RotationOutcome.UNKNOWN_KEY)
        [clone] = (yield self.events("clone_suspected"))
        self.assertIn("answered at its old location", clone.reason)
        self.assertEqual(clone.locations, (LEGITIMATE, THIEF))
        self.assertEqual(self.server.store.moves("alice"), [])
        status = yield defer.ensureDeferred(self.server.status())
        self.assertEqual(status["connected"], 0)

    @defer.inlineCallbacks
    def test_rotation_commits_on_database_thread(self):
        """
        The daemon runs a database thread, and a rotation commits through
        it: the thread's own store is the one opened for it.
        """
        database = self.server._database
        self.assertIsInstance(database, DatabaseThread)
        self.assertIsNone(database._store)
        _, outcomes = self.start_agent((yield self.enrolled_state()), LEGITIMATE)
        self.assertEqual((yield self.next_outcome(outcomes)), RotationOutcome.ROTATED)
        self.assertIsNotNone(database._store)
        self.assertIsNot(database._store, self.server.store)

    @defer.inlineCallbacks
    def test_rotation_makes_copy_stale(self):
        """
        State copied before the legitimate agent's rotations is stale for
        good once a rotation it completed is confirmed (the agent rotated
        again from the new key, here after reconnecting): even with the
        legitimate agent stopped, the copy on 127.0.0.2 is refused with
        clone_suspected, and the registry stays where the legitimate
        client was.
        """
        legitimate_path = yield self.enrolled_state()
        thief_path = self.copy(legitimate_path)
        for _ in range(2):
            legitimate, outcomes = self.start_agent(legitimate_path, LEGITIMATE)
            outcome = yield self.next_outcome(outcomes)
            self.assertEqual(outcome, RotationOutcome.ROTATED)
            yield legitimate.stopService()
            yield self.until(lambda: "alice" not in self.server.live)
        _, thief_outcomes = self.start_agent(thief_path, THIEF)
        outcome = yield self.next_outcome(thief_outcomes)
        self.assertEqual(outcome, RotationOutcome.UNKNOWN_KEY)
        [clone] = (yield self.events("clone_suspected"))
        self.assertEqual(clone.source, THIEF)
        self.assertEqual(self.server.store.moves("alice"), [])
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.last_address, LEGITIMATE)
        self.assertEqual(
            profile.key_id, load_state(legitimate_path).profiles["alice"].key_id
        )

    @defer.inlineCallbacks
    def test_copy_on_another_machine_cannot_take_the_registry(self):
        """
        A copy of the state on another machine (127.0.0.2), started while
        the legitimate agent is away, passes the silent check but cannot
        open the server's "ok": the registry stays at 127.0.0.1, so the
        legitimate agent coming back there rotates, with no check sent to
        the copy, which keeps running and would answer one.
        """
        legitimate_path = yield self.enrolled_state()
        thief_path = self.copy(legitimate_path)
        _, thief_outcomes = self.start_agent(thief_path, THIEF, machine="machine-2")
        outcome = yield self.next_outcome(thief_outcomes)
        self.assertEqual(outcome, RotationOutcome.OPEN_FAILED)
        yield self.until(lambda: "alice" not in self.server.live)
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.last_address, LEGITIMATE)
        self.assertEqual(self.server.store.moves("alice"), [])
        self.assertEqual((yield self.events("location_changed")), [])

        _, outcomes = self.start_agent(legitimate_path, LEGITIMATE)
        self.assertEqual((yield self.next_outcome(outcomes)), RotationOutcome.ROTATED)
        self.assertEqual((yield self.events("clone_suspected")), [])
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.last_address, LEGITIMATE)
        self.assertEqual(
            profile.key_id, load_state(legitimate_path).profiles["alice"].key_id
        )
