# -*- test-case-name: tests.cluster.test_presence -*-
"""
Tests for L{suto_server.cluster.presence}: port tracking in two
processes over one store, whose relays share the in-memory stand-in for
the store's channel (L{tests.support.channel}); each process has its own
clock, live connections and L{Tracking}, and the store is in memory.
"""

import itertools
import json

from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.cluster.notice import BadNotice, parse_notice
from suto_server.cluster.presence import (
    ECHO_WAIT,
    MAX_ASKING,
    Presence,
    presence_for,
)
from suto_server.cluster.verify_relay import HOLDER_WAIT
from suto_server.locations import Locations
from suto_server.net.checks import CheckResult
from suto_server.rules.registry import LiveSessions, TooManyChallenges
from suto_server.rules.tracking import Tracking
from suto_server.store.calls import LocalCalls
from suto_server.store.memory import MemoryStore
from tests.support.channel import Channel, ChannelProcess
from tests.support.live import RecordingConnection
from tests.support.store_suite.values import PROFILE, WINDOW
from tests.support.tracking import RecordingAudit, RecordingChecks, admit

NOW = 1_700_000_000.0
OLD = PROFILE.location
NEW = "10.9.0.4"
KEY = bytes(range(32))
WAIT = 3.0


class _Connection(RecordingConnection):
    """
    A live rotation connection that records its closing.
    """

    closed = False

    def close(self):
        self.closed = True


class _Process(ChannelProcess):
    """
    One server process on the shared store: its relay on the channel,
    verify relay, live connections, presence and tracking.
    """

    def __init__(self, channel, store, key):
        clock = task.Clock()
        clock.advance(NOW)
        super().__init__(channel, clock, random_key=itertools.count(key).__next__)
        self.presence = presence_for(
            self.clock, self.relay, self.verifications, self.live, WAIT
        )
        self.store = store
        self.audit = RecordingAudit()
        self.checks = RecordingChecks()
        self.tracking = Tracking(
            LocalCalls(store), self.audit, self.live, self.checks, Locations()
        )
        self.tracking.share(self.presence)

    def admit(self, address, connection, proven=True):
        """
        @return: a list that receives whether C{connection} from
            C{address} may serve alice.
        """
        return admit(
            self.tracking, self.store, KEY, address, connection,
            self.clock.seconds(), proven=proven,
        )


