# -*- test-case-name: tests.store.test_memory -*-
"""
The accounts part of L{suto_server.store.memory.MemoryStore}, behind
L{suto_server.store.interfaces.IUserStore}.
"""

from dataclasses import replace

from suto_server.store.checks import check_account, check_username
from suto_server.store.errors import UnknownUser, UserExists
from suto_server.store.records import UserRecord


class Accounts:
    """
    The password accounts: user name to hash and L{UserRecord}.
    """

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.
        """
        scheme = check_account(username, password_hash)
        accounts = self._open_tables().accounts
        if username in accounts:
            raise UserExists(f"user {username} already exists")
        accounts[username] = (
            password_hash,
            UserRecord(username, scheme, now, now),
        )

    def set_password_hash(self, username, password_hash, now):
        """
        See L{IUserStore.set_password_hash}.
        """
        scheme = check_account(username, password_hash)
        accounts = self._open_tables().accounts
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
        """
        check_username(username)
        accounts = self._open_tables().accounts
        if accounts.pop(username, None) is None:
            raise UnknownUser(f"no user {username}")

    def list_users(self):
        """
        See L{IUserStore.list_users}.
        """
        accounts = self._open_tables().accounts
        return [accounts[name][1] for name in sorted(accounts)]

    def hash_for(self, username):
        """
        See L{IPasswordHashSource.hash_for}.
        """
        check_username(username)
        account = self._open_tables().accounts.get(username)
        return None if account is None else account[0]
