"""
The enrollment over a store that answers later, as PostgreSQL does on
the database thread: every read and write of the enrollment is awaited,
the reactor's turn ends before the store answers, the answer once it
comes is the one an at-once store gives, and a store that cannot answer
gets the device C{SUTO_ERROR_BUSY} with nothing stored.  The same
enrollment then runs on a real SQLite store through the database thread.
"""

from ipaddress import ip_network

from twisted.cred.portal import Portal
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.core import schemes, timing, wire
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.locations import Location
from suto_server.phases.enrollment import EnrollmentRules
from suto_server.rules.enrollment import Enrollment, EnrollmentRefused, WindowHashSource
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.calls import ThreadedCalls
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.sqlite import SQLiteStore
from tests.support.coroutines import result_of
from tests.support.enrollment import PASSWORD, device_payload
from tests.support.factories import EXCHANGE_TIMEOUT, RSALT, connected, framed_factory
from tests.support.heldcalls import HeldCalls
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool

NOW = 1_700_000_000
INSIDE = "127.0.0.5"
LAB = Location((ip_network("127.0.0.0/24"),), "lab")
FRAMED = wire.Framing.FRAMED


def frame(*messages) -> bytes:
    return b"".join(wire.encode(message, FRAMED) for message in messages)


VERSION = frame(wire.Version(wire.PROTOCOL_VERSION))
ENROLL = frame(wire.Enroll("alice"))


class EnrollmentListener:
    """
    A framed listener that enrolls over C{calls}, the store's calls on
    C{store}, with a window for C{alice} at L{LAB}.
    """

    def listen(self, store, calls):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = store
        pool = ImmediatePool()
        master_key = new_master_key(self)
        self.enrollment = Enrollment(store, master_key, pool, calls=calls)
        portal = Portal(
            SutoRealm(), [SaltedChallengeChecker(WindowHashSource(calls), pool)]
        )
        self.factory = framed_factory(
            self.clock,
            pool,
            Rendezvous(self.clock),
            enrollment=EnrollmentRules(self.enrollment, portal),
        )
        # IT opens the window before the device's steps are under test:
        # straight on the store, whatever its calls do.
        self.opener = Enrollment(store, master_key, pool)
        result_of(
            self, self.opener.open_window("alice", LAB, 60, NOW, password=PASSWORD)
        )
        self.salt = schemes.salt_of(store.get_window("alice").otp_hash)

    def connect(self):
        return connected(self.factory, INSIDE)

    def hash_line(self, password=PASSWORD):
        return frame(wire.CFHash(schemes.client_response(password, self.salt, RSALT)))

    def data_line(self):
        sealed, _ = device_payload(PASSWORD, self.salt, "alice")
        return frame(wire.EnrollData(sealed))

    def attempts(self):
        return self.store.get_window("alice").attempts


