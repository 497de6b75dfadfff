"""
The audit log part of L{suto_server.store.postgres.PostgresStore}: the
C{audit} table, a hash chain (see L{suto_server.store.chain}), behind
L{suto_server.store.interfaces.IAuditStore}.

Every append first takes the one row of C{audit_head} by updating it, so
appenders in every process take turns: each reads the last record only
once the one before it committed, and the log stays one chain.  The same
update gives out the appended records' ids, which are thus rolled back
with a failed append, so a gap in them always means a removed record.
"""

from suto_server.store import chain
from suto_server.store.checks import check_time, checked_audit_events
from suto_server.store.rows import (
    AUDIT_COLUMNS,
    audit_from_row,
    audit_row,
    placeholders,
)


class Audit:
    """
    The audit log, over the C{audit} and C{audit_head} tables.
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
        with self._transaction("appending to the audit log") as connection:
            [(last_id,)] = connection.execute(
                "UPDATE audit_head SET last_id = last_id + %s RETURNING last_id",
                (len(events),),
            ).fetchall()
            rows = connection.execute(
                "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchall()
            stored = chain.chained_all(rows[0][0] if rows else chain.GENESIS, events)
            first_id = last_id - len(stored) + 1
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO audit (id, {AUDIT_COLUMNS})"
                    f" VALUES (%s, {placeholders(AUDIT_COLUMNS, '%s')})",
                    [
                        (number, *audit_row(record))
                        for number, record in enumerate(stored, first_id)
                    ],
                )
        return stored

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
            " WHERE %s::double precision IS NULL OR time >= %s"
            " ORDER BY time, id",
            (since, since),
        )
        return [audit_from_row(row) for row in rows]

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
