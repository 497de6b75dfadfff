# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres -*-
"""
The reading half of the audit log part of every SQL store (see
L{suto_server.store.sql}): the C{audit} table, a hash chain (see
L{suto_server.store.chain}), behind
L{suto_server.store.interfaces.IAuditStore}.

How the records are appended and their ids checked depends on how the
database gives out ids, so each store's own audit part adds
C{append_audits} and C{verify_audit} to this.
"""

from suto_server.store.checks import (
    check_page,
    check_time,
    checked_audit_filters,
)
from suto_server.store.sql.rows import AUDIT_COLUMNS, audit_from_row


class AuditReads:
    """
    The audit log's reads, and the single append built on the store's
    C{append_audits}.
    """

    def append_audit(self, event):
        """
        See L{IAuditStore.append_audit}.
        """
        return self.append_audits([event])[0]

    def audit_events(self, since=None):
        """
        See L{IAuditStore.audit_events}.

        @raise ValueError: C{since} is neither L{None} nor a time the store
            accepts (see L{check_time}).
        """
        if since is not None:
            check_time("since", since)
        rows = self._read(
            f"SELECT {AUDIT_COLUMNS} FROM audit"
            " WHERE CAST(? AS DOUBLE PRECISION) IS NULL OR time >= ?"
            " ORDER BY time, id",
            (since, since),
        )
        return [audit_from_row(row) for row in rows]

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
        where, arguments = _filters(username, event, since, until, types)
        check_page(newest, skip)
        statement = (
            f"SELECT {AUDIT_COLUMNS} FROM audit WHERE {where}"
            " ORDER BY time DESC, id DESC"
        )
        if newest is not None:
            statement += " LIMIT ? OFFSET ?"
            arguments += (newest, skip)
        return [audit_from_row(row) for row in self._read(statement, arguments)]

    def count_audit_events(
        self, username=None, event=None, since=None, until=None, types=None
    ):
        """
        See L{IAuditStore.count_audit_events}.

        @raise ValueError: a filter is out of bounds.
        """
        where, arguments = _filters(username, event, since, until, types)
        [(count,)] = self._read(f"SELECT COUNT(*) FROM audit WHERE {where}", arguments)
        return count


def _filters(username, event, since, until, types):
    """
    @return: the condition selecting the audit records that match the
        filters given (each L{None} when not), and its arguments.  A set
        of C{types} is an C{IN} of as many marks, sorted so that the same
        set is the same statement.
    @raise ValueError: a filter is out of bounds.
    """
    types = checked_audit_filters(username, event, since, until, types)
    where = (
        "(CAST(? AS TEXT) IS NULL OR username = ?)"
        " AND (CAST(? AS TEXT) IS NULL OR event = ?)"
        " AND (CAST(? AS DOUBLE PRECISION) IS NULL OR time >= ?)"
        " AND (CAST(? AS DOUBLE PRECISION) IS NULL OR time <= ?)"
    )
    arguments = (username, username, event, event, since, since, until, until)
    if types is not None:
        where += f" AND event IN ({', '.join(['?'] * len(types))})"
        arguments += types
    return where, arguments
