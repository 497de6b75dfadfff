"""
What every SQL store shares: the parts of L{suto_server.store.interfaces.IStore}
whose statements both SQLite and PostgreSQL run as they are written
(L{accounts}, L{windows}, L{profiles}, L{presence}, L{blacklist}, and the
reading half of L{audit}), the mapping of records to rows (L{rows}), and
how versioned schema files are read (L{schemafiles}).

A store is made of these parts and a connection class of its own (see
L{suto_server.store.sqlite} and L{suto_server.store.postgres}), which the
parts call through:
 - C{_read(sql, parameters)}: the rows of one query;
 - C{_write(sql, parameters)}: how many rows one changing statement, in a
   transaction of its own, changed;
 - C{_transaction(doing)}: a context manager giving a connection whose
   C{execute(sql, parameters)} returns a cursor (C{fetchall()},
   C{rowcount}), all in one transaction that commits if the block returns
   and rolls back if it raises;
 - C{_LOCK_READ}: the clause that keeps a row read in a transaction from
   changing before the transaction writes it.
Every statement is written with C{?} parameter marks, which the
PostgreSQL connection turns into psycopg's own.
"""
