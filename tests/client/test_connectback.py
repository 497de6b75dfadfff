"""
Tests for L{suto_client.connectback}, the retries of a connect-back the
server turned away, and for L{suto_client.answer}, which answers a hello
with them: a fake attempt on a L{Clock}, then a memory reactor whose
connections are refused a few times before one is accepted.
"""

import os
import random

from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client.answer import HelloAnswerer
from suto_client.classic_machine import Outcome
from suto_client.connectback import (
    LONGEST_RETRY,
    MOST_ATTEMPTS,
    connect_back,
)
from suto_client.protocol import AuthResult
from suto_client.state import Account, ClientState
from suto_client.statefile import save_state
from suto_server.core import wire

TURNED_AWAY = AuthResult(
    Outcome.ERROR, "the connection was lost", turned_away=True
)
ACCEPTED = AuthResult(Outcome.ACCEPTED)


class _Bounds(random.Random):
    """
    Draws the upper bound of every range, or the lower one.
    """

    def __init__(self, upper=True):
        super().__init__(0)
        self._upper = upper

    def uniform(self, a, b):
        return b if self._upper else a


class ConnectBackTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.results = []
        self.started = []

    def answer_with(self, *results, within=10.0, rng=None):
        """
        Answer with attempts that end, in turn, with C{results}; record
        when each started.
        """
        queue = list(results)

        def attempt():
            self.started.append(self.clock.seconds())
            result = queue.pop(0)
            if isinstance(result, Deferred):
                return result
            return succeed(result)

        self.answering = connect_back(
            attempt, self.clock, within, rng or _Bounds()
        )
        self.answering.addCallback(self.results.append)

    def test_turned_away_then_accepted(self):
        """
        A connect-back the server turned away three times is made again
        after waits that double from a quarter second; the fourth
        attempt's verdict is the answer.
        """
        self.answer_with(TURNED_AWAY, TURNED_AWAY, TURNED_AWAY, ACCEPTED)
        self.clock.pump([0.25, 0.5, 1.0])
        self.assertEqual(self.started, [0, 0.25, 0.75, 1.75])
        self.assertEqual(self.results, [ACCEPTED])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_jitter(self):
        """
        Each wait is drawn from the upper half of its range.
        """
        self.answer_with(TURNED_AWAY, TURNED_AWAY, ACCEPTED, rng=_Bounds(upper=False))
        self.clock.pump([0.125, 0.25])
        self.assertEqual(self.started, [0, 0.125, 0.375])

    def test_a_handful_of_attempts(self):
        """
        However long the time left, a server that keeps turning the agent
        away gets a handful of attempts, the waits capped, and the last
        result is the answer.
        """
        self.answer_with(*[TURNED_AWAY] * 10, within=1000.0)
        self.clock.pump([LONGEST_RETRY] * 10)
        self.assertEqual(len(self.started), MOST_ATTEMPTS)
        waits = [b - a for a, b in zip(self.started, self.started[1:])]
        self.assertEqual(max(waits), LONGEST_RETRY)
        self.assertEqual(self.results, [TURNED_AWAY])

    def test_deadline(self):
        """
        No attempt starts after the time the agent gives itself to
        answer a hello.
        """
        self.answer_with(*[TURNED_AWAY] * 10, within=1.0)
        self.clock.pump([0.25] * 10)
        self.assertEqual(self.started, [0, 0.25, 0.75])
        self.assertEqual(self.results, [TURNED_AWAY])

    def test_no_retry_after_verdict_or_trust_failure(self):
        """
        A verdict, a TLS trust failure (a pin mismatch is not a
        turn-away) and a timeout end the answer at once.
        """
        for result in (
            AuthResult(Outcome.REJECTED),
            AuthResult(Outcome.ERROR, "TLS: pin mismatch"),
            AuthResult(Outcome.TIMEOUT, "timed out"),
        ):
            self.started = []
            self.results = []
            start = self.clock.seconds()
            self.answer_with(result, ACCEPTED)
            self.clock.advance(LONGEST_RETRY)
            self.assertEqual((self.started, self.results), ([start], [result]))

    def test_cancel_while_waiting(self):
        """
        Cancelling during a wait ends the answer as abandoned, with no
        retry left behind.
        """
        self.answer_with(TURNED_AWAY, ACCEPTED)
        self.answering.cancel()
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "the exchange was abandoned")],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.started), 1)

    def test_cancel_while_running(self):
        """
        Cancelling while an attempt runs abandons it, and its result is
        the answer, even a turn-away.
        """
        running = Deferred(lambda d: d.callback(TURNED_AWAY))
        self.answer_with(running, ACCEPTED)
        self.answering.cancel()
        self.assertEqual(self.results, [TURNED_AWAY])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_crash(self):
        """
        An attempt that fails fails the answer.
        """
        self.answer_with(fail(ZeroDivisionError()))
        self.failureResultOf(self.answering, ZeroDivisionError)


class AnswerRetryTests(SynchronousTestCase):
    """
    A hello answered through a memory reactor whose connections the
    server refuses, then accepts.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.account = Account(
            user="alice",
            server_host="192.0.2.10",
            legacy=True,
            password="hunter2-secret",
        )
        path = os.path.join(self.mktemp(), "client.json")
        save_state(path, ClientState({"alice": self.account}))
        self.answerer = HelloAnswerer(
            self.reactor, path, timeout=10.0, random=_Bounds()
        )
        self.results = []
        self.answerer.add_observer(
            lambda user, result: self.results.append(result)
        )
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def refuse(self, reason):
        _, _, factory, _, _ = self.reactor.tcpClients[-1]
        factory.clientConnectionFailed(
            self.reactor.connectors[-1], Failure(reason)
        )

    def accept(self):
        _, _, factory, _, _ = self.reactor.tcpClients[-1]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_refused_then_accepted(self):
        """
        A connect-back refused twice, once at the TCP level and once by a
        server that closed it before saying anything, is made a third
        time; that one runs the exchange to its verdict, and then no more
        connections are made.
        """
        self.answerer.answer(self.account, wire.Hello("alice", "desk"))
        self.refuse(internet_error.ConnectionRefusedError())
        self.reactor.advance(0.25)
        protocol, _ = self.accept()
        protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.reactor.advance(0.5)
        protocol, transport = self.accept()
        self.assertEqual(transport.value(), b"SUTO_C_GET_SALTA")
        protocol.dataReceived(b"SUTO_AUTH_0")
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.assertEqual([r.outcome for r in self.results], [Outcome.REJECTED])
        lines = [formatEvent(event) for event in self.observer]
        self.assertEqual(len(lines), 3)
        self.assertIn("error: connection refused", lines[0])
        self.assertIn("error: the server closed the connection", lines[1])
        self.assertIn("rejected", lines[2])

    def test_timeout_not_retried(self):
        """
        A connection attempt that timed out took the whole timeout: it is
        not made again.
        """
        self.answerer.answer(self.account, wire.Hello("alice", "desk"))
        self.refuse(internet_error.TimeoutError())
        self.reactor.advance(10)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual([r.outcome for r in self.results], [Outcome.TIMEOUT])
