# -*- test-case-name: tests.end_to_end.test_store_outage -*-
"""
A PostgreSQL outage under load, end to end: a real C{twistd suto} on a
real PostgreSQL store (the tests' stoppable server,
L{tests.support.stoppable_postgres}, reached over TCP), several
real agents rotating their keys every half second, and the database
stopped (a fast shutdown, as an operator or a failover manager stops a
primary) while they rotate, then started again on the same data and
port.

While it is away the daemon answers C{SUTO_ERROR_BUSY}, the agents'
rotations fail and are retried after their back-off, and nothing reaches
the daemon's log as a traceback.  Once it is back every agent rotates
again within the bound its back-off gives, with no restart of anything;
each agent's key is the store's current key or, where the key's
C{SUTO_ROTATE_DONE_} was lost with the outage, the previous one, which
the store keeps for exactly that (PROTOCOL.md §9.3); no rotation was
answered done without its commit, no alert a false move or clone would
raise is in the audit log, and the log verifies.
"""

import os

from twisted.internet import defer, reactor, task, threads
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.rotation import RETRY_CAP
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from suto_server.store.open import open_store
from tests.support.admin import run_admin, run_admin_in_thread
from tests.support.daemon import WAIT, fingerprint_of
from tests.support.daemon_process import DaemonProcess, enroll_through, self_signed
from tests.support.folders import socket_folder
from tests.support.stoppable_postgres import stoppable_server

#: How many agents rotate, each with one profile.
AGENTS = 4

#: Seconds between an agent's rotations.
INTERVAL = 0.5

#: Failed rotations each agent must see before the database comes back:
#: an outage of a few seconds, as the agents' back-off spaces them.
FAILURES_IN_OUTAGE = 2

#: The most an agent may take to rotate once the database is back: its
#: longest back-off, one interval, and the daemon's way back to the
#: database besides.
RECOVERY_BOUND = RETRY_CAP + INTERVAL + WAIT

#: Audit events that would mean the outage was taken for an attack.
FALSE_ALARMS = {
    "clone_suspected",
    "reconnect_failed",
    "fingerprint_mismatch",
    "blacklisted",
}


class _Rotations:
    """
    Every rotation outcome the agents reported, with when it came.
    """

    def __init__(self):
        self.seen = []

    def observe(self, user, outcome, key_id):
        self.seen.append((reactor.seconds(), user, outcome))

    def count(self, user, since, rotated):
        """
        @return: how many of C{user}'s rotations since C{since} ended
            C{ROTATED} (C{rotated}) or otherwise.
        """
        return sum(
            1
            for when, who, outcome in self.seen
            if who == user
            and when >= since
            and (outcome is RotationOutcome.ROTATED) == rotated
        )


class StoreOutageTests(TestCase):
    """
    The daemon, its agents and its database's outage.
    """

    timeout = 240

    @defer.inlineCallbacks
    def setUp(self):
        self.database = stoppable_server(self)
        self.location = self.database.new_location(self)
        folder = socket_folder(self, "suto-out-")
        self.folder = folder
        self.data = os.path.join(folder, "data")
        code, _, err = run_admin("--data", self.data, "--store", self.location, "init")
        self.assertEqual(code, 0, err)
        key, cert, self.pin = self_signed(folder)
        self.daemon = DaemonProcess.start(
            self, self.data, key, cert, "--store", self.location
        )
        self.port = yield self.daemon.listening.addTimeout(WAIT, reactor)
        self.rotations = _Rotations()
        self.users = [f"user{number}" for number in range(AGENTS)]

    @defer.inlineCallbacks
    def start_agent(self, user):
        """
        Enroll C{user} from a machine of its own, and start an agent
        rotating its key.
        """
        profile = yield enroll_through(self, self.data, self.port, self.pin, user, user)
        state = os.path.join(self.folder, f"{user}.json")
        save_state(state, ClientState(profiles={user: profile}))
        agent = Agent(
            reactor,
            state,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            rotation_interval=INTERVAL,
            fingerprint=fingerprint_of(user),
        )
        agent.add_rotation_observer(self.rotations.observe)
        agent.startService()
        self.addCleanup(agent.stopService)

    @defer.inlineCallbacks
    def until(self, condition, within, what):
        """
        Poll C{condition} on the reactor every tenth of a second until it
        holds, failing the test after C{within} seconds.

        @return: the seconds it took.
        """
        start = reactor.seconds()
        while not condition():
            if reactor.seconds() - start > within:
                self.fail(f"{what}: not within {within} seconds")
            yield task.deferLater(reactor, 0.1, lambda: None)
        return reactor.seconds() - start

    def every_agent(self, since, rotated, times=1):
        """
        @return: a condition: every agent's rotations since C{since} that
            ended C{ROTATED} (C{rotated}), or otherwise, are C{times} or
            more.
        """
        return lambda: all(
            self.rotations.count(user, since, rotated) >= times for user in self.users
        )

    @defer.inlineCallbacks
    def test_outage(self):
        """
        The agents rotate through the database's stop and start: they are
        answered busy while it is away, without a traceback in the
        daemon's log, and rotate again within L{RECOVERY_BOUND} seconds
        of its return; afterwards every agent holds the store's current
        or previous key, nothing raised a false alarm, and the audit log
        verifies.
        """
        for user in self.users:
            yield self.start_agent(user)
        began = reactor.seconds()
        yield self.until(self.every_agent(began, True, 2), 4 * WAIT, "rotating")

        yield threads.deferToThread(self.database.stop)
        # A rotation committed before the stop may still be answered
        # done while the server shuts down: what counts comes after.
        stopped = reactor.seconds()
        yield self.until(
            self.every_agent(stopped, False, FAILURES_IN_OUTAGE),
            RECOVERY_BOUND,
            "rotations failing while the database is away",
        )
        self.assertIn(b"failed: the store did not answer", self.daemon.output)
        self.assertEqual(
            {outcome for when, _, outcome in self.rotations.seen if when >= stopped},
            {RotationOutcome.ERROR},
        )

        restarted = reactor.seconds()
        yield threads.deferToThread(self.database.start)
        yield self.until(
            self.every_agent(restarted, True, 2),
            RECOVERY_BOUND,
            "rotating again once the database is back",
        )
        self.assertNotIn(b"Traceback", self.daemon.output)
        self.assertLessEqual(
            {outcome for _, _, outcome in self.rotations.seen},
            {RotationOutcome.ROTATED, RotationOutcome.ERROR},
        )
        yield self.check_deployment()

    @defer.inlineCallbacks
    def check_deployment(self):
        """
        Each agent holds the store's current or previous key, which has
        moved on; no profile is blacklisted; no false alarm is in the
        audit log, and C{suto-admin audit verify} passes.
        """
        store = open_store(self.location, read_only=True)
        self.addCleanup(store.close)
        for user in self.users:
            held = load_state(os.path.join(self.folder, f"{user}.json")).profiles[user]
            profile = store.get_profile(user)
            self.assertIn(held.key_id, (profile.key_id, profile.previous_key_id))
            self.assertGreater(profile.generation, 2)
            self.assertIsNone(store.blacklist_entry(user))
        events = {event.event for event in store.audit_events()}
        self.assertFalse(events & FALSE_ALARMS, events)
        code, out, err = yield run_admin_in_thread(
            self.data, "--store", self.location, "audit", "verify"
        )
        self.assertEqual(code, 0, out + err)
