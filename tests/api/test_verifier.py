"""
Which device a verification asks, how, and how its answer reads
(L{suto_server.api.verifier}), with a memory store, a recording live
connection, a recording hello sender and a L{task.Clock}.
"""

import errno

from twisted.internet import defer, task
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.api.verifier import (
    DEFAULT_DEADLINE,
    Answer,
    clamp_deadline,
)
from suto_server.cluster.verify_relay import Answered
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.registry import LiveSessions, TooManyChallenges
from suto_server.rules.rendezvous import Rendezvous, Verdict
from suto_server.store.calls import LocalCalls
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import BlacklistEntry
from tests.support.coroutines import result_of
from tests.support.hello import RecordingHello
from tests.support.live import RecordingConnection
from tests.support.masterkey import new_master_key
from tests.support.rotation import NOW, SOURCE, enroll
from tests.support.sources import DictSource
from tests.support.verifier import HASH, NONCE, Verifying, fixed_bytes, verifier_for


class VerifierTests(Verifying, SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.hashes = {"bob": HASH}
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.hello = RecordingHello()
        self.live = LiveSessions()
        self.verifier = verifier_for(
            self.clock,
            LocalCalls(self.store),
            self.live,
            Authenticator(self.rendezvous, self.hello, DictSource(self.hashes)),
            random_bytes=fixed_bytes,
        )
        enroll(self.store, new_master_key(self), "alice")
        self.connection = RecordingConnection()
        self.live.attach("alice", SOURCE, NOW, self.connection)

    def test_live_proof(self):
        """
        An enrolled profile's live connection is challenged with a fresh
        nonce; a matching proof is C{accepted}, a wrong one C{rejected},
        a connection ending first C{device_offline}; no hello is sent.
        """
        for proven, answer in [
            (True, Answer.ACCEPTED),
            (False, Answer.REJECTED),
            (None, Answer.DEVICE_OFFLINE),
        ]:
            results = self.verify("alice")
            nonce, d = self.connection.challenges.pop()
            self.assertEqual((nonce, results), (NONCE, []))
            d.callback(proven)
            [result] = results
            self.assertEqual((result.answer, result.device), (answer, SOURCE))
        self.assertEqual(self.hello.sent, [])

    def test_deadline(self):
        """
        A device that does not answer within the deadline is
        C{device_offline} then, and its challenge is given up.
        """
        results = self.verify("alice", deadline=2)
        self.clock.advance(1.9)
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.assertEqual(results[0].answer, Answer.DEVICE_OFFLINE)
        self.assertIn("deadline", results[0].reason)
        self.assertEqual(self.connection.cancelled, [NONCE])

    def test_at_once(self):
        """
        A blacklisted profile, one marked offline, and one without a live
        connection are answered at once, and nothing is asked of any
        device.
        """
        self.live.detach("alice", self.connection)
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.DEVICE_OFFLINE)
        self.assertIn("no live connection", result.reason)
        self.live.attach("alice", SOURCE, NOW, self.connection)
        self.store.mark_offline(["alice"], NOW)
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.DEVICE_OFFLINE)
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "reconnection failed", SOURCE, "blacklisted")
        )
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.BLACKLISTED)
        self.assertEqual((self.connection.challenges, self.hello.sent), ([], []))

    def test_configured_targets(self):
        """
        An account without a profile is asked with the classic challenge
        at the targets the operator configured for it; its endings read
        as verdicts; one with neither profile nor target is C{no_device}.
        """
        for verdict, answer in [
            (Verdict.ACCEPTED, Answer.ACCEPTED),
            (Verdict.REJECTED, Answer.REJECTED),
            (Verdict.CANCELLED, Answer.REJECTED),
            (Verdict.TLS_TRUST_FAILURE, Answer.ERROR),
        ]:
            results = self.verify("bob")
            self.rendezvous.finish(result_of(self, self.rendezvous.claim("192.0.2.7")), verdict)
            self.assertEqual(results[0].answer, answer)
        self.assertEqual({t.address for _, t in self.hello.sent}, {"192.0.2.7"})
        [result] = self.verify("carol")
        self.assertEqual(result.answer, Answer.NO_DEVICE)

    def test_classic_deadline(self):
        """
        No device connecting back within the deadline is
        C{device_offline}; one that connected but has not finished is
        C{error} then, and its late verdict changes nothing.
        """
        results = self.verify("bob", deadline=3)
        self.clock.advance(3)
        self.assertEqual(results[0].answer, Answer.DEVICE_OFFLINE)
        results = self.verify("bob", deadline=2)
        request = result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.clock.advance(2)
        self.assertEqual(results[0].answer, Answer.ERROR)
        self.rendezvous.finish(request, Verdict.ACCEPTED)
        self.assertEqual(len(results), 1)

    def test_classic_cannot_start(self):
        """
        No password to challenge with, another request waiting for the
        same device, and a hello that cannot be sent are C{error} at
        once.
        """
        self.verify("bob")
        [result] = self.verify("bob")
        self.assertIn("another authentication", result.reason)
        self.rendezvous.finish(result_of(self, self.rendezvous.claim("192.0.2.7")), Verdict.ERROR)
        self.hello.error = OSError(errno.ENETUNREACH, "Network is unreachable")
        [result] = self.verify("bob")
        self.assertIn("Network is unreachable", result.reason)
        del self.hashes["bob"]
        [result] = self.verify("bob")
        self.assertIn("no password", result.reason)
        self.assertEqual(result.answer, Answer.ERROR)

    def test_store_failure(self):
        """
        A store that cannot be read is C{error}, logged in one warning
        line, never a failure of the Deferred.
        """

        def broken(user):
            raise StoreError("disk gone")

        self.store.rotation_start = broken
        with capturedLogs() as events:
            [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.ERROR)
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual((warning["user"], warning["error"]), ("alice", "disk gone"))

    def test_too_many_challenges(self):
        """
        A live connection with too many challenges waiting is C{error}
        ("try again"), not C{device_offline}: the device is there, and an
        auditor must not read it as gone; nothing is logged as a failure.
        """
        results = self.verify("alice")
        self.connection.challenges.pop()[1].errback(TooManyChallenges())
        self.assertEqual(results[0].answer, Answer.ERROR)
        self.assertIn("try again", results[0].reason)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_challenge_failure(self):
        """
        A challenge that fails unexpectedly is C{error}, and logged.
        """
        results = self.verify("alice")
        self.connection.challenges.pop()[1].errback(RuntimeError("bug"))
        self.assertEqual(results[0].answer, Answer.ERROR)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class _Elsewhere:
    """
    The other server processes, as a verify relay asks them: the test
    answers each ask.
    """

    def __init__(self, others=True):
        self.others = others
        self.asked = []
        self.cancelled = []

    def has_others(self):
        return self.others

    def ask(self, user, timeout):
        d = defer.Deferred(lambda d: self.cancelled.append(user))
        self.asked.append((user, timeout, d))
        return d


