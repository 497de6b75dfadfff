# -*- test-case-name: tests.cluster.test_relay -*-
"""
Tests for L{suto_server.cluster.relay} and the store's notices and claims
(L{suto_server.store.postgres.notices}): classic authentications shared
by two processes' rendezvous, first over an in-memory stand-in for the
store's channel and claims (every notice delivered at once, time on
L{task.Clock}s), then over a real PostgreSQL server.
"""

import json

from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.cluster.notice import seal_notice
from suto_server.cluster.relay import HERE_EVERY, Relay, relay_for
from suto_server.net.discovery import parse_targets
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.rendezvous import (
    ANNOUNCE_WAIT,
    REMOTE_ANSWER_WAIT,
    Outcome,
    Rendezvous,
    RequestConflict,
    Verdict,
)
from suto_server.store.memory import MemoryStore
from suto_server.store.postgres import PostgresStore
from tests.support.channel import NOTICE_KEY, Channel, ChannelSession, sealed
from tests.support.coroutines import result_of
from tests.support.postgres import new_location

DEVICE = "10.0.0.5"


class _Process:
    """
    One process's rendezvous, its clock, its relay and the outcomes its
    observer saw.
    """

    def __init__(self, channel):
        self.clock = task.Clock()
        self.observed = []
        self.relay = Relay(
            reactor, ChannelSession(channel), clock=self.clock, key=NOTICE_KEY
        )
        channel.relays.append(self.relay)
        self.rendezvous = Rendezvous(
            self.clock,
            timeout=5,
            observers=[lambda request, outcome: self.observed.append(outcome)],
            peers=self.relay,
        )
        self.relay.serve(self.rendezvous)


