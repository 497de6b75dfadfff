# -*- test-case-name: tests.store.test_memory -*-
"""
Where and when profiles were seen, part of
L{suto_server.store.memory.MemoryStore}: their moves and offline spells,
the rest of L{suto_server.store.interfaces.IProfileStore}.
"""

from dataclasses import replace

from suto_server.store.checks import (
    check_page,
    check_time,
    check_username,
    checked_move,
    checked_offline_marking,
)


class Presence:
    """
    The profiles' moves and offline spells.
    """

    def record_move(
        self,
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
        seen=None,
    ):
        """
        See L{IProfileStore.record_move}.
        """
        move = checked_move(
            username,
            time,
            old_address,
            new_address,
            old_location_name,
            new_location_name,
            seen,
        )
        tables = self._open_tables()
        profile = tables.profiles.get(username)
        if profile is None or profile.last_address != (seen or old_address):
            return False
        tables.moves.setdefault(username, []).append(move)
        tables.profiles[username] = replace(
            profile, last_address=new_address, last_seen=time
        )
        return True

    def moves(self, username, newest=None, skip=0):
        """
        See L{IProfileStore.moves}.
        """
        check_username(username)
        check_page(newest, skip)
        moves = list(self._open_tables().moves.get(username, ()))
        return moves if newest is None else moves[::-1][skip : skip + newest]

    def silent_profiles(self, before):
        """
        See L{IProfileStore.silent_profiles}.
        """
        check_time("before", before)
        tables = self._open_tables()
        return sorted(
            username
            for username, profile in tables.profiles.items()
            if profile.last_seen < before and username not in tables.offline
        )

    def mark_offline(self, usernames, now, silent_before=None):
        """
        See L{IProfileStore.mark_offline}.
        """
        usernames = checked_offline_marking(usernames, now, silent_before)
        tables = self._open_tables()
        marked = []
        for username in usernames:
            profile = tables.profiles.get(username)
            if (
                profile is not None
                and username not in tables.offline
                and (silent_before is None or profile.last_seen < silent_before)
            ):
                tables.offline[username] = now
                marked.append(username)
        return marked

    def offline_profiles(self):
        """
        See L{IProfileStore.offline_profiles}.
        """
        return dict(self._open_tables().offline)

    def count_offline(self):
        """
        See L{IProfileStore.count_offline}.
        """
        return len(self._open_tables().offline)

    def offline_since(self, username):
        """
        See L{IProfileStore.offline_since}.
        """
        check_username(username)
        return self._open_tables().offline.get(username)

    def spent_offline_step(self, username):
        """
        See L{IProfileStore.spent_offline_step}.
        """
        check_username(username)
        return self._open_tables().offline_steps.get(username)