class ElsewhereTests(SynchronousTestCase):
    """
    A profile whose live connection is not on this process is verified
    by the other processes on the store, if any.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        enroll(self.store, new_master_key(self), "alice")
        self.elsewhere = _Elsewhere()
        self.verifier = verifier_for(
            self.clock,
            LocalCalls(self.store),
            LiveSessions(),
            Authenticator(Rendezvous(self.clock, timeout=5), RecordingHello(), DictSource({})),
            remote=self.elsewhere,
        )

    def verify(self, deadline=10):
        results = []
        self.verifier.verify("alice", deadline).addCallback(results.append)
        return results

    def test_outcomes(self):
        """
        Each outcome another process announces reads as the same proof on
        a live connection here would; nobody holding the connection is
        C{device_offline}.
        """
        for answered, answer, device in [
            (Answered("matched", SOURCE), Answer.ACCEPTED, SOURCE),
            (Answered("mismatched", SOURCE), Answer.REJECTED, SOURCE),
            (Answered("no_answer", SOURCE), Answer.DEVICE_OFFLINE, SOURCE),
            (Answered("busy", SOURCE), Answer.ERROR, SOURCE),
            (None, Answer.DEVICE_OFFLINE, None),
        ]:
            results = self.verify(deadline=7)
            user, timeout, d = self.elsewhere.asked.pop()
            self.assertEqual((user, timeout, results), ("alice", 7, []))
            d.callback(answered)
            self.assertEqual((results[0].answer, results[0].device), (answer, device))

    def test_deadline(self):
        """
        No outcome within the deadline is C{device_offline}, and the ask is
        given up.
        """
        results = self.verify(deadline=2)
        self.clock.advance(2)
        self.assertEqual(results[0].answer, Answer.DEVICE_OFFLINE)
        self.assertEqual(self.elsewhere.cancelled, ["alice"])

    def test_alone(self):
        """
        With no other process heard from, nobody is asked.
        """
        self.elsewhere.others = False
        [result] = self.verify()
        self.assertEqual(result.answer, Answer.DEVICE_OFFLINE)
        self.assertEqual(self.elsewhere.asked, [])


class ClampTests(SynchronousTestCase):
    def test_clamp(self):
        """
        No deadline is the default; others are held within the bounds.
        """
        self.assertEqual(clamp_deadline(None, 1, 30), DEFAULT_DEADLINE)
        self.assertEqual(clamp_deadline(0.01, 1, 30), 1)
        self.assertEqual(clamp_deadline(500, 1, 30), 30)
        self.assertEqual(clamp_deadline(7.5, 1, 30), 7.5)
