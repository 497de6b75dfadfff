"""
Tests that IT's operations on enrollment windows (L{WindowDesk}) and on
the blacklist (L{Reconnection.blacklist_report}, L{Reconnection.unblock})
await the store's calls: on a store across the network the reactor goes
on while the store answers, each operation answers once it has, and a
failure of the store is the operation's failure, with nothing changed.
"""

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.locations import Locations
from suto_server.rules.enrollment import Enrollment
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rotation import Rotation
from suto_server.rules.windows import WindowDesk
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import BlacklistEntry
from tests.support.enrollment import PASSWORD
from tests.support.heldcalls import HeldCalls
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool
from tests.support.store_suite.values import enroll_numbered

NOW = 1_700_000_000.0

#: What the store says while it cannot answer.
AWAY = "the database went away"


def _answered(case, coroutine, names):
    """
    Run C{coroutine}, which waits for the store: it has no result until
    C{case.calls} answers, which they do with the calls C{names}.

    @return: the coroutine's result.
    """
    d = Deferred.fromCoroutine(coroutine)
    case.assertNoResult(d)
    case.assertEqual(case.calls.answer_all(), names)
    return case.successResultOf(d)


class WindowDeskAwaitsTests(SynchronousTestCase):
    """
    L{WindowDesk} over calls that answer when the test says.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.calls = HeldCalls(self.store)
        self.hello = RecordingHello()
        enrollment = Enrollment(
            self.store, new_master_key(self), ImmediatePool(), calls=self.calls
        )
        self.desk = WindowDesk(
            enrollment, Locations(), self.clock, self.hello, 2020, list
        )

    def test_open(self):
        """
        Opening a window reads the blacklist and the profile, then stores
        the window, each once the call before has answered; the answer
        and the hello come after the window is stored.
        """
        d = self.desk.open("alice", "127.0.0.5", 60, PASSWORD)
        self.assertNoResult(d)
        self.assertEqual(self.calls.names, ["blacklist_entry"])
        self.assertEqual(
            self.calls.answer_all(), ["blacklist_entry", "get_profile", "open_window"]
        )
        self.assertEqual(self.successResultOf(d)["password"], PASSWORD)
        self.assertEqual(self.store.get_window("alice").username, "alice")
        self.assertEqual(len(self.hello.sent), 1)

    def test_open_store_fails(self):
        """
        A store that fails while the window is opened fails the opening
        with its error: no window, no hello.
        """
        d = self.desk.open("alice", "127.0.0.5", 60, PASSWORD)
        self.calls.fail(StoreError(AWAY))
        self.assertEqual(str(self.failureResultOf(d, StoreError).value), AWAY)
        self.assertEqual((self.store.list_windows(), self.hello.sent), ([], []))

    def open(self):
        """
        Open a window for alice, the store answering at once.
        """
        d = self.desk.open("alice", "127.0.0.5", 60, PASSWORD)
        self.calls.answer_all()
        self.successResultOf(d)

    def test_list(self):
        """
        Listing the windows answers once the store has listed them.
        """
        self.open()
        [window] = _answered(self, self.desk.list(), ["list_windows"])
        self.assertEqual(window["user"], "alice")

    def test_cancel(self):
        """
        Cancelling answers once the store has closed the window; a store
        that fails meanwhile fails the cancellation and the window stays.
        """
        self.open()
        failed = Deferred.fromCoroutine(self.desk.cancel("alice"))
        self.calls.fail(StoreError(AWAY))
        self.failureResultOf(failed, StoreError)
        self.assertIsNotNone(self.store.get_window("alice"))
        self.assertTrue(_answered(self, self.desk.cancel("alice"), ["close_window"]))
        self.assertIsNone(self.store.get_window("alice"))

    def test_resume_store_fails(self):
        """
        A desk started while the store cannot list the windows a restart
        kept logs one warning with the store's message and no traceback,
        and announces nothing.
        """
        self.desk.startService()
        self.addCleanup(self.desk.stopService)
        with capturedLogs() as events:
            self.calls.fail(StoreError(AWAY))
        [warning] = events
        self.assertEqual(
            (warning["log_level"], warning["error"]), (LogLevel.warn, AWAY)
        )
        self.assertNotIn("log_failure", warning)
        self.assertEqual(self.hello.sent, [])

    def test_announcement_awaits(self):
        """
        The next announcement of a window is sent once the store has said
        the window is still open.
        """
        self.desk.startService()
        self.addCleanup(self.desk.stopService)
        self.calls.answer_all()
        self.open()
        self.clock.advance(5)
        self.assertEqual(len(self.hello.sent), 1)
        self.assertEqual(self.calls.answer_all(), ["get_window"])
        self.assertEqual(len(self.hello.sent), 2)


class BlacklistAwaitsTests(SynchronousTestCase):
    """
    L{Reconnection}'s operations on the blacklist over calls that answer
    when the test says.
    """

    def setUp(self):
        self.store = MemoryStore()
        enroll_numbered(self.store, "alice")
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "cloned", "10.9.0.4", "clone_suspected")
        )
        self.calls = HeldCalls(self.store)
        audit = AuditLog(self.store)
        self.reconnection = Reconnection(
            self.calls,
            Rotation(self.calls, new_master_key(self), None, audit),
            audit,
        )

    def test_report(self):
        """
        The report answers once the store has listed the blacklist.
        """
        [row] = _answered(
            self, self.reconnection.blacklist_report(), ["list_blacklist"]
        )
        self.assertEqual(row["user"], "alice")

    def test_unblock(self):
        """
        Unblocking answers once the store has lifted the entry, and only
        then records it.
        """
        d = Deferred.fromCoroutine(self.reconnection.unblock("alice", NOW + 1))
        self.assertNoResult(d)
        self.assertEqual(self.store.audit_events(), [])
        self.assertEqual(self.calls.answer_all(), ["unblock"])
        self.assertTrue(self.successResultOf(d))
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertEqual(
            [event.event for event in self.store.audit_events()], ["unblocked"]
        )

    def test_unblock_store_fails(self):
        """
        A store that fails while lifting the entry fails the unblocking:
        the entry stays and nothing is recorded.
        """
        d = Deferred.fromCoroutine(self.reconnection.unblock("alice", NOW + 1))
        self.calls.fail(StoreError(AWAY))
        self.failureResultOf(d, StoreError)
        self.assertIsNotNone(self.store.blacklist_entry("alice"))
        self.assertEqual(self.store.audit_events(), [])
