"""
The shared suite of L{IUserStore}: the password accounts.
"""

from zope.interface.verify import verifyObject

from suto_server.core.schemes import UnsupportedScheme
from suto_server.store.errors import (
    StoreError,
    UnknownUser,
    UserExists,
)
from suto_server.store.interfaces import (
    IStore,
    IUserRecord,
    IUserStore,
)
from suto_server.store.records import UserRecord
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BAD_NAMES,
    EDGE_NAMES,
    HASH,
    HASH_SCHEME,
    OTHER_HASH,
    UNSUPPORTED_HASHES,
    not_refused,
)


class AccountStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IUserStore} behaviour.
    """

    def test_provides_interface(self):
        """
        The store provides L{IStore} and so L{IUserStore} completely.
        """
        self.assertTrue(verifyObject(IStore, self.store))
        self.assertTrue(verifyObject(IUserStore, self.store))

    def test_empty(self):
        """
        A new store lists no accounts and has no hash for anyone.
        """
        self.assertEqual(self.store.list_users(), [])
        self.assertIsNone(self.store.hash_for("alice"))

    def test_add_user(self):
        """
        An added account's hash is returned by C{hash_for} and the account is
        listed with its scheme and times, but without its hash.
        """
        self.store.add_user("alice", HASH, 1000.5)
        self.assertEqual(self.store.hash_for("alice"), HASH)
        records = self.store.list_users()
        self.assertEqual(
            records, [UserRecord("alice", HASH_SCHEME, 1000.5, 1000.5)]
        )
        self.assertTrue(verifyObject(IUserRecord, records[0]))
        self.assertNotIn(HASH, repr(records))

    def test_add_existing_user(self):
        """
        Adding a name that is taken raises L{UserExists} and leaves the
        existing account as it was.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertRaises(
            UserExists, self.store.add_user, "alice", OTHER_HASH, 2000.0
        )
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [UserRecord("alice", HASH_SCHEME, 1000.0, 1000.0)],
        )

    def test_hash_for_unknown_user(self):
        """
        C{hash_for} returns L{None} for a name that has no account, while
        other accounts exist.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertIsNone(self.store.hash_for("bob"))

    def test_list_sorted_by_name(self):
        """
        C{list_users} returns the accounts sorted by name, by code point
        (capitals first), whatever the order they were added in.
        """
        for name in ["carol", "alice", "Zed", "bob", "_x"]:
            self.store.add_user(name, HASH, 1000.0)
        self.assertEqual(
            [record.username for record in self.store.list_users()],
            ["Zed", "_x", "alice", "bob", "carol"],
        )

    def test_set_password_hash(self):
        """
        C{set_password_hash} replaces the hash and moves C{updated} to the
        given time, keeping C{created}; other accounts are untouched.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.store.add_user("bob", HASH, 1500.0)
        self.store.set_password_hash("alice", OTHER_HASH, 2000.0)
        self.assertEqual(self.store.hash_for("alice"), OTHER_HASH)
        self.assertEqual(self.store.hash_for("bob"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [
                UserRecord("alice", HASH_SCHEME, 1000.0, 2000.0),
                UserRecord("bob", HASH_SCHEME, 1500.0, 1500.0),
            ],
        )

    def test_set_password_hash_unknown_user(self):
        """
        Setting the hash of a name without an account raises L{UnknownUser}
        and creates nothing.
        """
        self.assertRaises(
            UnknownUser, self.store.set_password_hash, "alice", HASH, 1000.0
        )
        self.assertEqual(self.store.list_users(), [])

    def test_remove_user(self):
        """
        A removed account is gone from C{hash_for} and C{list_users}, other
        accounts stay, and the name can be added again.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.store.add_user("bob", HASH, 1000.0)
        self.store.remove_user("alice")
        self.assertIsNone(self.store.hash_for("alice"))
        self.assertEqual(
            [record.username for record in self.store.list_users()], ["bob"]
        )
        self.store.add_user("alice", OTHER_HASH, 3000.0)
        self.assertEqual(self.store.hash_for("alice"), OTHER_HASH)

    def test_remove_unknown_user(self):
        """
        Removing a name without an account raises L{UnknownUser}.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertRaises(UnknownUser, self.store.remove_user, "bob")
        self.assertEqual(self.store.hash_for("alice"), HASH)

    def test_add_unsupported_scheme(self):
        """
        An account whose hash is of no scheme SUTO can verify is refused
        with L{UnsupportedScheme}, and nothing is stored.
        """
        self.assertEqual(
            not_refused(
                UnsupportedScheme,
                lambda password_hash: self.store.add_user(
                    "alice", password_hash, 1000.0
                ),
                UNSUPPORTED_HASHES,
            ),
            [],
        )
        self.assertEqual(self.store.list_users(), [])

    def test_set_unsupported_scheme(self):
        """
        Replacing a hash with one of no scheme SUTO can verify is refused
        with L{UnsupportedScheme}, and the old hash stays.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertEqual(
            not_refused(
                UnsupportedScheme,
                lambda password_hash: self.store.set_password_hash(
                    "alice", password_hash, 2000.0
                ),
                UNSUPPORTED_HASHES,
            ),
            [],
        )
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [UserRecord("alice", HASH_SCHEME, 1000.0, 1000.0)],
        )

    def test_bad_names(self):
        """
        Every method that takes a name raises L{ValueError} for one the wire
        could not carry (or that is not a L{str}), and stores nothing.
        """
        calls = {
            "add_user": lambda name: self.store.add_user(name, HASH, 1000.0),
            "set_password_hash": lambda name: self.store.set_password_hash(
                name, HASH, 1000.0
            ),
            "remove_user": self.store.remove_user,
            "hash_for": self.store.hash_for,
        }
        for method, call in calls.items():
            self.assertEqual(
                (method, not_refused(ValueError, call, BAD_NAMES)), (method, [])
            )
        self.assertEqual(self.store.list_users(), [])

    def test_edge_names(self):
        """
        Names at the edges of the rule (one or 64 characters, starting with
        C{_} or C{.}, ending with C{-}) are accepted.
        """
        for name in EDGE_NAMES:
            self.store.add_user(name, HASH, 1000.0)
        self.assertEqual(
            [record.username for record in self.store.list_users()],
            sorted(EDGE_NAMES),
        )

    def test_closed(self):
        """
        After C{close}, every method, C{close} included, raises
        L{StoreError}.
        """
        store = self.make_store()
        store.add_user("alice", HASH, 1000.0)
        store.close()
        calls = {
            "add_user": lambda: store.add_user("bob", HASH, 1000.0),
            "set_password_hash": lambda: store.set_password_hash(
                "alice", HASH, 1000.0
            ),
            "remove_user": lambda: store.remove_user("alice"),
            "list_users": store.list_users,
            "hash_for": lambda: store.hash_for("alice"),
            "close": store.close,
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
