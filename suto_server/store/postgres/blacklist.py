"""
The blacklist part of L{suto_server.store.postgres.PostgresStore}: the
C{blacklist} table, behind L{suto_server.store.interfaces.IBlacklistStore}.
"""

from suto_server.store.checks import check_blacklist_entry, check_username
from suto_server.store.records import BlacklistEntry
from suto_server.store.rows import BLACKLIST_COLUMNS, placeholders


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
            "SELECT EXISTS (SELECT 1 FROM blacklist WHERE username = %s), "
            "(SELECT since FROM offline WHERE username = %s)",
            (username, username),
        )
        return blacklisted, since

    def add_to_blacklist(self, entry):
        """
        See L{IBlacklistStore.add_to_blacklist}.
        """
        check_blacklist_entry(entry)
        added = self._write(
            f"INSERT INTO blacklist ({BLACKLIST_COLUMNS})"
            f" VALUES ({placeholders(BLACKLIST_COLUMNS, '%s')})"
            " ON CONFLICT (username) DO NOTHING",
            (entry.username, entry.time, entry.reason, entry.source, entry.alert),
        )
        return added > 0

    def blacklist_entry(self, username):
        """
        See L{IBlacklistStore.blacklist_entry}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {BLACKLIST_COLUMNS} FROM blacklist WHERE username = %s",
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

    def unblock(self, username):
        """
        See L{IBlacklistStore.unblock}.
        """
        check_username(username)
        with self._transaction("lifting a blacklist entry") as connection:
            lifted = connection.execute(
                "DELETE FROM blacklist WHERE username = %s", (username,)
            ).rowcount
            if lifted:
                connection.execute(
                    "DELETE FROM profiles WHERE username = %s", (username,)
                )
        return lifted > 0
