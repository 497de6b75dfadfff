"""
Which device a verification asks, and how its answer reads
(L{suto_server.api.verifier}), with a memory store, a recording hello
sender and a L{task.Clock}.
"""

import errno
import ipaddress

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.api.verifier import (
    DEFAULT_DEADLINE,
    Answer,
    Verifier,
    clamp_deadline,
)
from suto_server.locations import Location, Locations
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous, Verdict
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import BlacklistEntry
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.rotation import NOW, SOURCE, enroll
from tests.support.sources import DictSource

HASH = "$6$abcdefghijklmnop$" + "x" * 86
TARGETS = Locations({"bob": Location((ipaddress.ip_network("192.0.2.7/32"),), "bob")})


class VerifierTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.hashes = {"alice": HASH, "bob": HASH}
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.hello = RecordingHello()
        self.live = LiveSessions()
        self.verifier = Verifier(
            self.clock,
            self.store,
            self.live,
            Authenticator(self.rendezvous, self.hello, DictSource(self.hashes)),
            TARGETS,
            2020,
        )
        enroll(self.store, new_master_key(self), "alice")

    def verify(self, user, deadline=10):
        results = []
        self.verifier.verify(user, deadline).addCallback(results.append)
        return results

    def device_answers(self, address, verdict, reason=""):
        request = self.rendezvous.claim(address)
        self.assertIsNotNone(request)
        self.rendezvous.finish(request, verdict, reason)

    def test_profile_accepted(self):
        """
        An enrolled profile's device is asked at the profile's address
        with a hello there only; its accepted challenge is C{accepted}.
        """
        results = self.verify("alice")
        self.assertEqual(
            [(user, target.address) for user, target in self.hello.sent],
            [("alice", SOURCE)],
        )
        self.assertEqual(results, [])
        self.device_answers(SOURCE, Verdict.ACCEPTED, "the device proved it")
        [result] = results
        self.assertEqual(
            (result.answer, result.reason, result.device),
            (Answer.ACCEPTED, "the device proved it", SOURCE),
        )

    def test_live_address_wins(self):
        """
        While the profile has a live rotation connection, its address is
        where the device is asked.
        """
        self.live.attach("alice", "127.0.0.77", NOW, object())
        self.verify("alice")
        self.assertEqual([t.address for _, t in self.hello.sent], ["127.0.0.77"])

    def test_endings(self):
        """
        A refused or declined challenge is C{rejected}; no device
        connecting within the deadline is C{device_offline}; a failed TLS
        handshake is C{error}.
        """
        for verdict, answer in [
            (Verdict.REJECTED, Answer.REJECTED),
            (Verdict.CANCELLED, Answer.REJECTED),
            (Verdict.TLS_TRUST_FAILURE, Answer.ERROR),
        ]:
            results = self.verify("alice")
            self.device_answers(SOURCE, verdict)
            self.assertEqual(results[0].answer, answer)
        results = self.verify("alice", deadline=3)
        self.clock.advance(3)
        self.assertEqual(results[0].answer, Answer.DEVICE_OFFLINE)
        self.assertEqual(self.rendezvous.pending, ())

    def test_deadline_bounds_the_exchange(self):
        """
        A device that connected but has not finished when the deadline
        passes is answered C{error} then; its late verdict changes
        nothing.
        """
        results = self.verify("alice", deadline=2)
        request = self.rendezvous.claim(SOURCE)
        self.clock.advance(2)
        self.assertEqual(results[0].answer, Answer.ERROR)
        self.rendezvous.finish(request, Verdict.ACCEPTED)
        self.assertEqual(len(results), 1)

    def test_blacklisted_and_offline_at_once(self):
        """
        A blacklisted profile, and one marked offline, are answered at
        once, and no hello goes out.
        """
        self.store.mark_offline(["alice"], NOW)
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.DEVICE_OFFLINE)
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "reconnection failed", SOURCE, "blacklisted")
        )
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.BLACKLISTED)
        self.assertEqual(self.hello.sent, [])

    def test_configured_targets(self):
        """
        An account without a profile is asked at the targets the operator
        configured for it; one with neither is C{no_device}.
        """
        results = self.verify("bob")
        self.assertEqual([t.address for _, t in self.hello.sent], ["192.0.2.7"])
        self.device_answers("192.0.2.7", Verdict.ACCEPTED)
        self.assertEqual(results[0].answer, Answer.ACCEPTED)
        [result] = self.verify("carol")
        self.assertEqual(result.answer, Answer.NO_DEVICE)

    def test_no_password(self):
        """
        A profile whose user has no password on the server cannot be
        challenged: C{error}, without a hello.
        """
        del self.hashes["alice"]
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.ERROR)
        self.assertEqual(self.hello.sent, [])

    def test_conflict_and_hello_failure(self):
        """
        A verification while another waits for the same device, and one
        whose hello cannot be sent, are answered C{error} at once.
        """
        self.verify("alice")
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.ERROR)
        self.assertIn("another authentication", result.reason)
        self.hello.error = OSError(errno.ENETUNREACH, "Network is unreachable")
        [result] = self.verify("bob")
        self.assertEqual(result.answer, Answer.ERROR)
        self.assertIn("Network is unreachable", result.reason)

    def test_store_failure(self):
        """
        A store that cannot be read is C{error}, logged, never a failure
        of the Deferred.
        """

        def broken(user):
            raise StoreError("disk gone")

        self.store.get_profile = broken
        [result] = self.verify("alice")
        self.assertEqual(result.answer, Answer.ERROR)
        self.assertEqual(len(self.flushLoggedErrors(StoreError)), 1)


class ClampTests(SynchronousTestCase):
    def test_clamp(self):
        """
        No deadline is the default; others are held within the bounds.
        """
        self.assertEqual(clamp_deadline(None, 1, 30), DEFAULT_DEADLINE)
        self.assertEqual(clamp_deadline(0.01, 1, 30), 1)
        self.assertEqual(clamp_deadline(500, 1, 30), 30)
        self.assertEqual(clamp_deadline(7.5, 1, 30), 7.5)
