"""
Tests for L{suto_server.store.open}: the one place the daemon and the
admin command get their store.
"""

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IStore
from suto_server.store.open import open_store
from suto_server.store.postgres import PostgresStore
from tests.support.postgres import new_location
from tests.support.store_suite.values import HASH


class OpenStoreTests(SynchronousTestCase):
    """
    L{open_store} on a path.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        self.path = os.path.join(folder, "suto.db")

    def test_creates_store(self):
        """
        A path with no file gets a new, empty store there, which provides
        L{IStore} and keeps what is written to it.
        """
        store = open_store(self.path)
        self.assertTrue(verifyObject(IStore, store))
        store.add_user("alice", HASH, 1.0)
        store.close()
        self.assertTrue(os.path.isfile(self.path))
        again = open_store(self.path)
        self.addCleanup(again.close)
        self.assertEqual(again.hash_for("alice"), HASH)

    def test_read_only(self):
        """
        Read-only, the store there is read but not written, and a missing
        one is not created.
        """
        self.assertRaises(StoreError, open_store, self.path, read_only=True)
        self.assertFalse(os.path.exists(self.path))
        open_store(self.path).close()
        store = open_store(self.path, read_only=True)
        self.addCleanup(store.close)
        self.assertTrue(verifyObject(IStore, store))
        self.assertEqual(store.verify_audit(), [])
        self.assertRaises(StoreError, store.add_user, "alice", HASH, 1.0)


class OpenPostgresStoreTests(SynchronousTestCase):
    """
    L{open_store} on a PostgreSQL connection URI.
    """

    def test_chooses_postgres(self):
        """
        A C{postgresql://} URI opens the PostgreSQL store there, read-only
        too, and nothing is created on disk.
        """
        location = new_location(self)
        store = open_store(location)
        self.addCleanup(store.close)
        self.assertIsInstance(store, PostgresStore)
        store.add_user("alice", HASH, 1.0)
        reader = open_store(location, read_only=True)
        self.addCleanup(reader.close)
        self.assertEqual(reader.hash_for("alice"), HASH)
        self.assertRaises(StoreError, reader.add_user, "bob", HASH, 1.0)

    def test_short_scheme(self):
        """
        libpq's other scheme, C{postgres://}, names the PostgreSQL store
        too.
        """
        location = new_location(self).replace("postgresql://", "postgres://", 1)
        store = open_store(location)
        self.addCleanup(store.close)
        self.assertIsInstance(store, PostgresStore)

    def test_password_refused(self):
        """
        A URI that carries a password is refused before any connection is
        tried, with a message that says where the password belongs.
        """
        error = self.assertRaises(
            StoreError, open_store, "postgresql://suto:secret@db.invalid/suto"
        )
        self.assertIn("PGPASSFILE", str(error))
        self.assertNotIn("secret", str(error))