class HeldEnrollment(EnrollmentListener):
    """
    The enrollment over L{HeldCalls}: each store call waits for the test.
    """

    def setUp(self):
        self.calls = HeldCalls(MemoryStore())
        self.listen(self.calls._store, self.calls)

    def admitted(self):
        """
        A device whose password was checked: its data is next.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.calls.answer()
        protocol.dataReceived(self.hash_line())
        self.calls.answer()
        return protocol, transport

    def committing(self):
        """
        A device whose data came and whose window was read again: its
        commit waits for the store.
        """
        protocol, transport = self.admitted()
        transport.clear()
        protocol.dataReceived(self.data_line())
        self.assertEqual(self.calls.answer(), "get_window")
        self.assertEqual(self.calls.names, ["complete_enrollment"])
        return protocol, transport


class LaterStoreTests(HeldEnrollment, SynchronousTestCase):
    """
    Each step of the enrollment waits for the store's answer.
    """

    def test_enrolls(self):
        """
        Each step's reply waits for the store: the salts for the window's
        read, C{SUTO_AUTH_1} for the hash's, C{SUTO_ENROLLED_} for the
        window's read again and the profile's commit; then the profile is
        stored and the window gone.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(
            (transport.value(), self.calls.names), (VERSION, ["get_window"])
        )
        self.calls.answer()
        self.assertEqual(
            transport.value(), VERSION + frame(wire.SaltA(self.salt, RSALT))
        )
        transport.clear()
        protocol.dataReceived(self.hash_line())
        self.assertEqual((transport.value(), self.calls.names), (b"", ["get_window"]))
        self.calls.answer()
        self.assertEqual(transport.value(), frame(wire.Auth(True)))
        transport.clear()
        protocol.dataReceived(self.data_line())
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.calls.answer_all(), ["get_window", "complete_enrollment"])
        self.assertTrue(transport.value().startswith(b"SUTO_ENROLLED_"))
        self.assertTrue(transport.disconnecting)
        self.assertIsNotNone(self.store.get_profile("alice"))
        self.assertIsNone(self.store.get_window("alice"))

    def test_reopened_while_committing(self):
        """
        IT reopening the window with a new password (revoking the one it
        gave out) while the enrollment's commit waits for the store wins:
        the commit of the device that proved the old password finds no
        window of its password, stores nothing, and the device is told
        the enrollment failed; the new window stays open.
        """
        _, transport = self.committing()
        result_of(
            self,
            self.opener.open_window(
                "alice", LAB, 60, NOW, password="revoked-and-replaced"
            ),
        )
        reopened = self.store.get_window("alice")
        self.assertEqual(self.calls.answer_all(), ["complete_enrollment"])
        self.assertFalse(transport.value().startswith(b"SUTO_ENROLLED_"))
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(self.store.get_window("alice"), reopened)

    def test_wrong_password_counted(self):
        """
        A wrong response gets C{SUTO_AUTH_0} once the hash is read; the
        attempt is counted by the store's counter when it answers.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.calls.answer()
        transport.clear()
        protocol.dataReceived(self.hash_line("wrong"))
        self.calls.answer()
        self.assertEqual(transport.value(), frame(wire.Auth(False)))
        self.assertEqual(self.calls.names, ["get_window"])
        self.assertEqual(self.attempts(), 0)
        self.assertEqual(
            self.calls.answer_all(), ["get_window", "record_failed_attempt"]
        )
        self.assertEqual(self.attempts(), 1)

    def test_bound_across_processes(self):
        """
        Two processes counting failed attempts on one window at once,
        each reading the window before either counts, close it at the
        window's last attempt exactly: the counter is the store's.
        """
        other = Enrollment(
            self.store, new_master_key(self), ImmediatePool(), calls=self.calls
        )
        failing = []
        for attempt in range(5):
            rules = (self.enrollment, other)[attempt % 2]
            failing.append(
                Deferred.fromCoroutine(
                    rules.fail("alice", INSIDE, "wrong_password", NOW)
                )
            )
        self.calls.answer_all()
        for d in failing:
            self.failureResultOf(d, EnrollmentRefused)
        self.assertIsNone(self.store.get_window("alice"))
        exhausted = [
            e
            for e in self.store.audit_events()
            if e.event == "enrollment_window_exhausted"
        ]
        self.assertEqual([e.reason for e in exhausted], ["5 failed attempts"])

    def test_held_request(self):
        """
        A message that arrives while the window is read is held, and the
        enrollment reads it once it starts, as it would have had the store
        answered at once; a second one breaks the lockstep.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL + self.hash_line())
        self.calls.answer()
        self.assertEqual(
            transport.value(), VERSION + frame(wire.SaltA(self.salt, RSALT))
        )
        self.assertEqual(self.calls.names, ["get_window"])
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL + self.hash_line() + self.hash_line())
        self.assertEqual(
            transport.value(), VERSION + frame(wire.Error(wire.ERROR_PIPELINED))
        )
        self.assertTrue(transport.disconnecting)

    def test_timeout_while_starting(self):
        """
        The exchange timeout runs while the window is read; a window that
        comes after it starts nothing.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.clock.advance(EXCHANGE_TIMEOUT)
        self.assertEqual(
            transport.value(), VERSION + frame(wire.Error(wire.ERROR_TIMEOUT))
        )
        transport.clear()
        self.calls.answer()
        self.assertEqual(transport.value(), b"")

    def test_lost_while_starting(self):
        """
        A connection gone while the window is read gets nothing when it
        comes, and no attempt is counted.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        protocol.connectionLost(None)
        transport.clear()
        self.calls.answer_all()
        self.assertEqual((transport.value(), self.attempts()), (b"", 0))


