# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres -*-
"""
The enrollment windows part of every SQL store (see
L{suto_server.store.sql}): the C{windows} table, behind L{suto_server.store.interfaces.IWindowStore}.
"""

from suto_server.store.checks import check_profile, check_username, check_window
from suto_server.store.errors import ProfileExists, UnknownWindow
from suto_server.store.sql.rows import (
    PROFILE_COLUMNS,
    WINDOW_COLUMNS,
    placeholders,
    profile_row,
    window_from_row,
    window_row,
)

# A reopened window replaces every column of the one before.
_REPLACE_WINDOW = ", ".join(
    f"{column} = excluded.{column}"
    for column in WINDOW_COLUMNS.replace(" ", "").split(",")[1:]
)


class Windows:
    """
    The open enrollment windows, over the C{windows} table; using one up
    stores its profile in the same transaction.
    """

    def open_window(self, window):
        """
        See L{IWindowStore.open_window}.

        @raise suto_server.core.schemes.UnsupportedScheme: the one-time
            password's hash is not one SUTO can verify.
        """
        check_window(window)
        self._write(
            f"INSERT INTO windows ({WINDOW_COLUMNS})"
            f" VALUES ({placeholders(WINDOW_COLUMNS)})"
            f" ON CONFLICT (username) DO UPDATE SET {_REPLACE_WINDOW}",
            window_row(window),
        )

    def get_window(self, username):
        """
        See L{IWindowStore.get_window}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {WINDOW_COLUMNS} FROM windows WHERE username = ?",
            (username,),
        )
        return window_from_row(rows[0]) if rows else None

    def list_windows(self):
        """
        See L{IWindowStore.list_windows}.
        """
        rows = self._read(
            f"SELECT {WINDOW_COLUMNS} FROM windows ORDER BY username"
        )
        return [window_from_row(row) for row in rows]

    def record_failed_attempt(self, username):
        """
        See L{IWindowStore.record_failed_attempt}.
        """
        check_username(username)
        with self._transaction("counting a failed attempt") as connection:
            rows = connection.execute(
                "UPDATE windows SET attempts = attempts + 1"
                " WHERE username = ? RETURNING attempts",
                (username,),
            ).fetchall()
        if not rows:
            raise UnknownWindow(f"no enrollment window for {username}")
        return rows[0][0]

    def close_window(self, username):
        """
        See L{IWindowStore.close_window}.
        """
        check_username(username)
        return (
            self._write("DELETE FROM windows WHERE username = ?", (username,))
            > 0
        )

    def complete_enrollment(self, profile, otp_hash=None):
        """
        See L{IWindowStore.complete_enrollment}.
        """
        check_profile(profile)
        username = profile.username
        where, parameters = "username = ?", (username,)
        if otp_hash is not None:
            where, parameters = where + " AND otp_hash = ?", (username, otp_hash)
        with self._transaction("completing an enrollment") as connection:
            rows = connection.execute(
                f"DELETE FROM windows WHERE {where} RETURNING replace_profile",
                parameters,
            ).fetchall()
            if not rows:
                raise UnknownWindow(f"no enrollment window for {username}")
            if rows[0][0]:
                connection.execute(
                    "DELETE FROM profiles WHERE username = ?", (username,)
                )
            added = connection.execute(
                f"INSERT INTO profiles ({PROFILE_COLUMNS})"
                f" VALUES ({placeholders(PROFILE_COLUMNS)})"
                " ON CONFLICT (username) DO NOTHING",
                profile_row(profile),
            ).rowcount
            if added == 0:
                raise ProfileExists(f"{username} is already enrolled")
