# -*- test-case-name: tests.store.test_memory -*-
"""
The blacklist part of L{suto_server.store.memory.MemoryStore}, behind
L{suto_server.store.interfaces.IBlacklistStore}.
"""

from suto_server.store.checks import check_blacklist_entry, check_username
from suto_server.store.records import RotationStart


class Blacklist:
    """
    The profiles refused for good.
    """

    def standing(self, username):
        """
        See L{IBlacklistStore.standing}.
        """
        check_username(username)
        tables = self._open_tables()
        return username in tables.blacklist, tables.offline.get(username)

    def rotation_start(self, username):
        """
        See L{IBlacklistStore.rotation_start}.
        """
        check_username(username)
        tables = self._open_tables()
        return RotationStart(
            profile=tables.profiles.get(username),
            blacklisted=username in tables.blacklist,
            offline_since=tables.offline.get(username),
        )

    def add_to_blacklist(self, entry):
        """
        See L{IBlacklistStore.add_to_blacklist}.
        """
        check_blacklist_entry(entry)
        blacklist = self._open_tables().blacklist
        if entry.username in blacklist:
            return False
        blacklist[entry.username] = entry
        return True

    def blacklist_entry(self, username):
        """
        See L{IBlacklistStore.blacklist_entry}.
        """
        check_username(username)
        return self._open_tables().blacklist.get(username)

    def list_blacklist(self):
        """
        See L{IBlacklistStore.list_blacklist}.
        """
        blacklist = self._open_tables().blacklist
        return [blacklist[username] for username in sorted(blacklist)]

    def count_blacklisted(self):
        """
        See L{IBlacklistStore.count_blacklisted}.
        """
        return len(self._open_tables().blacklist)

    def unblock(self, username):
        """
        See L{IBlacklistStore.unblock}.
        """
        check_username(username)
        tables = self._open_tables()
        if tables.blacklist.pop(username, None) is None:
            return False
        tables.forget_profile(username)
        return True
