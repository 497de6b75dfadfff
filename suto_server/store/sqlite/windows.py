# -*- test-case-name: tests.store.test_sqlite -*-
"""
The enrollment windows part of L{suto_server.store.sqlite.SQLiteStore}:
the C{windows} table, behind L{suto_server.store.interfaces.IWindowStore}.
"""

from suto_server.store.checks import check_profile, check_username, check_window
from suto_server.store.errors import ProfileExists, UnknownWindow
from suto_server.store.records import EnrollmentWindow
from suto_server.store.sqlite.profiles import (
    PROFILE_COLUMNS,
    PROFILE_PARAMETERS,
    profile_row,
)

# A window's networks are kept as one text column; no network in CIDR
# notation contains this.
_NETWORK_SEPARATOR = ","

_WINDOW_COLUMNS = (
    "username, otp_hash, networks, location_name, opened_at, deadline,"
    " attempts, max_attempts, replace_profile"
)


def _window_row(window):
    """
    @return: the C{windows} row of C{window}, in L{_WINDOW_COLUMNS} order.
    """
    return (
        window.username,
        window.otp_hash,
        _NETWORK_SEPARATOR.join(window.networks),
        window.location_name,
        window.opened_at,
        window.deadline,
        window.attempts,
        window.max_attempts,
        int(window.replace),
    )


def _window_from_row(row):
    """
    @return: the L{EnrollmentWindow} a C{windows} row read with
        L{_WINDOW_COLUMNS} holds.
    """
    (
        username,
        otp_hash,
        networks,
        location_name,
        opened_at,
        deadline,
        attempts,
        max_attempts,
        replace_profile,
    ) = row
    return EnrollmentWindow(
        username=username,
        otp_hash=otp_hash,
        networks=tuple(networks.split(_NETWORK_SEPARATOR)),
        location_name=location_name,
        opened_at=opened_at,
        deadline=deadline,
        attempts=attempts,
        max_attempts=max_attempts,
        replace=bool(replace_profile),
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
            f"INSERT OR REPLACE INTO windows ({_WINDOW_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _window_row(window),
        )

    def get_window(self, username):
        """
        See L{IWindowStore.get_window}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM windows WHERE username = ?",
            (username,),
        )
        return _window_from_row(rows[0]) if rows else None

    def list_windows(self):
        """
        See L{IWindowStore.list_windows}.
        """
        rows = self._read(
            f"SELECT {_WINDOW_COLUMNS} FROM windows ORDER BY username"
        )
        return [_window_from_row(row) for row in rows]

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

    def complete_enrollment(self, profile):
        """
        See L{IWindowStore.complete_enrollment}.
        """
        check_profile(profile)
        username = profile.username
        with self._transaction("completing an enrollment") as connection:
            rows = connection.execute(
                "DELETE FROM windows WHERE username = ?"
                " RETURNING replace_profile",
                (username,),
            ).fetchall()
            if not rows:
                raise UnknownWindow(f"no enrollment window for {username}")
            if rows[0][0]:
                connection.execute(
                    "DELETE FROM profiles WHERE username = ?", (username,)
                )
            added = connection.execute(
                f"INSERT INTO profiles ({PROFILE_COLUMNS})"
                f" VALUES ({PROFILE_PARAMETERS})"
                " ON CONFLICT (username) DO NOTHING",
                profile_row(profile),
            ).rowcount
            if added == 0:
                raise ProfileExists(f"{username} is already enrolled")
