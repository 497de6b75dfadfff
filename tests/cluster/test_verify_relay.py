# -*- test-case-name: tests.cluster.test_verify_relay -*-
"""
Tests for L{suto_server.cluster.verify_relay}: verifications of a live
connection held by another process, over the in-memory stand-in for the
store's channel (L{tests.support.channel}), time on L{task.Clock}s.
"""

import json

from twisted.internet import task
from twisted.internet.defer import CancelledError, fail
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.cluster.notice import open_notice
from suto_server.cluster.verify_relay import (
    HOLDER_WAIT,
    MAX_SERVED,
    Answered,
    verify_relay_for,
)
from suto_server.rules.registry import LiveSessions, TooManyChallenges
from suto_server.store.errors import StoreError
from tests.support.channel import NOTICE_KEY, Channel, ChannelProcess, sealed
from tests.support.live import RecordingConnection

NONCE = bytes(range(16))
DEVICE = "10.0.0.5"


class _Process(ChannelProcess):
    """
    One process's relay, its verify relay, its live connections and clock.
    """

    def __init__(self, channel, key):
        super().__init__(
            channel,
            task.Clock(),
            random_key=lambda: key,
            random_bytes=lambda size: NONCE[:size],
        )


class _Recorder:
    """
    Records, as a relay of its own on the channel, every notice sent.
    """

    def __init__(self):
        self.notices = []

    def deliver(self, text):
        self.notices.append(json.loads(open_notice(NOTICE_KEY, text)))


