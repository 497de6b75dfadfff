# -*- test-case-name: tests.store.test_sqlite -*-
"""
The audit log part of L{suto_server.store.sqlite.SQLiteStore}: the
C{audit} table, a hash chain (see L{suto_server.store.chain}), behind
L{suto_server.store.interfaces.IAuditStore}.
"""

from suto_server.store import chain
from suto_server.store.checks import checked_audit_events
from suto_server.store.records import AuditEvent
from suto_server.store.sql.audit import AuditReads
from suto_server.store.sql.rows import (
    AUDIT_COLUMNS,
    audit_from_row,
    audit_row,
    locations_from_text,
)


def audit_link(previous, time, event, username, source, reason, locations):
    """
    L{chain.link} over the columns of an C{audit} row, for the upgrade
    script that chains the records of an older database.
    """
    return chain.link(
        previous,
        AuditEvent(
            time,
            event,
            username,
            source,
            reason,
            locations_from_text(locations),
        ),
    )


class Audit(AuditReads):
    """
    The audit log, over the C{audit} table, whose ids SQLite gives out.
    """

    def append_audits(self, events):
        """
        See L{IAuditStore.append_audits}.
        """
        events = checked_audit_events(events)
        with self._transaction("appending to the audit log") as connection:
            rows = connection.execute(
                "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchall()
            stored = chain.chained_all(rows[0][0] if rows else chain.GENESIS, events)
            connection.executemany(
                f"INSERT INTO audit ({AUDIT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [audit_row(record) for record in stored],
            )
        return stored

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}.

        SQLite remembers the last id it gave out in C{sqlite_sequence},
        which L{chain.verify_numbered} checks the ids against.
        """
        with self._transaction(
            "verifying the audit log", begin="BEGIN"
        ) as connection:
            rows = connection.execute(
                f"SELECT id, {AUDIT_COLUMNS} FROM audit ORDER BY id"
            ).fetchall()
            given = connection.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'audit'"
            ).fetchall()
        return chain.verify_numbered(
            ((row[0], audit_from_row(row[1:])) for row in rows),
            given[0][0] if given else None,
        )