class SharedRendezvousTests(SynchronousTestCase):
    """
    Two processes' rendezvous over one channel.
    """

    def setUp(self):
        self.channel = Channel()
        self.asked = _Process(self.channel)
        self.reached = _Process(self.channel)
        for process in (self.asked, self.reached):
            process.relay.here()

    def ask(self, accept_from=(DEVICE,)):
        """
        Open a request for alice on the first process.

        @return: the outcomes its L{Deferred} fired with.
        """
        outcomes = []
        self.asked.rendezvous.open("alice", accept_from).done.addCallback(
            outcomes.append
        )
        return outcomes

    def test_answered_elsewhere(self):
        """
        The device's connection reaching the other process claims the
        request there, and no connection may claim it on the first; the
        verdict given there fires the request where it was opened, and
        is observed (audited, counted) only where the device answered.
        """
        outcomes = self.ask()
        self.assertTrue(self.reached.rendezvous.expects(DEVICE))
        claimed = result_of(self, self.reached.rendezvous.claim(DEVICE))
        self.assertEqual(claimed.user, "alice")
        self.assertIsNone(result_of(self, self.asked.rendezvous.claim(DEVICE)))
        self.reached.rendezvous.finish(claimed, Verdict.ACCEPTED)
        expected = Outcome("alice", Verdict.ACCEPTED, DEVICE, "")
        self.assertEqual(outcomes, [expected])
        self.assertEqual(
            (self.asked.observed, self.reached.observed), ([], [expected])
        )
        self.assertEqual(self.channel.claims, {})
        self.assertEqual(self.asked.rendezvous.pending, ())
        self.assertFalse(self.reached.rendezvous.expects(DEVICE))

    def test_only_claimer_ends(self):
        """
        An end announced for a request no connection to another process
        claimed changes nothing: only the claimer gives a verdict.
        """
        outcomes = self.ask()
        [request] = self.asked.rendezvous.pending
        self.asked.rendezvous.remote_finished(request.key, Verdict.ACCEPTED, "", DEVICE)
        result_of(self, self.asked.rendezvous.claim(DEVICE))
        self.asked.rendezvous.remote_finished(request.key, Verdict.ACCEPTED, "", DEVICE)
        self.assertEqual(outcomes, [])
        self.assertEqual(self.asked.rendezvous.pending, (request,))

    def test_claimed_here_first(self):
        """
        A request claimed where it was opened cannot be claimed by a
        connection to the other process, even one that had not heard of
        the claim yet: the claim in the store is taken.
        """
        self.ask()
        self.channel.relays.remove(self.reached.relay)
        self.assertIsNotNone(result_of(self, self.asked.rendezvous.claim(DEVICE)))
        self.assertIsNone(result_of(self, self.reached.rendezvous.claim(DEVICE)))

    def test_claimer_silent(self):
        """
        A request claimed by another process that never gives its verdict
        (it died) ends as an error after L{REMOTE_ANSWER_WAIT} seconds,
        not at the device's timeout.
        """
        outcomes = self.ask()
        result_of(self, self.reached.rendezvous.claim(DEVICE))
        self.asked.clock.advance(5)
        self.assertEqual(outcomes, [])
        self.asked.clock.advance(REMOTE_ANSWER_WAIT)
        [outcome] = outcomes
        self.assertEqual(outcome.verdict, Verdict.ERROR)
        self.assertEqual(outcome.source, DEVICE)

    def test_timeout_ends_mirrors(self):
        """
        A request that times out where it was opened is no longer
        expected anywhere.
        """
        outcomes = self.ask()
        self.asked.clock.advance(5)
        self.assertEqual(outcomes[0].verdict, Verdict.TIMEOUT)
        self.assertFalse(self.reached.rendezvous.expects(DEVICE))

    def test_mirror_outlives_nothing(self):
        """
        A mirrored request whose end never comes is dropped after its
        timeout and L{REMOTE_ANSWER_WAIT} seconds more.
        """
        self.channel.relays.remove(self.asked.relay)
        self.ask()
        self.channel.relays.clear()
        self.reached.clock.advance(5 + REMOTE_ANSWER_WAIT - 1)
        self.assertTrue(self.reached.rendezvous.expects(DEVICE))
        self.reached.clock.advance(1)
        self.assertFalse(self.reached.rendezvous.expects(DEVICE))

    def test_overlap_refused(self):
        """
        A request overlapping another process's pending one cannot be
        opened, as one overlapping a request of its own process.
        """
        self.reached.rendezvous.open("bob", [DEVICE])
        with self.assertRaises(RequestConflict):
            self.ask(["10.0.0.4/30"])

    def test_overlap_served_where_opened(self):
        """
        Two processes that opened overlapping requests at once (neither
        had heard of the other's) each serve their own only.
        """
        self.channel.relays.remove(self.asked.relay)
        self.reached.rendezvous.open("bob", [DEVICE])
        self.channel.relays.append(self.asked.relay)
        with capturedLogs() as events:
            self.ask(["10.0.0.4/30"])
        self.assertEqual(
            [e["user"] for e in events if e["log_level"] == LogLevel.warn],
            ["alice"],
        )
        self.assertEqual(result_of(self, self.reached.rendezvous.claim(DEVICE)).user, "bob")
        self.assertFalse(self.reached.rendezvous.expects("10.0.0.6"))

    def test_store_away(self):
        """
        Without the store, a request opened is served where it was
        opened, and a connection claims nothing rather than risk a second
        claim; both are logged.
        """
        self.channel.down = True
        with capturedLogs() as events:
            outcomes = self.ask()
            self.assertIsNone(result_of(self, self.asked.rendezvous.claim(DEVICE)))
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.warn]), 2)
        self.channel.down = False
        self.assertIsNotNone(result_of(self, self.asked.rendezvous.claim(DEVICE)))
        self.assertEqual(outcomes, [])

    def test_forged_verdict(self):
        """
        A notice only a role of the database sent (NOTIFY needs no more
        than a connection), or a process of another deployment on the
        same database, does not end a request: claimed and accepted
        under another process's name, the request still waits for its
        device.
        """
        request = self.asked.rendezvous.open("alice", (DEVICE,))
        outcomes = []
        request.done.addCallback(outcomes.append)
        forged = [
            {"node": "intruder", "op": "claimed", "key": request.key,
             "source": DEVICE},
            {"node": "intruder", "op": "done", "key": request.key,
             "verdict": "accepted", "reason": "", "source": DEVICE},
        ]  # fmt: skip
        other = bytes(32)
        with capturedLogs() as events:
            for notice in forged:
                self.asked.relay.deliver(json.dumps(notice))
                self.asked.relay.deliver(seal_notice(other, json.dumps(notice)))
        self.assertEqual(outcomes, [])
        self.assertEqual(
            len([e for e in events if e["log_level"] == LogLevel.warn]),
            2 * len(forged),
        )
        self.assertIsNotNone(result_of(self, self.asked.rendezvous.claim(DEVICE)))

    def test_malformed_notices(self):
        """
        A notice that is not one a process sends is logged and dropped.
        """
        good = {
            "node": "other", "op": "open", "key": 7, "user": "alice",
            "networks": [DEVICE], "timeout": 5,
        }  # fmt: skip
        bad = [
            "not json",
            "[]",
            {**good, "key": -1},
            {**good, "key": True},
            {**good, "node": 3},
            {**good, "op": "steal"},
            {**good, "user": "a b"},
            {**good, "networks": []},
            {**good, "networks": ["nowhere"]},
            {**good, "networks": [DEVICE] * 65},
            {**good, "timeout": 0},
            {**good, "timeout": True},
            {"node": "other", "op": "claimed", "key": 7, "source": "nowhere"},
            {"node": "other", "op": "done", "key": 7, "verdict": "maybe",
             "reason": "", "source": None},
            {"node": "other", "op": "done", "key": 7, "verdict": "accepted",
             "reason": "x" * 501, "source": None},
        ]  # fmt: skip
        with capturedLogs() as events:
            for notice in bad:
                self.reached.relay.deliver(
                    sealed(notice if isinstance(notice, str) else json.dumps(notice))
                )
        self.assertEqual(
            len([e for e in events if e["log_level"] == LogLevel.warn]), len(bad)
        )
        self.assertFalse(self.reached.rendezvous.expects(DEVICE))
        self.reached.relay.deliver(sealed(json.dumps(good)))
        self.assertTrue(self.reached.rendezvous.expects(DEVICE))

    def authenticator(self, fail=False):
        """
        @return: an L{Authenticator} on the first process, whose hellos
            go to C{self.hellos} (or fail, if C{fail}).
        """
        self.hellos = []

        def send_hello(user, target):
            if fail:
                raise OSError("network unreachable")
            self.hellos.append(user)

        hello = type("Hello", (), {"send_hello": staticmethod(send_hello)})
        accounts = type("Accounts", (), {"hash_for": staticmethod(lambda user: "$6$x")})
        return Authenticator(self.asked.rendezvous, hello, accounts)

    def test_hello_after_heard(self):
        """
        The hello goes once every other process heard of the request, so
        the device's connection finds it mirrored wherever it goes.
        """
        Deferred.fromCoroutine(
            self.authenticator().authenticate("alice", parse_targets(f"{DEVICE}:2020"))
        )
        self.assertEqual(self.hellos, ["alice"])
        self.assertTrue(self.reached.rendezvous.expects(DEVICE))

    def test_hello_waits(self):
        """
        While a process has not answered that it heard of the request,
        the hello waits, at most L{ANNOUNCE_WAIT} seconds.
        """
        self.channel.relays.remove(self.reached.relay)
        Deferred.fromCoroutine(
            self.authenticator().authenticate("alice", parse_targets(f"{DEVICE}:2020"))
        )
        self.assertEqual(self.hellos, [])
        self.asked.clock.advance(ANNOUNCE_WAIT)
        self.assertEqual(self.hellos, ["alice"])

    def test_gone_not_waited_for(self):
        """
        A process not heard from for three times L{HERE_EVERY} seconds is
        taken for gone: the hello does not wait for it.
        """
        self.channel.relays.remove(self.reached.relay)
        self.asked.clock.advance(3 * HERE_EVERY + 1)
        Deferred.fromCoroutine(
            self.authenticator().authenticate("alice", parse_targets(f"{DEVICE}:2020"))
        )
        self.assertEqual(self.hellos, ["alice"])

    def test_hello_fails_later(self):
        """
        A hello that cannot be sent once announced ends the request as an
        error, which is logged; it is not raised to the caller, who has
        its L{Deferred} already.
        """
        outcomes = []
        with capturedLogs() as events:
            Deferred.fromCoroutine(
                self.authenticator(fail=True).authenticate(
                    "alice", parse_targets(f"{DEVICE}:2020")
                )
            ).addCallback(outcomes.append)
        self.assertEqual(
            [(o.verdict, o.reason) for o in outcomes],
            [(Verdict.ERROR, "the hello could not be sent")],
        )
        self.assertIn(
            "network unreachable",
            [e.get("error") for e in events if e["log_level"] == LogLevel.warn],
        )
        self.assertFalse(self.reached.rendezvous.expects(DEVICE))

    def test_only_shared_stores(self):
        """
        A store no other process can share has no relay.
        """
        self.assertIsNone(relay_for(reactor, MemoryStore()))

    def test_only_sealed_notices(self):
        """
        A server without a notice key (no master key) shares nothing:
        its notices could not be told from anyone's.
        """
        self.assertIsNone(relay_for(reactor, ChannelSession(Channel())))
        self.assertIsNotNone(
            relay_for(reactor, ChannelSession(Channel()), key=NOTICE_KEY)
        )


