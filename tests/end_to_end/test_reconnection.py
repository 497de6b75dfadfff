"""
Reconnection end to end over loopback: the daemon built by makeService
with a one-second rotation interval and offline step, and the endpoint
agent.  The agent rotates, is stopped long enough for the daemon to mark
the profile offline, and on restart reconnects with its offline key; then
a copy of its state on a machine with another fingerprint reconnects, is
blacklisted, and C{suto-admin blacklist} and C{suto-admin unblock} show
and lift the entry over the daemon's admin socket.
"""

import os
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.logger import globalLogPublisher
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation import CommitError, RotationFactory, profile_endpoint
from suto_client.rotation_outcome import RotationOutcome
from suto_client.state import ClientState
from suto_client.statefile import load_state, save_state
from tests.support.daemon import WAIT, EnrollmentFixture, fingerprint_of

#: Seconds between rotations, on both sides.
INTERVAL = "1"
#: Seconds of silence past a due rotation before the daemon marks offline.
GRACE = "0.5"
#: Rotations to run before the agent is stopped.
ROTATIONS = 2


class ReconnectionEndToEndTests(EnrollmentFixture, TestCase):
    """
    An agent that went silent reconnects; a copy of its state elsewhere is
    blacklisted.
    """

    server_arguments = (
        "--hello-port", "9",
        "--rotation-interval", INTERVAL,
        "--rotation-grace", GRACE,
        "--offline-step", "1",
    )

    def start_agent(self):
        """
        Run the agent of machine-1 on the state file.

        @return: a L{defer.DeferredQueue} of its rotation outcomes and key
            ids.
        """
        self.agent = Agent(
            reactor,
            self.state_path,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            timeout=5,
            rotation_interval=float(INTERVAL),
            fingerprint=fingerprint_of("machine-1"),
        )
        outcomes = defer.DeferredQueue()
        self.agent.add_rotation_observer(
            lambda user, outcome, key_id: outcomes.put((outcome, key_id))
        )
        self.agent.startService()
        self.addCleanup(self.stop_agent)
        return outcomes

    def marked_offline(self, user):
        """
        A L{Deferred} that fires once the daemon's offline sweep marks
        C{user} offline, within L{WAIT} seconds.
        """
        marked = defer.Deferred()

        def observe(event):
            if user in event.get("users", ()) and not marked.called:
                marked.callback(None)

        globalLogPublisher.addObserver(observe)
        marked.addTimeout(WAIT, reactor)
        marked.addBoth(
            lambda result: (globalLogPublisher.removeObserver(observe), result)[1]
        )
        return marked

    @defer.inlineCallbacks
    def silence(self):
        """
        Stop the agent and wait for the daemon to mark alice offline.
        """
        marked = self.marked_offline("alice")
        yield self.stop_agent()
        yield marked
        self.assertIsNotNone(self.server.store.offline_since("alice"))

    @defer.inlineCallbacks
    def test_reconnect_then_clone_blacklisted(self):
        """
        After rotations and a silence the daemon marks offline, the
        restarted agent reconnects (SUTO_C_RECONNECT_ opened under the
        offline key: a C{reconnected} audit record) and rotates, and both
        sides then hold the same key, online.  Silent again, a copy of
        that state on machine-2 reconnects under another fingerprint: the
        daemon refuses it and blacklists the profile; C{suto-admin
        blacklist} lists it, and C{suto-admin unblock} lifts the entry and
        removes the profile.
        """
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        self.state_path = os.path.join(self.data, "client.json")
        save_state(self.state_path, ClientState(profiles={"alice": result.profile}))
        outcomes = self.start_agent()
        for _ in range(ROTATIONS):
            outcome, _ = yield self.next_outcome(outcomes)
            self.assertEqual(outcome, RotationOutcome.ROTATED)
        yield self.silence()

        outcomes = self.start_agent()
        outcome, key_id = yield self.next_outcome(outcomes)
        self.assertEqual(outcome, RotationOutcome.ROTATED)
        [reconnected] = (yield self.events("reconnected"))
        self.assertEqual(reconnected.source, "127.0.0.1")
        client = load_state(self.state_path).profiles["alice"]
        server = self.server.store.get_profile("alice")
        self.assertEqual((client.key_id, client.generation), (key_id, server.generation))
        self.assertEqual(server.key_id, key_id)
        self.assertIsNone(client.offline_since)
        self.assertIsNone(self.server.store.offline_since("alice"))
        yield self.silence()

        copied = load_state(self.state_path).profiles["alice"]
        refused = defer.Deferred()
        factory = RotationFactory(
            copied,
            clock=reactor,
            interval=float(INTERVAL),
            timeout=5,
            store=lambda old, new: None,
            report=refused.callback,
            fingerprint=fingerprint_of("machine-2"),
        )
        protocol = yield profile_endpoint(reactor, copied, 5).connect(factory)
        report = yield refused.addTimeout(WAIT, reactor)
        protocol.transport.loseConnection()
        self.assertEqual(report.outcome, RotationOutcome.REFUSED)
        self.assertIsNotNone(self.server.store.blacklist_entry("alice"))
        [failed] = (yield self.events("reconnect_failed"))
        self.assertEqual(failed.source, "127.0.0.1")

        code, out, err = yield self.admin("blacklist")
        self.assertEqual((code, err), (0, ""))
        [_, line] = out.splitlines()
        user, _, alert, source, _ = line.split("\t")
        self.assertEqual(
            (user, alert, source), ("alice", "reconnect_failed", "from 127.0.0.1")
        )
        code, out, err = yield self.admin("unblock", "alice")
        self.assertEqual((code, err), (0, ""))
        self.assertIn("lifted the blacklist entry of alice", out)
        self.assertIsNone(self.server.store.get_profile("alice"))
        code, out, _ = yield self.admin("blacklist")
        self.assertEqual((code, out), (0, "USER\tTIME\tALERT\tSOURCE\tREASON\n"))


