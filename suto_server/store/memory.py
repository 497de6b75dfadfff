"""
An account store kept in a dictionary, for tests that need a store but not
a file.  It behaves exactly as L{suto_server.store.sqlite.SQLiteStore}
does; the shared store test suite holds the two together.
"""

from dataclasses import replace

from zope.interface import implementer

from suto_server.interfaces import IUserStore
from suto_server.schemes import identify
from suto_server.store.errors import StoreError, UnknownUser, UserExists
from suto_server.store.records import UserRecord, check_username


@implementer(IUserStore)
class MemoryStore:
    """
    Accounts in memory, lost when the object goes.
    """

    def __init__(self):
        # username -> (password hash, UserRecord); None once closed.
        self._accounts = {}

    def _open_accounts(self):
        """
        @return: the accounts.
        @raise StoreError: the store has been closed.
        """
        if self._accounts is None:
            raise StoreError("the store is closed")
        return self._accounts

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
        accounts = self._open_accounts()
        if username in accounts:
            raise UserExists(f"user {username} already exists")
        accounts[username] = (
            password_hash,
            UserRecord(username, scheme, now, now),
        )

    def set_password_hash(self, username, password_hash, now):
        """
        See L{IUserStore.set_password_hash}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
        accounts = self._open_accounts()
        if username not in accounts:
            raise UnknownUser(f"no user {username}")
        _, record = accounts[username]
        accounts[username] = (
            password_hash,
            replace(record, scheme=scheme, updated=now),
        )

    def remove_user(self, username):
        """
        See L{IUserStore.remove_user}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        accounts = self._open_accounts()
        if accounts.pop(username, None) is None:
            raise UnknownUser(f"no user {username}")

    def list_users(self):
        """
        See L{IUserStore.list_users}.
        """
        accounts = self._open_accounts()
        return [accounts[name][1] for name in sorted(accounts)]

    def hash_for(self, username):
        """
        See L{IPasswordHashSource.hash_for}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        account = self._open_accounts().get(username)
        return None if account is None else account[0]

    def close(self):
        """
        See L{IUserStore.close}.
        """
        self._open_accounts()
        self._accounts = None
