# -*- test-case-name: tests.store.test_sqlite -*-
"""
The audit log part of L{suto_server.store.sqlite.SQLiteStore}: the
C{audit} table, a hash chain (see L{suto_server.store.chain}), behind
L{suto_server.store.interfaces.IAuditStore}.
"""

from suto_server.store import chain
from suto_server.store.checks import check_time, checked_audit_events
from suto_server.store.records import AuditEvent

# So are an audit record's locations; the store accepts only printable
# ones, and a line break is not.
_LOCATION_SEPARATOR = "\n"

_AUDIT_COLUMNS = (
    "time, event, username, source, reason, locations, previous_hash, hash"
)


def _locations_from_text(text):
    """
    @return: the locations an audit record's C{locations} column holds.
    """
    return tuple(text.split(_LOCATION_SEPARATOR)) if text else ()


def _audit_row(event):
    """
    @return: the C{audit} row of a chained C{event}, in L{_AUDIT_COLUMNS}
        order.
    """
    return (
        event.time,
        event.event,
        event.username,
        event.source,
        event.reason,
        _LOCATION_SEPARATOR.join(event.locations),
        event.previous_hash,
        event.hash,
    )


def _audit_from_row(row):
    """
    @return: the L{AuditEvent} an C{audit} row read with L{_AUDIT_COLUMNS}
        holds.
    """
    time, event, username, source, reason, locations, previous, hash_ = row
    return AuditEvent(
        time=time,
        event=event,
        username=username,
        source=source,
        reason=reason,
        locations=_locations_from_text(locations),
        previous_hash=previous,
        hash=hash_,
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
            _locations_from_text(locations),
        ),
    )


def _missing(first, last):
    """
    @return: the problem of the audit records of ids C{first} to C{last}
        having been removed.
    """
    if first == last:
        return f"the record of id {first} was removed"
    return f"the records of ids {first} to {last} were removed"


class Audit:
    """
    The audit log, over the C{audit} table.
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
            rows = connection.execute(
                "SELECT hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchall()
            stored = chain.chained_all(rows[0][0] if rows else chain.GENESIS, events)
            connection.executemany(
                f"INSERT INTO audit ({_AUDIT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_audit_row(record) for record in stored],
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
            f"SELECT {_AUDIT_COLUMNS} FROM audit"
            " WHERE ? IS NULL OR time >= ? ORDER BY time, id",
            (since, since),
        )
        return [_audit_from_row(row) for row in rows]

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}.

        Besides the chain, the ids tell what the chain alone cannot: they
        are given out one after the other from 1, and SQLite remembers the
        last one given (in C{sqlite_sequence}), so records removed from
        the end, even if more were appended since, leave missing ids.
        """
        with self._transaction(
            "verifying the audit log", begin="BEGIN"
        ) as connection:
            rows = connection.execute(
                f"SELECT id, {_AUDIT_COLUMNS} FROM audit ORDER BY id"
            ).fetchall()
            given = connection.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'audit'"
            ).fetchall()
        found = chain.breaks(_audit_from_row(row[1:]) for row in rows)
        expected = 1
        for position, (number, *_) in enumerate(rows, 1):
            if number != expected:
                found.append((position, _missing(expected, number - 1)))
            expected = number + 1
        if given and given[0][0] >= expected:
            found.append((len(rows) + 1, _missing(expected, given[0][0])))
        found.sort(key=lambda problem: problem[0])
        return [problem for _, problem in found]