class StoreFailureTests(HeldEnrollment, SynchronousTestCase):
    """
    A store that cannot answer at any step of the enrollment: the device
    is told C{SUTO_ERROR_BUSY} (its password was never refused), nothing
    is stored, and one warning line says which user and what failed.
    """

    def fails(self, protocol, transport, data, answered=0):
        """
        Send C{data}, answer C{answered} calls, fail the next.

        @return: what the server wrote, and the warnings logged.
        """
        transport.clear()
        protocol.dataReceived(data)
        for _ in range(answered):
            self.calls.answer()
        with capturedLogs() as events:
            self.calls.fail(StoreError("the database went away"))
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        return transport.value(), warnings

    def assert_nothing_stored(self):
        self.assertEqual((self.attempts(), self.store.get_profile("alice")), (0, None))
        self.assertEqual(self.flushLoggedErrors(), [])

    def assert_busy(self, written, warnings, transport):
        self.assertEqual(written, frame(wire.Error(wire.ERROR_BUSY)))
        self.assertTrue(transport.disconnecting)
        [warning] = warnings
        self.assertEqual(
            (warning["user"], warning["error"]), ("alice", "the database went away")
        )
        self.assert_nothing_stored()

    def test_window_read(self):
        """
        The window's first read.
        """
        protocol, transport = self.connect()
        written, warnings = self.fails(protocol, transport, VERSION + ENROLL)
        self.assert_busy(written[len(VERSION) :], warnings, transport)

    def test_password_check(self):
        """
        The window's hash, read for the password check.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.calls.answer()
        written, warnings = self.fails(protocol, transport, self.hash_line())
        self.assert_busy(written, warnings, transport)

    def test_window_read_again(self):
        """
        The window's read when the data comes.
        """
        protocol, transport = self.admitted()
        written, warnings = self.fails(protocol, transport, self.data_line())
        self.assert_busy(written, warnings, transport)
        self.assertIsNotNone(self.store.get_window("alice"))

    def test_commit(self):
        """
        The profile's commit.
        """
        protocol, transport = self.admitted()
        written, warnings = self.fails(
            protocol, transport, self.data_line(), answered=1
        )
        self.assert_busy(written, warnings, transport)
        self.assertIsNotNone(self.store.get_window("alice"))

    def test_count(self):
        """
        The count of a wrong password: the device has its C{SUTO_AUTH_0}
        already; the count is lost, and said so.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.calls.answer()
        written, warnings = self.fails(
            protocol, transport, self.hash_line("wrong"), answered=2
        )
        self.assertEqual(written, frame(wire.Auth(False)))
        [warning] = warnings
        self.assertIn("counting a failed enrollment for alice failed", formatEvent(warning))
        self.assert_nothing_stored()