class VerifyRelayTests(SynchronousTestCase):
    """
    Process C{asked} verifies alice, whose live connection is on
    process C{holder}.
    """

    def setUp(self):
        self.channel = Channel()
        self.heard = _Recorder()
        self.channel.relays.append(self.heard)
        self.asked = _Process(self.channel, key=11)
        self.holder = _Process(self.channel, key=22)
        for process in (self.asked, self.holder):
            process.relay.here()
        self.connection = RecordingConnection()
        self.holder.live.attach("alice", DEVICE, 0, self.connection)

    def ask(self, user="alice", timeout=10):
        outcomes = []
        self.asked.verifications.ask(user, timeout).addCallback(outcomes.append)
        return outcomes

    def sent(self, op):
        return [notice for notice in self.heard.notices if notice["op"] == op]

    def test_outcomes(self):
        """
        The holder challenges its live connection with the nonce the asked
        process drew and announces the outcome, to the asked process only,
        which reads it; no notice carries anything but the outcome.
        """
        self.assertTrue(self.asked.verifications.has_others())
        for proven, outcome in [(True, "matched"), (False, "mismatched"), (None, "no_answer")]:
            outcomes = self.ask()
            nonce, d = self.connection.challenges.pop()
            self.assertEqual((nonce, outcomes), (NONCE, []))
            d.callback(proven)
            self.assertEqual(outcomes, [Answered(outcome, DEVICE)])
        verified = self.sent("verified")
        self.assertEqual(
            {tuple(sorted(notice)) for notice in verified},
            {("device", "key", "node", "nonce", "op", "outcome", "to")},
        )
        self.assertEqual({notice["to"] for notice in verified}, {self.asked.relay.node})
        self.assertEqual(self.holder.verifications._served, {})

    def test_busy(self):
        """
        A connection with too many challenges waiting is announced busy.
        """
        self.connection.challenge = lambda nonce: fail(TooManyChallenges())
        self.assertEqual(self.ask(), [Answered("busy", DEVICE)])

    def test_proofs_unreadable(self):
        """
        A challenge whose proofs the store could not give is announced
        busy, which the asker answers C{error} ("try again"), never
        C{no_answer}: the device was not asked.
        """
        self.connection.challenge = lambda nonce: fail(StoreError("disk gone"))
        self.assertEqual(self.ask(), [Answered("busy", DEVICE)])

    def test_nobody_holds(self):
        """
        When no process holds the user's live connection, nobody answers:
        the asked process reads L{None} after L{HOLDER_WAIT} seconds (or
        the caller's timeout, if shorter).
        """
        outcomes = self.ask(user="bob")
        self.asked.clock.advance(HOLDER_WAIT - 0.01)
        self.assertEqual(outcomes, [])
        self.asked.clock.advance(0.01)
        self.assertEqual((outcomes, self.sent("holding")), ([None], []))
        outcomes = self.ask(user="bob", timeout=0.5)
        self.asked.clock.advance(0.5)
        self.assertEqual(outcomes, [None])
        self.assertEqual(self.asked.verifications._asked, {})

    def test_holder_waited_for(self):
        """
        Once the holder said it holds the connection, its outcome is
        awaited past L{HOLDER_WAIT}.
        """
        outcomes = self.ask()
        self.asked.clock.advance(HOLDER_WAIT * 5)
        self.assertEqual(outcomes, [])
        self.connection.challenges.pop()[1].callback(True)
        self.assertEqual(outcomes, [Answered("matched", DEVICE)])

    def test_holder_gives_up(self):
        """
        The holder gives its challenge up once the asked process's timeout
        passed, and announces nothing then.
        """
        self.ask(timeout=3)
        self.holder.clock.advance(3)
        self.assertEqual(self.connection.cancelled, [NONCE])
        self.assertEqual((self.holder.verifications._served, self.sent("verified")), ({}, []))

    def test_store_away(self):
        """
        A request that cannot be announced is answered at once: nobody
        holds the connection that this process could ask.
        """
        self.channel.down = True
        self.assertEqual(self.ask(), [None])

    def test_cancelled(self):
        """
        An ask given up (the caller's deadline) is forgotten: a late
        answer is dropped.
        """
        asked = self.asked.verifications.ask("alice", 10)
        asked.cancel()
        self.failureResultOf(asked, CancelledError)
        self.assertEqual(self.asked.verifications._asked, {})
        with capturedLogs() as events:
            self.connection.challenges.pop()[1].callback(True)
        self.assertIn("dropped an answer", events[0]["log_format"])

    def forge(self, **fields):
        """
        Deliver to the asked process a notice from the holder, or who
        C{fields} say.
        """
        notice = {"node": self.holder.relay.node, "op": "verified", "key": 11,
                  "to": self.asked.relay.node, "nonce": NONCE.hex(), "outcome": "matched",
                  "device": DEVICE}  # fmt: skip
        notice.update(fields)
        with capturedLogs() as events:
            self.asked.relay.deliver(sealed(json.dumps(notice)))
        return [event for event in events if event.get("log_level") == LogLevel.warn]

    def test_forged_answers(self):
        """
        An answer counts only when it names an outstanding request of this
        process by key and nonce, is addressed to it, and comes from the
        process that first said it holds the connection.
        """
        outcomes = self.ask()
        self.assertEqual(len(self.forge(key=12)), 1)
        self.assertEqual(len(self.forge(nonce="00" * 16)), 1)
        self.assertEqual(self.forge(to="someone-else"), [])
        self.assertEqual(len(self.forge(node="a-third-process")), 1)
        self.assertEqual(len(self.forge(nonce="zz" * 16)), 1)
        self.assertEqual(len(self.forge(outcome="accepted")), 1)
        self.assertEqual(len(self.forge(device="not an address")), 1)
        self.assertEqual(outcomes, [])
        self.connection.challenges.pop()[1].callback(False)
        self.assertEqual(outcomes, [Answered("mismatched", DEVICE)])

    def test_malformed_verify(self):
        """
        A C{verify} notice for no valid user, with no nonce, no timeout or
        longer than a notice can be, is dropped unanswered.
        """
        notice = {"node": "elsewhere", "op": "verify", "key": 5, "user": "alice",
                  "nonce": NONCE.hex(), "timeout": 5}  # fmt: skip
        for fields in [
            {"user": "../alice"},
            {"nonce": NONCE.hex()[:-2]},
            {"timeout": 0},
            {"timeout": True},
            {"padding": "x" * 8000},
        ]:
            with capturedLogs() as events:
                self.holder.relay.deliver(sealed(json.dumps({**notice, **fields})))
            self.assertIn("malformed", events[0]["log_format"])
        self.assertEqual((self.connection.challenges, self.sent("holding")), ([], []))

    def test_served_once(self):
        """
        A request heard twice is challenged once; the challenges served
        for other processes at once are bounded.
        """
        notice = {"node": "elsewhere", "op": "verify", "key": 5, "user": "alice",
                  "nonce": NONCE.hex(), "timeout": 5}  # fmt: skip
        for key in range(MAX_SERVED + 1):
            for _ in range(2):
                self.holder.relay.deliver(sealed(json.dumps({**notice, "key": key})))
        self.assertEqual(len(self.connection.challenges), MAX_SERVED)

    def test_stop(self):
        """
        Stopping gives up what is under way, asked or served.
        """
        outcomes = self.ask()
        self.asked.verifications.stop()
        self.holder.verifications.stop()
        self.assertEqual((outcomes, self.connection.cancelled), ([None], [NONCE]))
        self.assertEqual(self.holder.verifications._served, {})

    def test_alone(self):
        """
        A server whose store no other process shares has no verify relay.
        """
        self.assertIsNone(verify_relay_for(self.asked.clock, None, LiveSessions()))
