# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres -*-
"""
The accounts part of every SQL store (see L{suto_server.store.sql}): the
C{users} table, behind L{suto_server.store.interfaces.IUserStore}.
"""

from suto_server.store.checks import check_account, check_username
from suto_server.store.errors import UnknownUser, UserExists
from suto_server.store.records import UserRecord


class Accounts:
    """
    The password accounts, over the C{users} table.
    """

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.
        """
        scheme = check_account(username, password_hash)
        added = self._write(
            "INSERT INTO users"
            " (username, password_hash, scheme, created, updated)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (username) DO NOTHING",
            (username, password_hash, scheme, now, now),
        )
        if added == 0:
            raise UserExists(f"user {username} already exists")

    def set_password_hash(self, username, password_hash, now):
        """
        See L{IUserStore.set_password_hash}.
        """
        scheme = check_account(username, password_hash)
        changed = self._write(
            "UPDATE users SET password_hash = ?, scheme = ?, updated = ?"
            " WHERE username = ?",
            (password_hash, scheme, now, username),
        )
        if changed == 0:
            raise UnknownUser(f"no user {username}")

    def remove_user(self, username):
        """
        See L{IUserStore.remove_user}.
        """
        check_username(username)
        removed = self._write(
            "DELETE FROM users WHERE username = ?", (username,)
        )
        if removed == 0:
            raise UnknownUser(f"no user {username}")

    def list_users(self):
        """
        See L{IUserStore.list_users}.
        """
        rows = self._read(
            "SELECT username, scheme, created, updated FROM users"
            " ORDER BY username"
        )
        return [UserRecord(*row) for row in rows]

    def hash_for(self, username):
        """
        See L{IPasswordHashSource.hash_for}.
        """
        check_username(username)
        rows = self._read(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None
