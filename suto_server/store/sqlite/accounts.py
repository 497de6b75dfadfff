"""
The accounts part of L{suto_server.store.sqlite.SQLiteStore}: the
C{users} table, behind L{suto_server.store.interfaces.IUserStore}.
"""

from suto_server.core.schemes import identify
from suto_server.store.checks import check_username
from suto_server.store.errors import UnknownUser, UserExists
from suto_server.store.records import UserRecord


class Accounts:
    """
    The password accounts, over the C{users} table.
    """

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify, so the account could never log in.
        """
        check_username(username)
        scheme = identify(password_hash)
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

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
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

        @raise ValueError: C{username} is not a valid name.
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

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        rows = self._read(
            "SELECT password_hash FROM users WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None
