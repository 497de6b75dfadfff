# -*- test-case-name: tests.cluster.test_leadership,tests.store.postgres.test_outage -*-
"""
The lock that elects the leader of the server processes sharing one
PostgreSQL store: a session-level advisory lock, held by a connection
of its own for as long as that connection lives.

PostgreSQL releases a session's advisory locks when the session ends,
however it ends: the process stopped, was killed, or its host fell off
the network (noticed by the TCP keepalives every store connection asks
for on both sides, L{suto_server.store.postgres.session}).  So a dead
leader cannot keep the lock, and no lease or heartbeat table is needed.
The lock is taken with C{pg_try_advisory_lock}, which never waits, and
its key is the pair (L{LEADER_LOCK}, a hash of the store's schema):
several stores in one database, each in its schema, elect their leaders
apart, and the pair never meets the one-number key the schema is created
under.

A lock whose connection failed (the server stopped, restarted or failed
over) is not held, and the next try connects again: once the server is
back, a leader is elected again with no restart.
"""

import psycopg
from zope.interface import implementer

from suto_server.store.clustering import IClusterLock
from suto_server.store.postgres.session import (
    SHORT_STATEMENTS,
    as_store_error,
    connect,
)

#: The first half of the leader lock's key: "SUTL".
LEADER_LOCK = 0x5355544C


@implementer(IClusterLock)
class AdvisoryLock:
    """
    The leader lock of the store at C{uri}, on a connection this object
    opens when it first tries to take it, and again after losing it.

    @ivar held: whether the lock was held when last tried.
    """

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._connection = None
        self.held = False

    def try_acquire(self) -> bool:
        """
        See L{IClusterLock.try_acquire}.  Holding the lock, this makes
        one round trip, which fails once the session is gone.
        """
        if self._connection is None:
            self._connection = connect(self._uri, statement_timeout=SHORT_STATEMENTS)
        try:
            with as_store_error("taking the leader lock"):
                if self.held:
                    self._connection.execute("SELECT 1")
                else:
                    [(self.held,)] = self._connection.execute(
                        "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))",
                        (LEADER_LOCK,),
                    ).fetchall()
        except BaseException:
            self.release()
            raise
        return self.held

    def release(self) -> None:
        """
        See L{IClusterLock.release}: the lock is let go before the session
        is closed, since the server ends a closed session (and frees its
        locks) a moment after the close returns, and another process
        trying then would still find it held.
        """
        connection, self._connection = self._connection, None
        held, self.held = self.held, False
        if connection is None:
            return
        try:
            if held:
                connection.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            pass
        finally:
            connection.close()
