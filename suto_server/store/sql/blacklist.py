# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres -*-
"""
The blacklist part of every SQL store (see L{suto_server.store.sql}): the
C{blacklist} table, behind L{suto_server.store.interfaces.IBlacklistStore}.
"""

from suto_server.store.checks import check_blacklist_entry, check_username
from suto_server.store.records import BlacklistEntry, RotationStart
from suto_server.store.sql.rows import (
    BLACKLIST_COLUMNS,
    PROFILE_COLUMNS,
    profile_from_row,
)

# The profile's row when there is one, a row of nulls when there is none
# (the blacklist entry outlives its profile): the one row the marks ride
# on comes from the left join's single-row side.
_ROTATION_START = (
    "SELECT EXISTS (SELECT 1 FROM blacklist WHERE username = ?),"
    " (SELECT since FROM offline WHERE username = ?),"
    f" {PROFILE_COLUMNS}"
    " FROM (SELECT 1 AS one) AS one"
    " LEFT JOIN profiles ON profiles.username = ?"
)


class Blacklist:
    """
    The profiles refused for good, over the C{blacklist} table.
    """

    def standing(self, username):
        """
        See L{IBlacklistStore.standing}: one query for both marks.
        """
        check_username(username)
        [(blacklisted, since)] = self._read(
            "SELECT EXISTS (SELECT 1 FROM blacklist WHERE username = ?), "
            "(SELECT since FROM offline WHERE username = ?)",
            (username, username),
        )
        return bool(blacklisted), since

    def rotation_start(self, username):
        """
        See L{IBlacklistStore.rotation_start}: one query, its marks as in
        L{standing}, the profile joined to them.
        """
        check_username(username)
        [(blacklisted, since, *profile)] = self._read(
            _ROTATION_START, (username, username, username)
        )
        return RotationStart(
            profile=profile_from_row(profile) if profile[0] is not None else None,
            blacklisted=bool(blacklisted),
            offline_since=since,
        )

    def add_to_blacklist(self, entry):
        """
        See L{IBlacklistStore.add_to_blacklist}.
        """
        check_blacklist_entry(entry)
        return (
            self._write(
                f"INSERT INTO blacklist ({BLACKLIST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (
                    entry.username,
                    entry.time,
                    entry.reason,
                    entry.source,
                    entry.alert,
                ),
            )
            > 0
        )

    def blacklist_entry(self, username):
        """
        See L{IBlacklistStore.blacklist_entry}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {BLACKLIST_COLUMNS} FROM blacklist WHERE username = ?",
            (username,),
        )
        return BlacklistEntry(*rows[0]) if rows else None

    def list_blacklist(self):
        """
        See L{IBlacklistStore.list_blacklist}.
        """
        rows = self._read(
            f"SELECT {BLACKLIST_COLUMNS} FROM blacklist ORDER BY username"
        )
        return [BlacklistEntry(*row) for row in rows]

    def count_blacklisted(self):
        """
        See L{IBlacklistStore.count_blacklisted}.
        """
        [(count,)] = self._read("SELECT COUNT(*) FROM blacklist")
        return count

    def unblock(self, username):
        """
        See L{IBlacklistStore.unblock}.
        """
        check_username(username)
        with self._transaction("lifting a blacklist entry") as connection:
            lifted = connection.execute(
                "DELETE FROM blacklist WHERE username = ?", (username,)
            ).rowcount
            if lifted:
                connection.execute(
                    "DELETE FROM profiles WHERE username = ?", (username,)
                )
        return lifted > 0