class Cutting(ProtocolWrapper):
    """
    Wraps the agent's rotation protocol: when its factory says so, cuts
    the connection as the server's C{SUTO_ROTATE_DONE_} arrives, before
    the agent sees it (the server has committed the rotation, the agent
    has not); tells its factory when the connection is gone.
    """

    def dataReceived(self, data):
        if self.factory.drop_done and data.startswith(b"SUTO_ROTATE_DONE_"):
            self.transport.abortConnection()
            return
        super().dataReceived(data)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.closed.callback(None)


class CuttingFactory(WrappingFactory):
    """
    Makes one L{Cutting} connection.

    @ivar closed: fires once it is gone.
    """

    protocol = Cutting

    def __init__(self, wrapped, drop_done):
        super().__init__(wrapped)
        self.drop_done = drop_done
        self.closed = defer.Deferred()


class InterruptedReconnectionTests(EnrollmentFixture, TestCase):
    """
    The report behind docs/PROTOCOL.md §10.2's "A reconnection cut
    short": the rotation after a reconnection commits on the daemon but
    not on the agent, which comes back from its previous key within the
    same offline step (a long one here, so that the retries fall in it).
    Both sides are marked offline as their silence would mark them, at
    once rather than after an interval.
    """

    server_arguments = (
        "--hello-port", "9",
        "--rotation-interval", "600",
        "--offline-step", "600",
    )

    @defer.inlineCallbacks
    def reconnect(self, profile, store, drop_done=False):
        """
        Connect once for C{profile} as the agent does, storing through
        C{store}, and close once the first rotation is reported; with
        C{drop_done}, "done" never reaches the agent.

        @return: the report of the connection's first rotation.
        """
        reported = defer.Deferred()
        factory = CuttingFactory(
            RotationFactory(
                profile,
                clock=reactor,
                interval=600.0,
                timeout=5,
                store=store,
                report=lambda report: reported.called or reported.callback(report),
                fingerprint=fingerprint_of("machine-1"),
            ),
            drop_done,
        )
        protocol = yield profile_endpoint(reactor, profile, 5).connect(factory)
        report = yield reported.addTimeout(WAIT, reactor)
        if not factory.closed.called:
            protocol.transport.loseConnection()
        yield factory.closed.addTimeout(WAIT, reactor)
        return report

    @defer.inlineCallbacks
    def test_done_lost_then_state_not_written(self):
        """
        Marked offline on both sides, the agent reconnects and its
        rotation commits on the daemon, but "done" is cut off; it
        reconnects again from the same key, and this time its rotation
        commits but the agent cannot write its state; the third time it
        gets through.  No C{reconnect_failed} alert, no blacklisting, and
        both sides end on one key, with three C{reconnected} records.
        """
        result = yield self.enroll((yield self.open_window()))
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        now = reactor.seconds()
        self.assertEqual(self.server.store.mark_offline(["alice"], now), ["alice"])
        offline = replace(result.profile, offline_since=now)
        kept = {"profile": offline, "fail": True}

        def store(old, new):
            if new.key_id != old.key_id and kept["fail"]:
                kept["fail"] = False
                raise CommitError("the disk is full")
            kept["profile"] = new

        report = yield self.reconnect(offline, store, drop_done=True)
        self.assertEqual(report.outcome, RotationOutcome.ERROR)
        server = self.server.store.get_profile("alice")
        self.assertEqual(server.previous_key_id, result.profile.key_id)
        self.assertIsNone(self.server.store.offline_since("alice"))
        self.assertIsNotNone(kept["profile"].offline_since)

        report = yield self.reconnect(kept["profile"], store)
        self.assertEqual(report.outcome, RotationOutcome.ERROR)
        self.assertEqual(kept["profile"].key_id, result.profile.key_id)

        report = yield self.reconnect(kept["profile"], store)
        self.assertEqual(report.outcome, RotationOutcome.ROTATED)
        client = kept["profile"]
        server = self.server.store.get_profile("alice")
        self.assertEqual(
            (client.key_id, client.generation), (server.key_id, server.generation)
        )
        self.assertIsNone(client.offline_since)
        self.assertEqual(len((yield self.events("reconnected"))), 3)
        self.assertEqual((yield self.events("reconnect_failed")), [])
        self.assertIsNone(self.server.store.blacklist_entry("alice"))