class PresenceTests(SynchronousTestCase):
    """
    Alice's connection from her registered address is live on process
    C{holder}; another connection of hers reaches process C{newcomer}.
    """

    def setUp(self):
        self.channel = Channel()
        self.store = MemoryStore()
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.holder = _Process(self.channel, self.store, key=11)
        self.newcomer = _Process(self.channel, self.store, key=22)
        for process in (self.holder, self.newcomer):
            process.relay.here()
        self.old = _Connection()
        self.assertEqual(self.holder.admit(OLD, self.old), [True])
        # The newcomers come a second later.
        self.newcomer.clock.advance(1)
        self.assertIs(self.holder.live.get("alice").connection, self.old)

    def answer(self, proven):
        """
        The holder's live connection answers the challenge it was sent.
        """
        [(_, challenge)] = self.old.challenges
        del self.old.challenges[:]
        challenge.callback(proven)

    def test_clone_refused(self):
        """
        A newcomer from another address, while the holder's connection
        proves the key, is refused as a clone (as within one process):
        C{clone_suspected}, unproven for a newcomer that proved nothing,
        no check packet, and the store and the live connection untouched.
        """
        decisions = self.newcomer.admit(NEW, _Connection(), proven=False)
        self.assertEqual(decisions, [])
        self.answer(True)
        self.assertEqual(decisions, [False])
        [(event, source, reason, unproven)] = self.newcomer.audit.records
        self.assertEqual((event, source, unproven), ("clone_suspected", NEW, True))
        self.assertIn("a live session exists there", reason)
        self.assertEqual(self.newcomer.checks.sent, [])
        self.assertEqual(self.store.get_profile("alice").last_address, OLD)
        self.assertFalse(self.old.closed)
        self.assertIn("alice", self.holder.live)
        self.assertNotIn("alice", self.newcomer.live)

    def test_busy_holder(self):
        """
        A holder's connection busy with other challenges is there all the
        same: the newcomer from another address is refused.
        """
        decisions = self.newcomer.admit(NEW, _Connection())
        [(_, challenge)] = self.old.challenges
        challenge.errback(TooManyChallenges())
        self.assertEqual(decisions, [False])
        self.assertEqual(self.newcomer.audit.events(), ["clone_suspected"])

    def test_reconnection_replaces(self):
        """
        A reconnection from the profile's address through the other
        process is admitted at once, with nobody asked (a live connection
        is where the profile was last seen) and no alert; it becomes the
        live connection there, and the holder lets its old one go and
        closes it.
        """
        connection = _Connection()
        decisions = self.newcomer.admit(OLD, connection)
        self.assertEqual((decisions, self.old.challenges), ([True], []))
        self.assertIs(self.newcomer.live.get("alice").connection, connection)
        self.assertTrue(self.old.closed)
        self.assertNotIn("alice", self.holder.live)
        self.assertEqual(self.newcomer.audit.events() + self.holder.audit.events(), [])
        self.assertFalse(connection.closed)

    def test_skewed_clock(self):
        """
        A process whose clock is behind the holder's still replaces the
        holder's older connection, and the holder does not keep it: the
        order the store delivers the announcements in decides, the same
        on every process, not the hosts' clocks.
        """
        self.newcomer.clock.rightNow = NOW - 60
        connection = _Connection()
        self.assertEqual(self.newcomer.admit(OLD, connection), [True])
        self.assertTrue(self.old.closed)
        self.assertNotIn("alice", self.holder.live)
        self.assertIs(self.newcomer.live.get("alice").connection, connection)
        self.assertFalse(connection.closed)

    def test_late_notice(self):
        """
        The announcement of another process's connection heard before
        this process heard its own back (notices cross: that one is
        earlier in the store's order) closes nothing; one heard after it
        replaces the connection held here.
        """
        notice = {"user": "alice", "device": NEW, "key": 5}
        sent = self.hold_announcements()
        connection = _Connection()
        self.assertEqual(self.newcomer.admit(OLD, connection), [True])
        [(key, fields, _)] = sent
        self.newcomer.presence.deliver("a0", notice)
        self.assertFalse(connection.closed)
        self.newcomer.presence.deliver(self.newcomer.relay.node, {**fields, "key": key})
        self.newcomer.presence.deliver("a0", notice)
        self.assertTrue(connection.closed)
        self.assertNotIn("alice", self.newcomer.live)

    def test_announcement_lost(self):
        """
        An own announcement not heard back within L{ECHO_WAIT} seconds
        (the listener was away), or not sent at all, counts as heard:
        another process's connection heard of next replaces the one held
        here.
        """
        notice = {"user": "alice", "device": NEW, "key": 5}
        sent = self.hold_announcements()
        for lost in (
            lambda told: self.newcomer.clock.advance(ECHO_WAIT),
            lambda told: told.callback(False),
        ):
            connection = _Connection()
            self.assertEqual(self.newcomer.admit(OLD, connection), [True])
            self.newcomer.presence.deliver("a0", notice)
            self.assertFalse(connection.closed)
            lost(sent[-1][2])
            self.newcomer.presence.deliver("a0", notice)
            self.assertTrue(connection.closed)

    def hold_announcements(self):
        """
        Keep the newcomer's notices from the channel.

        @return: a list receiving each one's key, fields and the
            L{Deferred} of its sending.
        """
        sent = []

        def send(op, key, **fields):
            told = Deferred()
            sent.append((key, fields, told))
            return told

        self.newcomer.relay.send = send
        return sent

    def test_unanswered_holder(self):
        """
        A holder whose connection gives no answer is not the key holder:
        the newcomer goes on as with nobody holding, the check packet to
        the old location; silence there moves the profile, and the old
        connection is let go.
        """
        connection = _Connection()
        decisions = self.newcomer.admit(NEW, connection)
        self.answer(None)
        self.assertEqual(decisions, [True])
        self.assertEqual(self.newcomer.checks.sent, [OLD])
        self.assertEqual(self.newcomer.audit.events(), ["location_changed"])
        self.assertEqual(self.store.get_profile("alice").last_address, NEW)
        self.assertTrue(self.old.closed)

    def test_answer_at_old_location(self):
        """
        A holder that gave no answer, while the check packet to the old
        location is answered, still refuses the newcomer as a clone.
        """
        self.newcomer.checks.result = CheckResult.ANSWERED
        decisions = self.newcomer.admit(NEW, _Connection())
        self.answer(False)
        self.assertEqual(decisions, [False])
        self.assertEqual(self.newcomer.audit.events(), ["clone_suspected"])
        self.assertFalse(self.old.closed)

    def test_holder_never_answers(self):
        """
        A holder that said it holds the connection but sends no outcome
        (it died, or its challenge was given up) is waited for a second
        longer than the check's timeout, then taken for none.
        """
        self.old.challenge = lambda nonce: Deferred()
        decisions = self.newcomer.admit(NEW, _Connection())
        self.newcomer.clock.advance(WAIT + 1.0 - 0.01)
        self.assertEqual(decisions, [])
        self.newcomer.clock.advance(0.01)
        self.assertEqual(decisions, [True])
        self.assertEqual(self.newcomer.checks.sent, [OLD])

    def test_nobody_holds(self):
        """
        With no live connection on the other process, the newcomer is
        decided after L{HOLDER_WAIT} seconds as within one process: the
        check packet to the old location, then the move.
        """
        self.holder.live.detach("alice", self.old)
        decisions = self.newcomer.admit(NEW, _Connection())
        self.newcomer.clock.advance(HOLDER_WAIT - 0.01)
        self.assertEqual((decisions, self.newcomer.checks.sent), ([], []))
        self.newcomer.clock.advance(0.01)
        self.assertEqual((decisions, self.newcomer.checks.sent), ([True], [OLD]))
        self.assertIn("alice", self.newcomer.live)

    def test_asks_bounded(self):
        """
        At most L{MAX_ASKING} newcomers wait for the other processes at
        once: the next is decided as within one process (the check packet
        to the profile's last address) without a notice, and a warning
        says so.
        """
        self.holder.live.detach("alice", self.old)
        waiting = [
            self.newcomer.admit(NEW, _Connection()) for _ in range(MAX_ASKING)
        ]
        self.assertEqual(self.newcomer.checks.sent, [])
        with capturedLogs() as events:
            decisions = self.newcomer.admit(NEW, _Connection())
        self.assertEqual((decisions, self.newcomer.checks.sent), ([True], [OLD]))
        self.assertEqual(
            [e["log_level"] for e in events if "asking" in e["log_format"]],
            [LogLevel.warn],
        )
        self.newcomer.clock.advance(HOLDER_WAIT)
        self.assertEqual(waiting, [[True]] * MAX_ASKING)
        # The waits over, a newcomer asks again.
        live = self.newcomer.live.get("alice")
        self.newcomer.live.detach("alice", live.connection)
        decisions = self.newcomer.admit("10.9.0.5", _Connection())
        self.assertEqual(decisions, [])
        self.newcomer.clock.advance(HOLDER_WAIT)
        self.assertEqual(decisions, [True])

    def test_alone(self):
        """
        With no other process heard from lately, nobody is asked: the
        decision is taken at once.
        """
        self.newcomer.clock.advance(60)
        sent = []
        self.newcomer.relay.send = lambda op, key, **fields: sent.append(op) or succeed(True)
        decisions = self.newcomer.admit(NEW, _Connection())
        self.assertEqual(decisions, [True])
        self.assertEqual(sent, ["live"])
        self.assertEqual(self.newcomer.checks.sent, [OLD])

    def test_same_process_first(self):
        """
        A profile live in this process is decided here, without asking.
        """
        other = _Connection()
        decisions = self.holder.admit(NEW, other)
        self.assertEqual(decisions, [False])
        self.assertEqual(self.old.challenges, [])

    def test_no_relay(self):
        """
        A server with no relay (a store of one process) has no presence.
        """
        live = LiveSessions()
        self.assertIsNone(presence_for(self.holder.clock, None, None, live, WAIT))
        self.assertIsInstance(self.holder.presence, Presence)


class LiveNoticeTests(SynchronousTestCase):
    """
    The C{live} notice is checked whole before a presence acts on it.
    """

    def notice(self, **fields):
        return json.dumps({"node": "ab", "op": "live", "key": 7, **fields})

    def test_valid(self):
        notice = parse_notice(self.notice(user="alice", device=NEW))
        self.assertEqual(
            (notice["user"], notice["device"], notice["key"]), ("alice", NEW, 7)
        )

    def test_invalid(self):
        for fields in [
            {"device": NEW},
            {"user": "alice"},
            {"user": "al ice", "device": NEW},
            {"user": "alice", "device": "not an address"},
        ]:
            self.assertRaises(BadNotice, parse_notice, self.notice(**fields))
