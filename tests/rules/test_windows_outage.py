"""
Tests for L{suto_server.rules.windows} while the store is away: the
announcements of an open window go on without a traceback, and stop at
the window's deadline once the store is back.
"""

from twisted.internet import task
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.locations import Locations
from suto_server.rules.enrollment import Enrollment
from suto_server.rules.windows import WindowDesk
from suto_server.store.memory import MemoryStore
from tests.support.away import AWAY, AwayStore
from tests.support.enrollment import PASSWORD
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool

#: Seconds between two announcements of a window.
EVERY = 5


class AnnouncementOutageTests(SynchronousTestCase):
    """
    A running L{WindowDesk} whose store goes away while a window is open.
    """

    def test_store_away(self):
        """
        While the store is away, whether the window is open cannot be
        read: the announcement goes out all the same, logging a warning
        with the store's message and no traceback; once the store is
        back, the window is announced until its deadline only.
        """
        clock = task.Clock()
        store = AwayStore(MemoryStore())
        enrollment = Enrollment(store, new_master_key(self), ImmediatePool())
        hello = RecordingHello()
        desk = WindowDesk(
            enrollment,
            Locations(),
            clock,
            hello,
            2020,
            list,
            announce_every=EVERY,
        )
        desk.startService()
        self.addCleanup(desk.stopService)
        self.successResultOf(desk.open("alice", "127.0.0.5", 3 * EVERY - 1, PASSWORD))
        store.away = True
        with capturedLogs() as events:
            clock.advance(EVERY)
        self.assertEqual([e["error"] for e in events], [AWAY])
        self.assertFalse([e for e in events if "log_failure" in e])
        store.away = False
        clock.advance(EVERY)
        clock.advance(EVERY)
        self.assertEqual(len(hello.sent), 3)
        self.assertEqual(clock.getDelayedCalls(), [])
