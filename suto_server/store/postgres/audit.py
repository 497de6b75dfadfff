# -*- test-case-name: tests.store.test_postgres -*-
"""
The audit log part of L{suto_server.store.postgres.PostgresStore}: the
C{audit} table, a hash chain (see L{suto_server.store.chain}), behind
L{suto_server.store.interfaces.IAuditStore}, with the reads of
L{suto_server.store.sql.audit}.

Every append first takes the one row of C{audit_head} by updating it, so
appenders in every process take turns: each reads the last record only
once the one before it committed, and the log stays one chain.  The same
update gives out the appended records' ids, which are thus rolled back
with a failed append, so a gap in them always means a removed record.
"""

from suto_server.store import chain
from suto_server.store.checks import checked_audit_events
from suto_server.store.sql.audit import AuditReads
from suto_server.store.sql.rows import (
    AUDIT_COLUMNS,
    audit_from_row,
    audit_row,
    placeholders,
)


class Audit(AuditReads):
    """
    The audit log, over the C{audit} table and the C{audit_head} that
    gives out its ids.
    """

    def append_audits(self, events):
        """
        See L{IAuditStore.append_audits}.
        """
        events = checked_audit_events(events)
        with self._transaction("appending to the audit log") as connection:
            [(last_id,)] = connection.execute(
                "UPDATE audit_head SET last_id = last_id + ? RETURNING last_id",
                (len(events),),
            ).fetchall()
            rows = connection.execute(
                "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchall()
            stored = chain.chained_all(rows[0][0] if rows else chain.GENESIS, events)
            first_id = last_id - len(stored) + 1
            connection.executemany(
                f"INSERT INTO audit (id, {AUDIT_COLUMNS})"
                f" VALUES (?, {placeholders(AUDIT_COLUMNS)})",
                [
                    (number, *audit_row(record))
                    for number, record in enumerate(stored, first_id)
                ],
            )
        return stored

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}: the records and the last id given
        out are read from one snapshot.
        """
        with self._transaction("verifying the audit log", snapshot=True) as connection:
            rows = connection.execute(
                f"SELECT id, {AUDIT_COLUMNS} FROM audit ORDER BY id"
            ).fetchall()
            [(last_id,)] = connection.execute(
                "SELECT last_id FROM audit_head"
            ).fetchall()
        return chain.verify_numbered(
            ((row[0], audit_from_row(row[1:])) for row in rows),
            last_id or None,
        )
