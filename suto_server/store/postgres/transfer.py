# -*- test-case-name: tests.store.test_transfer -*-
"""
The PostgreSQL store's own part of L{suto_server.store.sql.transfer}:
where its schema lists its tables, the snapshot a dump reads, and the
id counters a load restarts (the identity columns' sequences, and the
audit log's C{audit_head}).
"""

from suto_server.store.sql.transfer import NUMBERED, Transfer


class PostgresTransfer(Transfer):
    """
    A whole PostgreSQL store out and in.
    """

    _TABLES_QUERY = (
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    )

    #: The schema version, and the last audit id given out (set again by
    #: every load).
    _OWN_TABLES = frozenset({"version", "audit_head"})

    # An identity column GENERATED ALWAYS takes a given value only so.
    _OVERRIDING = " OVERRIDING SYSTEM VALUE"

    def _snapshot(self):
        """
        @return: a read-only transaction at REPEATABLE READ: every table
            is read from one snapshot, while the daemons go on writing.
        """
        return self._transaction("reading the store whole", snapshot=True)

    def _restart_counters(self, connection):
        """
        Make each numbered table's next id follow its highest id loaded:
        an identity column's sequence (C{setval} of L{None}, for the audit
        log which has none, does nothing) and C{audit_head}, which gives
        out the audit log's ids and which its numbering reads.
        """
        for name in NUMBERED:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence(?, 'id'),"
                f" coalesce(max(id), 0) + 1, false) FROM {name}",
                (name,),
            )
        connection.execute(
            "UPDATE audit_head SET last_id = (SELECT coalesce(max(id), 0) FROM audit)"
        )
