# -*- test-case-name: tests.store.test_postgres -*-
"""
The store of accounts, enrollment and key rotation state, profile moves
and the audit log on a PostgreSQL server, for a site that keeps its data
in one: its backups, its replication, and (later) several SUTO daemons
sharing one store.

L{PostgresStore} is cut as L{suto_server.store.sqlite.SQLiteStore} is,
one part per concept of L{suto_server.store.interfaces.IStore}, over the
same tables and columns (L{suto_server.store.sql.rows}), each running its
statements through the one L{connection}, which also creates and
upgrades the versioned schema (C{schema/}, the PostgreSQL store's own
versions) under an advisory lock.

The store is located by a libpq connection URI
(C{postgresql://suto@db.example/suto}) that names no password: libpq
finds that in C{PGPASSFILE} (C{~/.pgpass}) or C{PGPASSWORD} itself.
Every method is synchronous, psycopg's blocking API: a read or a single
row's write is one round trip the reactor can afford, and the batches
(rotations, audit bursts) run on the database thread's sibling.
"""

from zope.interface import implementer

from suto_server.store.clustering import IClusteredStore
from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore
from suto_server.store.postgres.advisory import AdvisoryLock
from suto_server.store.postgres.audit import Audit
from suto_server.store.postgres.connection import SCHEMA_VERSION, Connection
from suto_server.store.postgres.notices import Notices
from suto_server.store.postgres.transfer import PostgresTransfer
from suto_server.store.sql.accounts import Accounts
from suto_server.store.sql.blacklist import Blacklist
from suto_server.store.sql.presence import Presence
from suto_server.store.sql.profiles import Profiles
from suto_server.store.sql.windows import Windows
from suto_server.store.transfer import IStoreTransfer

__all__ = ["SCHEMA_VERSION", "PostgresStore"]


@implementer(IStore, IStoreTransfer, IClusteredStore)
class PostgresStore(
    Accounts,
    Windows,
    Profiles,
    Presence,
    Audit,
    Blacklist,
    PostgresTransfer,
    Notices,
    Connection,
):
    """
    Accounts, enrollment and rotation state, moves and the audit log kept
    in one PostgreSQL database, through one connection of this object's
    own.  Its siblings (L{PostgresStore.sibling}) hold connections of
    their own, and PostgreSQL serializes the writes of all of them, in
    this process or another.
    """

    def leader_lock(self):
        """
        See L{IClusteredStore.leader_lock}.

        @raise StoreError: this store was built from a bare connection,
            with no URI to open the lock's own.
        """
        if self._uri is None:
            raise StoreError("this store has no URI to connect to again")
        return AdvisoryLock(self._uri)

    def commit_rotations(self, rotations):
        """
        See L{IProfileStore.commit_rotations}: the batch's statements are
        sent in psycopg's pipeline mode, and none waits for the answer of
        one before (L{suto_server.store.sql.profiles}), so a batch costs
        one round trip, its commit's, rather than one per rotation (or
        per statement).
        """
        with self._session("committing rotations") as connection, connection.pipeline():
            return super().commit_rotations(rotations)
