# -*- test-case-name: tests.store.test_transfer,tests.admin.test_storecopy -*-
"""
A SQL store's whole content as rows, out and in: the one surface through
which C{suto-admin store copy} moves a deployment from one store to
another (L{suto_server.store.transfer.IStoreTransfer}).

The tables are named once, in L{CARRIED}, parents before the children
whose foreign keys point at them; each store names the tables it keeps
for itself (L{Transfer._OWN_TABLES}: its schema version, its id
counters), which a copy never carries.  A table of the schema in neither
list stops L{Transfer.dump} before it reads anything, so a table added by
a new schema version cannot be left behind silently: carrying it is one
line in L{CARRIED}.  Columns are not listed at all: a table is read with
C{SELECT *} and written by the names its rows came with, so a column
added on both sides travels by itself, and one missing on the destination
fails the load.

Rows are read and written as they are, ids included: the audit log's
records keep their ids and their chain fields, moves and retired keys
their order.  Each store then restarts the counters its ids come from
after the highest id loaded (L{Transfer._restart_counters}), so the next
record it appends follows on, and the audit chain's numbering checks out.
"""

from typing import NamedTuple

from suto_server.store.errors import StoreError

#: Every table a deployment's state lives in, parents before children,
#: each with the column its rows are read in order of (the primary key).
CARRIED = (
    ("users", "username"),
    ("windows", "username"),
    ("profiles", "username"),
    ("retired_keys", "id"),
    ("offline", "username"),
    ("offline_steps", "username"),
    ("reconnect_attempts", "username, nonce"),
    ("blacklist", "username"),
    ("moves", "id"),
    ("audit", "id"),
)

#: The carried tables whose rows are numbered by an C{id} column.
NUMBERED = tuple(name for name, order in CARRIED if order == "id")


class TableRows(NamedTuple):
    """
    One table's rows, as L{Transfer.dump} gives them and L{Transfer.load}
    takes them.
    """

    #: The table's name, one of L{CARRIED}.
    name: str
    #: The names of the columns, in the order of each row's values.
    columns: tuple
    #: The rows, each a tuple of values, in the order of the table's key.
    rows: list


class Transfer:
    """
    L{suto_server.store.transfer.IStoreTransfer} over the store's
    C{_read} and transactions (see L{suto_server.store.sql}), with four
    store-specific parts: C{_TABLES_QUERY} (the names of the schema's
    tables), C{_OWN_TABLES}, C{_snapshot()} (a read-only transaction that
    sees one snapshot) and C{_restart_counters(connection)}; and
    C{_OVERRIDING}, what an C{INSERT} needs to give the ids itself.
    """

    _OVERRIDING = ""

    def schema_tables(self):
        """
        See L{IStoreTransfer.schema_tables}.
        """
        return {name for (name,) in self._read(self._TABLES_QUERY)}

    def uncarried_tables(self):
        """
        @return: the sorted names of the tables of the schema that are
            neither carried by a copy nor the store's own: tables a copy
            would lose.
        """
        known = {name for name, _ in CARRIED} | self._OWN_TABLES
        return sorted(self.schema_tables() - known)

    def _check_carried(self):
        """
        @raise StoreError: the schema holds a table no copy carries.
        """
        uncarried = self.uncarried_tables()
        if uncarried:
            raise StoreError(
                f"the store holds table(s) {', '.join(uncarried)} that a "
                "copy does not carry; this SUTO cannot copy it"
            )

    def dump(self):
        """
        See L{IStoreTransfer.dump}.
        """
        self._check_carried()
        with self._snapshot() as connection:
            for name, order in CARRIED:
                cursor = connection.execute(f"SELECT * FROM {name} ORDER BY {order}")
                columns = tuple(column[0] for column in cursor.description)
                yield TableRows(name, columns, [tuple(row) for row in cursor])

    def load(self, tables):
        """
        See L{IStoreTransfer.load}.
        """
        self._check_carried()
        carried = dict(CARRIED)
        with self._transaction("loading a copy") as connection:
            for name, _ in reversed(CARRIED):
                connection.execute(f"DELETE FROM {name}")
            for table in tables:
                if table.name not in carried:
                    raise ValueError(f"{table.name!r} is not a table a copy carries")
                if table.rows:
                    columns = ", ".join(table.columns)
                    marks = ", ".join(["?"] * len(table.columns))
                    connection.executemany(
                        f"INSERT INTO {table.name} ({columns}){self._OVERRIDING}"
                        f" VALUES ({marks})",
                        table.rows,
                    )
            self._restart_counters(connection)

    def count_rows(self):
        """
        See L{IStoreTransfer.count_rows}.
        """
        return {
            name: self._read(f"SELECT count(*) FROM {name}")[0][0]
            for name, _ in CARRIED
        }