class HeldCommitTests(HeldEnrollment, SynchronousTestCase):
    """
    A commit the store holds past the exchange timeout: the device is not
    timed out while the store decides, and hears what the store decided;
    only past the commit's bound does the server give up on it.
    """

    def events(self):
        return [e.event for e in self.store.audit_events()]

    def test_enrolled_past_exchange_timeout(self):
        """
        The commit held twice the exchange timeout times nothing out;
        when it lands the device gets C{SUTO_ENROLLED_}.
        """
        _, transport = self.committing()
        self.clock.advance(2 * EXCHANGE_TIMEOUT)
        self.assertEqual((transport.value(), transport.disconnecting), (b"", False))
        self.calls.answer()
        self.assertTrue(transport.value().startswith(b"SUTO_ENROLLED_"))
        self.assertTrue(transport.disconnecting)
        self.assertIsNotNone(self.store.get_profile("alice"))
        self.assertIsNone(self.store.get_window("alice"))
        self.assertNotIn("enrollment_abandoned", self.events())

    def test_busy_past_exchange_timeout(self):
        """
        The commit held past the exchange timeout that then fails gets
        the device C{SUTO_ERROR_BUSY}: no profile, the window open with
        no attempt counted, so the device may try again.
        """
        _, transport = self.committing()
        self.clock.advance(2 * EXCHANGE_TIMEOUT)
        with capturedLogs():
            self.calls.fail(StoreError("the database went away"))
        self.assertEqual(transport.value(), frame(wire.Error(wire.ERROR_BUSY)))
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(self.attempts(), 0)
        self.assertNotIn("enrolled", self.events())

    def test_past_the_bound(self):
        """
        A commit held for the whole bound ends the connection with
        C{SUTO_ERROR_TIMEOUT}, and the enrollment is audited abandoned;
        should the commit land after all, the profile is stored, the
        answer goes nowhere, as when a device dies after the commit
        (docs/PROTOCOL.md §8.2), and a warning tells IT to re-enroll it.
        """
        protocol, transport = self.committing()
        self.clock.advance(timing.ENROLLMENT_COMMIT_BOUND - 1)
        self.assertEqual(transport.value(), b"")
        self.clock.advance(1)
        self.assertEqual(transport.value(), frame(wire.Error(wire.ERROR_TIMEOUT)))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(None)
        transport.clear()
        with capturedLogs() as events:
            self.calls.answer()
        self.assertEqual(transport.value(), b"")
        self.assertIsNotNone(self.store.get_profile("alice"))
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertIn("re-enroll it with --replace", formatEvent(warning))
        self.assertLessEqual({"enrollment_abandoned", "enrolled"}, set(self.events()))

    def test_exchange_timeout_before_the_data(self):
        """
        Only the commit waits longer: a device that proved the password
        and then says nothing is timed out after the exchange timeout.
        """
        _, transport = self.admitted()
        transport.clear()
        self.clock.advance(EXCHANGE_TIMEOUT)
        self.assertEqual(transport.value(), frame(wire.Error(wire.ERROR_TIMEOUT)))


class DatabaseThreadTests(EnrollmentListener, TestCase):
    """
    The enrollment on a real SQLite store through the database thread, as
    a server on a store across the network runs it.
    """

    def setUp(self):
        folder = self.mktemp()
        store = SQLiteStore.open(folder + ".db")
        self.addCleanup(store.close)
        self.database = DatabaseThread(reactor, store)
        self.database.startService()
        self.addCleanup(self.database.stopService)
        self.listen(store, ThreadedCalls(self.database))

    async def replied(self, transport, ending: bytes) -> None:
        """
        Let the database thread answer until the server's reply ends with
        C{ending}.
        """
        for _ in range(10):
            if transport.value().endswith(ending):
                return
            await self.database.run(lambda store: None)
        self.fail(f"no {ending!r} in {transport.value()!r}")

    def test_enrolls(self):
        """
        Every reply waits for the thread: none is written in the turn that
        received its message; the profile is stored on the real store.
        """
        return Deferred.fromCoroutine(self._enrolls())

    async def _enrolls(self):
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(transport.value(), VERSION)
        await self.replied(transport, frame(wire.SaltA(self.salt, RSALT)))
        transport.clear()
        protocol.dataReceived(self.hash_line())
        self.assertEqual(transport.value(), b"")
        await self.replied(transport, frame(wire.Auth(True)))
        transport.clear()
        protocol.dataReceived(self.data_line())
        self.assertEqual(transport.value(), b"")
        await self.replied(transport, b"\r\n")
        self.assertTrue(transport.value().startswith(b"SUTO_ENROLLED_"))
        self.assertEqual(self.store.get_profile("alice").location, INSIDE)