class _Heard:
    """
    Stands for a rendezvous, firing C{opened} with the first request it
    is told of (the only one).
    """

    def __init__(self):
        self.opened = Deferred()

    def remote_opened(self, *arguments):
        self.opened.callback(arguments)

    def drop_mirrors(self):
        """
        The relay stopped: nothing to drop.
        """


class PostgresRelayTests(TestCase):
    """
    Notices and claims between two processes' stores on one PostgreSQL
    database.
    """

    def setUp(self):
        location = new_location(self)
        self.stores = [PostgresStore.open(location) for _ in range(2)]
        for store in self.stores:
            self.addCleanup(store.close)

    async def test_notice_heard(self):
        """
        A request opened through one process's relay is heard by the
        other's.
        """
        heard = _Heard()
        listening = Relay(reactor, self.stores[1], key=NOTICE_KEY)
        listening.serve(heard)
        listening.startService()
        self.addCleanup(listening.stopService)
        await listening.listening
        sending = Relay(reactor, self.stores[0], key=NOTICE_KEY)
        rendezvous = Rendezvous(task.Clock(), peers=sending)
        sending.serve(rendezvous)
        request = rendezvous.open("alice", [DEVICE], timeout=5)
        key, user, networks, timeout = await heard.opened.addTimeout(10, reactor)
        self.assertEqual(
            (key, user, [str(n) for n in networks], timeout),
            (request.key, "alice", [f"{DEVICE}/32"], 5),
        )

    def test_claims(self):
        """
        A claim one process holds, the other cannot take until it is let
        go.
        """
        first, second = self.stores
        self.assertTrue(first.take_claim(12345))
        self.assertFalse(second.take_claim(12345))
        first.release_claim(12345)
        self.assertTrue(second.take_claim(12345))
