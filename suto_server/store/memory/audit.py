# -*- test-case-name: tests.store.test_memory -*-
"""
The audit log part of L{suto_server.store.memory.MemoryStore}, a hash
chain (see L{suto_server.store.chain}) behind
L{suto_server.store.interfaces.IAuditStore}.
"""

from suto_server.store import chain
from suto_server.store.checks import (
    check_page,
    check_time,
    checked_audit_events,
    checked_audit_filters,
)


class Audit:
    """
    The audit log: the chained events in the order they were appended.
    """

    def append_audit(self, event):
        """
        See L{IAuditStore.append_audit}.
        """
        return self.append_audits([event])[0]

    def append_audits(self, events):
        """
        See L{IAuditStore.append_audits}.
        """
        events = checked_audit_events(events)
        audit = self._open_tables().audit
        stored = chain.chained_all(audit[-1].hash if audit else chain.GENESIS, events)
        audit.extend(stored)
        return stored

    def audit_events(self, since=None):
        """
        See L{IAuditStore.audit_events}.

        @raise ValueError: C{since} is neither L{None} nor a time the store
            accepts (see L{check_time}).
        """
        events = self._open_tables().audit
        if since is not None:
            check_time("since", since)
            events = [event for event in events if event.time >= since]
        # sorted() is stable: events of the same time stay in append order.
        return sorted(events, key=lambda event: event.time)

    def audit_events_matching(
        self,
        username=None,
        event=None,
        since=None,
        until=None,
        newest=None,
        skip=0,
        types=None,
    ):
        """
        See L{IAuditStore.audit_events_matching}.

        @raise ValueError: a filter, C{newest} or C{skip} is out of bounds.
        """
        check_page(newest, skip)
        matching = self._matching(username, event, since, until, types)[::-1]
        return matching if newest is None else matching[skip : skip + newest]

    def count_audit_events(
        self, username=None, event=None, since=None, until=None, types=None
    ):
        """
        See L{IAuditStore.count_audit_events}.

        @raise ValueError: a filter is out of bounds.
        """
        return len(self._matching(username, event, since, until, types))

    def _matching(self, username, event, since, until, types):
        types = checked_audit_filters(username, event, since, until, types)
        return [
            record
            for record in self.audit_events(since)
            if (username is None or record.username == username)
            and (event is None or record.event == event)
            and (types is None or record.event in types)
            and (until is None or record.time <= until)
        ]

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}.
        """
        return chain.verify(self._open_tables().audit)
