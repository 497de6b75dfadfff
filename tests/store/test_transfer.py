# -*- test-case-name: tests.store.test_transfer -*-
"""
Tests for L{suto_server.store.sql.transfer} and each SQL store's own part
of it: every table of each store's schema is either carried by a copy or
the store's own, a dump read back into another store holds the same rows,
and the store goes on numbering its records after what was loaded.
"""

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.store.errors import StoreError
from suto_server.store.postgres import PostgresStore
from suto_server.store.records import AuditEvent
from suto_server.store.sql.transfer import CARRIED, TableRows
from suto_server.store.sqlite import SQLiteStore
from suto_server.store.transfer import IStoreTransfer
from tests.support.deployments import populate
from tests.support.postgres import new_location
from tests.support.store_suite.values import (
    AUDIT,
    MOVE,
    enroll_numbered,
    numbered_rotation,
    profile_for,
)

CARRIED_NAMES = {name for name, _ in CARRIED}


class _Transfers:
    """
    The tests of one kind of store, which C{new_store()} makes empty.
    """

    def add_table(self, store, name):
        """
        Add a table to the schema of C{store}, as a new version would.
        """
        store._write(f"CREATE TABLE {name} (x INTEGER)", ())

    def test_interface(self):
        """
        The store provides L{IStoreTransfer}.
        """
        self.assertTrue(verifyObject(IStoreTransfer, self.new_store()))

    def test_every_table_is_carried(self):
        """
        Every table of the newest schema is carried by a copy, or is one
        the store keeps for itself: a table added by a new schema version
        and not named in L{CARRIED} fails here.
        """
        store = self.new_store()
        self.assertEqual(store.uncarried_tables(), [])
        self.assertEqual(store.schema_tables(), CARRIED_NAMES | store._OWN_TABLES)

    def test_uncarried_table_refused(self):
        """
        A table the schema holds and no copy carries stops a dump (and a
        load) before anything is read or written, naming the table.
        """
        store = self.new_store()
        self.add_table(store, "reconnect_digests")
        error = self.assertRaises(StoreError, lambda: list(store.dump()))
        self.assertIn("reconnect_digests", str(error))
        self.assertRaises(StoreError, store.load, [])

    def test_round_trip(self):
        """
        A dump of a store with rows in every table loaded into an empty
        one gives the same dump back, table for table and row for row, with an intact
        audit chain.
        """
        source = self.new_store()
        populate(source)
        empty = [name for name, count in source.count_rows().items() if not count]
        self.assertEqual(empty, [], "the deployment leaves tables empty")
        destination = self.new_store()
        destination.load(source.dump())
        self.assertEqual(list(destination.dump()), list(source.dump()))
        self.assertEqual(destination.verify_audit(), [])
        self.assertEqual(destination.count_rows(), source.count_rows())

    def test_load_replaces(self):
        """
        A load replaces everything the store held, and the counters the
        store numbers records with follow what was loaded: the next
        audit record, move and retired key get the next ids, and the
        audit chain stays intact.
        """
        source = self.new_store()
        populate(source)
        destination = self.new_store()
        enroll_numbered(destination, "zed")
        places = (profile_for("zed").location, "10.0.0.2")
        for number in range(20):
            destination.append_audit(AUDIT)
            self.assertTrue(
                destination.record_move(
                    "zed", float(number), *places, None, None
                )
            )
            places = places[::-1]
        destination.load(source.dump())
        self.assertEqual(list(destination.dump()), list(source.dump()))
        destination.append_audit(AUDIT)
        self.assertTrue(
            destination.record_move(
                MOVE.username, 9000.0, "10.9.0.4", "10.9.0.6", None, None
            )
        )
        self.assertEqual(
            destination.commit_rotations([numbered_rotation("alice", 2, 3, 9100.0)]),
            [True],
        )
        self.assertEqual(destination.verify_audit(), [])
        tables = {table.name: table for table in destination.dump()}
        self.assertEqual([row[0] for row in tables["audit"].rows], list(range(1, 9)))
        self.assertEqual([row[0] for row in tables["moves"].rows], [1, 2, 3])
        self.assertEqual([row[0] for row in tables["retired_keys"].rows], [1, 2, 3])

    def test_load_empty(self):
        """
        Loading a dump of an empty store empties the store, and the
        audit log then starts again from its first id.
        """
        destination = self.new_store()
        populate(destination)
        destination.load(self.new_store().dump())
        self.assertEqual(set(destination.count_rows().values()), {0})
        destination.append_audit(AUDIT)
        self.assertEqual(destination.verify_audit(), [])

    def test_load_refused_whole(self):
        """
        A load whose rows do not fit (a table no copy carries, a row
        breaking the schema) changes nothing.
        """
        destination = self.new_store()
        populate(destination)
        before = list(destination.dump())
        self.assertRaises(
            ValueError, destination.load, [TableRows("version", ("version",), [(9,)])]
        )
        broken = [
            table._replace(rows=[(None,) * len(table.columns)])
            if table.name == "audit"
            else table
            for table in destination.dump()
        ]
        self.assertRaises(StoreError, destination.load, broken)
        self.assertEqual(list(destination.dump()), before)

    def test_snapshot(self):
        """
        A dump reads every table from one snapshot: what is committed
        while it is under way is not in it.
        """
        store = self.new_store()
        populate(store)
        writer = store.sibling()
        self.addCleanup(writer.close)
        tables = store.dump()
        first = next(tables)
        writer.append_audit(
            AuditEvent(time=9.0, event="x", username=None, source=None, reason="r")
        )
        rest = list(tables)
        self.assertEqual(first.name, "users")
        self.assertEqual(len(rest[-1].rows), 7)


class SQLiteTransferTests(_Transfers, SynchronousTestCase):
    """
    L{SQLiteStore}'s transfer.
    """

    def new_store(self):
        folder = self.mktemp()
        os.makedirs(folder)
        store = SQLiteStore.open(os.path.join(folder, "suto.db"))
        self.addCleanup(store.close)
        return store


class PostgresTransferTests(_Transfers, SynchronousTestCase):
    """
    L{PostgresStore}'s transfer, on a real PostgreSQL server.
    """

    def new_store(self):
        store = PostgresStore.open(new_location(self))
        self.addCleanup(store.close)
        return store
