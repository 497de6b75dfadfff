"""
Tests that the SQLite store reads a page of the alerts, and counts them,
through the audit log's index by event type (C{audit_by_event}, schema
v7), as SQLite's own query plan says: without it a page of the alerts
walked the log by time until it had found a page's worth, and a count of
them read the whole log.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.alerts import ALERT_TYPES
from suto_server.audit.paging import page_filters
from suto_server.store.records import AuditEvent
from tests.support.sqlite_files import SQLiteFileCase, statement_plan

NOW = 1_700_000_000.0


class AlertsIndexTests(SQLiteFileCase, SynchronousTestCase):
    """
    The query plans of the alerts' page and count on a store holding
    records of many types.
    """

    def setUp(self):
        super().setUp()
        self.store = self.open_store()
        for n in range(50):
            self.store.append_audit(
                AuditEvent(NOW + n, "classic_ok", "alice", "10.9.0.4", "fine")
            )
        self.store.append_audit(
            AuditEvent(NOW + 60, "reconnect_failed", "bob", "10.9.0.5", "bad")
        )

    def plan_of(self, read):
        """
        @return: SQLite's query plan for the one statement C{read} ran.
        """
        return statement_plan(self.store, self.path, read)

    def assert_searches_by_event(self, plan):
        """
        Fail unless C{plan} reads the audit log by a search of
        C{audit_by_event}, rather than a scan of the log or of its index
        by time.
        """
        self.assertIn("SEARCH audit USING INDEX audit_by_event (event=?)", plan)

    def test_page_of_alerts(self):
        """
        A page of the alerts searches the audit log by event type, through
        C{audit_by_event}, and finds only the alert.
        """
        read = []
        plan = self.plan_of(
            lambda: read.extend(
                self.store.audit_events_matching(
                    types=ALERT_TYPES, **page_filters(1)
                )
            )
        )
        self.assertEqual([event.event for event in read], ["reconnect_failed"])
        self.assert_searches_by_event(plan)

    def test_count_of_alerts(self):
        """
        The count of the alerts (the console's number of pages) searches
        the audit log by event type, through C{audit_by_event}, instead of
        reading the whole log.
        """
        counted = []
        plan = self.plan_of(
            lambda: counted.append(self.store.count_audit_events(types=ALERT_TYPES))
        )
        self.assertEqual(counted, [1])
        self.assert_searches_by_event(plan)
