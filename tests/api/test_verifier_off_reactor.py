"""
The verification API's decision over a store that answers later, as
PostgreSQL does on the database thread: the profile, its standing and the
account's hash are awaited, the caller's deadline bounds the store's
answer too, and a store that cannot answer is the caller's C{error}.
"""


from twisted.internet import task
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.api.verifier import Answer
from suto_server.cred.checkers import ChainedHashSource
from suto_server.rules.authenticator import Authenticator
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from tests.support.heldcalls import HeldCalls
from tests.support.hello import RecordingHello
from tests.support.live import RecordingConnection
from tests.support.masterkey import new_master_key
from tests.support.rotation import NOW, SOURCE, enroll
from tests.support.verifier import HASH, Verifying, fixed_bytes, verifier_for


class LaterStoreTests(Verifying, SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        store = MemoryStore()
        enroll(store, new_master_key(self), "alice")
        store.add_user("bob", HASH, NOW)
        self.calls = HeldCalls(store)
        self.hello = RecordingHello()
        live = LiveSessions()
        self.connection = RecordingConnection()
        live.attach("alice", SOURCE, NOW, self.connection)
        self.verifier = verifier_for(
            self.clock,
            self.calls,
            live,
            Authenticator(
                Rendezvous(self.clock, timeout=5),
                self.hello,
                ChainedHashSource([self.calls]),
            ),
            random_bytes=fixed_bytes,
        )

    def test_reads_awaited(self):
        """
        The live connection is challenged once the store gave the profile
        and its standing, and the proof is answered.
        """
        results = self.verify("alice")
        self.assertEqual(
            (self.calls.names, self.connection.challenges), (["rotation_start"], [])
        )
        self.assertEqual(self.calls.answer_all(), ["rotation_start"])
        [(nonce, proven)] = self.connection.challenges
        proven.callback(True)
        self.assertEqual([r.answer for r in results], [Answer.ACCEPTED])

    def test_proofs_unreadable(self):
        """
        A live connection whose challenge could not be prepared, as the
        store could not give the proofs it expects, is the caller's
        C{error}, not C{device_offline}: the device was not asked.
        """
        results = self.verify("alice")
        self.calls.answer_all()
        [(nonce, proven)] = self.connection.challenges
        proven.errback(StoreError("the database went away"))
        self.assertEqual(
            [(r.answer, r.reason) for r in results],
            [(Answer.ERROR, "the store could not be read")],
        )

    def test_fault_is_error(self):
        """
        A read failing with what no rule expects (a fault, not the store's
        error) is the caller's C{error}, logged with its traceback: the
        verification's answer never fails, so the API always writes it
        and lets go of the caller's place.
        """
        results = self.verify("alice")
        self.calls.fail(RuntimeError("a fault"))
        self.assertEqual(
            [(r.answer, r.reason) for r in results],
            [(Answer.ERROR, "internal error")],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_deadline_covers_store(self):
        """
        A store silent until the deadline is the caller's C{error} then,
        in a warning; what it says later changes nothing.
        """
        results = self.verify("alice", deadline=2)
        with capturedLogs() as events:
            self.clock.advance(2)
        self.assertEqual(
            [(r.answer, r.reason) for r in results],
            [(Answer.ERROR, "the store could not be read")],
        )
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])
        self.calls.answer_all()
        self.assertEqual((len(results), self.connection.challenges), (1, []))

    def test_deadline_left(self):
        """
        The device has what is left of the deadline once the store
        answered.
        """
        results = self.verify("alice", deadline=10)
        self.clock.advance(3)
        self.calls.answer_all()
        self.clock.advance(6.9)
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.assertEqual([r.answer for r in results], [Answer.DEVICE_OFFLINE])

    def test_account_unreadable(self):
        """
        An account without a profile whose hash the store cannot give is
        the caller's C{error}, in a warning, and no hello goes.
        """
        results = self.verify("bob")
        self.calls.answer()
        with capturedLogs() as events:
            self.calls.fail(StoreError("the database went away"))
        self.assertEqual(
            [(r.answer, r.reason) for r in results],
            [(Answer.ERROR, "the store could not be read")],
        )
        self.assertEqual(
            [e["user"] for e in events if e["log_level"] == LogLevel.warn], ["bob"]
        )
        self.assertEqual(self.hello.sent, [])

    def test_classic_asked(self):
        """
        An account the store has a hash for is asked with the classic
        challenge once the hash is read.
        """
        self.verify("bob")
        self.assertEqual(self.calls.answer_all(), ["rotation_start", "hash_for"])
        self.assertEqual([user for user, _ in self.hello.sent], ["bob"])
