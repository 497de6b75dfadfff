# -*- test-case-name: tests.store.test_transfer -*-
"""
The SQLite store's own part of L{suto_server.store.sql.transfer}: where
its schema lists its tables, the snapshot a dump reads, and the
C{AUTOINCREMENT} counters a load restarts.
"""

from suto_server.store.sql.transfer import NUMBERED, Transfer


class SQLiteTransfer(Transfer):
    """
    A whole SQLite store out and in.
    """

    _TABLES_QUERY = "SELECT name FROM sqlite_master WHERE type = 'table'"

    #: The schema version, and SQLite's record of the last id each
    #: C{AUTOINCREMENT} table gave out (set again by every load).
    _OWN_TABLES = frozenset({"version", "sqlite_sequence"})

    def _snapshot(self):
        """
        @return: a read transaction: in write-ahead-log mode it sees one
            snapshot from its first read on, keeping no writer waiting.
        """
        return self._transaction("reading the store whole", begin="BEGIN")

    def _restart_counters(self, connection):
        """
        Make the last id each numbered table gave out its highest id
        loaded: an explicit id raises SQLite's counter but never lowers
        it, and the audit log's numbering reads that counter.
        """
        for name in NUMBERED:
            connection.execute(
                f"UPDATE sqlite_sequence SET seq = (SELECT coalesce(max(id), 0)"
                f" FROM {name}) WHERE name = ?",
                (name,),
            )
