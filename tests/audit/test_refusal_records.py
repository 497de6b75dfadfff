# -*- test-case-name: tests.audit.test_refusal_records -*-
"""
L{suto_server.audit.refusal_records}: refusals are audited at most so
many a window per caller, then once as suppressed.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import RefusalAudit
from suto_server.store.memory import MemoryStore

SUPPRESSED = "test_refusals_suppressed"


class RefusalAuditTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.store = MemoryStore()
        self.refusals = RefusalAudit(
            AuditLog(self.store), self.clock, SUPPRESSED, allowance=3, window=60.0, most=2
        )

    def events(self):
        return [(e.event, e.source) for e in self.store.audit_events()]

    def refuse(self, subject, times=1):
        for _ in range(times):
            self.refusals.refused("api_refused", None, subject, "192.0.2.7", "why")

    def test_allowance(self):
        """
        A caller's first refusals in a window are recorded, the next one
        as suppressed, the rest not at all; the next window records again.
        """
        self.refuse("CN=db1", 10)
        self.assertEqual(
            self.events(), [("api_refused", "CN=db1")] * 3 + [(SUPPRESSED, "CN=db1")]
        )
        self.clock.advance(60)
        self.refuse("CN=db1")
        self.assertEqual(len(self.events()), 5)

    def test_per_caller(self):
        """
        One caller past its allowance does not silence another; a caller
        without a subject is counted by its address.
        """
        self.refuse("CN=db1", 10)
        self.refuse("", 2)
        self.assertEqual(
            self.events()[-2:], [("api_refused", None), ("api_refused", None)]
        )

    def test_bounded(self):
        """
        At most C{most} callers are counted; the least recently refused is
        forgotten first.
        """
        self.refuse("CN=db1", 4)
        self.refuse("CN=db2", 4)
        self.refuse("CN=db3", 1)
        self.refuse("CN=db2", 1)
        self.refuse("CN=db1", 1)
        events = self.events()
        self.assertEqual(events.count(("api_refused", "CN=db1")), 4)
        self.assertEqual(events.count(("api_refused", "CN=db2")), 3)
        self.assertEqual(events[-1], ("api_refused", "CN=db1"))
