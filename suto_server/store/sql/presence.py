# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres,tests.store.sqlite.test_sweep_index -*-
"""
Where and when profiles were seen, part of every SQL store (see
L{suto_server.store.sql}): the C{moves}, C{offline}, C{offline_steps} and
C{reconnect_attempts} tables, the rest of
L{suto_server.store.interfaces.IProfileStore}.
"""

from suto_server.store.checks import (
    check_page,
    check_time,
    check_username,
    checked_move,
    checked_offline_marking,
)
from suto_server.store.records import Move, SpentOfflineStep
from suto_server.store.sql.rows import MOVE_COLUMNS

#: The condition that a rotation's compare-and-swap applied, true once the
#: profile holds its new key (the parameters: user, new key id, new
#: generation).
_HOLDS_NEW_KEY = (
    "EXISTS (SELECT 1 FROM profiles WHERE username = ? AND key_id = ?"
    " AND generation = ?)"
)


def attempt_recorded(connection, commit):
    """
    Has C{commit}'s reconnection attempt committed a rotation before?
    Within the caller's transaction, before the commit is applied.
    """
    if commit.attempt_nonce is None:
        return False
    return bool(
        connection.execute(
            "SELECT 1 FROM reconnect_attempts WHERE username = ? AND nonce = ?",
            (commit.username, commit.attempt_nonce),
        ).fetchall()
    )


def end_offline_spell(connection, commit):
    """
    A rotation committed: the profile is online again, and the offline
    step it reconnected with, if any, is spent, with the key the rotation
    made and the attempt's nonce; the nonces of older steps are forgotten,
    since no older step is accepted again.  Within the caller's
    transaction, after the rotation's compare-and-swap: each statement
    applies only if the profile now holds the rotation's new key (so
    applies nothing when the swap did not), which lets them be sent
    without waiting for the swap's answer.
    """
    applied = (commit.username, commit.new_key_id, commit.new_generation)
    connection.execute(
        f"DELETE FROM offline WHERE username = ? AND {_HOLDS_NEW_KEY}",
        (commit.username, *applied),
    )
    if commit.offline_step is None:
        return
    connection.execute(
        "INSERT INTO offline_steps (username, step, key_id)"
        f" SELECT ?, ?, ? WHERE {_HOLDS_NEW_KEY}"
        " ON CONFLICT (username) DO UPDATE"
        " SET key_id = CASE WHEN excluded.step >= offline_steps.step"
        " THEN excluded.key_id ELSE offline_steps.key_id END,"
        " step = CASE WHEN excluded.step > offline_steps.step"
        " THEN excluded.step ELSE offline_steps.step END",
        (commit.username, commit.offline_step, commit.new_key_id, *applied),
    )
    if commit.attempt_nonce is not None:
        connection.execute(
            "INSERT INTO reconnect_attempts (username, step, nonce)"
            f" SELECT ?, ?, ? WHERE {_HOLDS_NEW_KEY}",
            (commit.username, commit.offline_step, commit.attempt_nonce, *applied),
        )
    # Needs no condition: the spent step only grows, so the nonces older
    # than it are never needed again whether or not this rotation applied.
    connection.execute(
        "DELETE FROM reconnect_attempts WHERE username = ? AND step <"
        " (SELECT step FROM offline_steps WHERE username = ?)",
        (commit.username, commit.username),
    )


class Presence:
    """
    The profiles' moves and offline spells, over the C{moves},
    C{offline} and C{offline_steps} tables.
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
        See L{IProfileStore.record_move}.  The conditional C{UPDATE} is
        the compare-and-swap: under PostgreSQL's READ COMMITTED, a second
        one waits on the row the first updated and then finds its address
        changed; SQLite writers take turns.
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
        with self._transaction("recording a move") as connection:
            moved = connection.execute(
                "UPDATE profiles SET last_address = ?, last_seen = ?"
                " WHERE username = ? AND last_address = ?",
                (move.new_address, move.time, move.username, seen or old_address),
            ).rowcount
            if not moved:
                return False
            connection.execute(
                f"INSERT INTO moves ({MOVE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    move.username,
                    move.time,
                    move.old_address,
                    move.new_address,
                    move.old_location_name,
                    move.new_location_name,
                ),
            )
        return True

    def moves(self, username, newest=None, skip=0):
        """
        See L{IProfileStore.moves}.
        """
        check_username(username)
        check_page(newest, skip)
        statement = f"SELECT {MOVE_COLUMNS} FROM moves WHERE username = ?"
        arguments = (username,)
        if newest is None:
            statement += " ORDER BY id"
        else:
            statement += " ORDER BY id DESC LIMIT ? OFFSET ?"
            arguments += (newest, skip)
        return [Move(*row) for row in self._read(statement, arguments)]

    def silent_profiles(self, before):
        """
        See L{IProfileStore.silent_profiles}.
        """
        check_time("before", before)
        # Sorted here rather than by an ORDER BY: SQLite would meet that
        # order by walking the whole table in its primary key's order,
        # every sweep, instead of searching C{profiles_by_last_seen} for
        # the few profiles that fell silent (18 ms against 0.003 ms at
        # 100,000 profiles, none silent: bench/RESULTS.md, "Issue 21: the
        # idle fleet, measured again").
        rows = self._read(
            "SELECT username FROM profiles WHERE last_seen < ?"
            " AND username NOT IN (SELECT username FROM offline)",
            (before,),
        )
        return sorted(username for (username,) in rows)

    def mark_offline(self, usernames, now, silent_before=None):
        """
        See L{IProfileStore.mark_offline}.
        """
        usernames = checked_offline_marking(usernames, now, silent_before)
        marked = []
        with self._transaction("marking profiles offline") as connection:
            for username in usernames:
                added = connection.execute(
                    "INSERT INTO offline (username, since)"
                    " SELECT username, ? FROM profiles WHERE username = ?"
                    " AND (CAST(? AS DOUBLE PRECISION) IS NULL OR last_seen < ?)"
                    " ON CONFLICT (username) DO NOTHING",
                    (now, username, silent_before, silent_before),
                ).rowcount
                if added:
                    marked.append(username)
        return marked

    def offline_profiles(self):
        """
        See L{IProfileStore.offline_profiles}.
        """
        return dict(self._read("SELECT username, since FROM offline"))

    def count_offline(self):
        """
        See L{IProfileStore.count_offline}.
        """
        [(count,)] = self._read("SELECT COUNT(*) FROM offline")
        return count

    def offline_since(self, username):
        """
        See L{IProfileStore.offline_since}.
        """
        check_username(username)
        rows = self._read(
            "SELECT since FROM offline WHERE username = ?", (username,)
        )
        return rows[0][0] if rows else None

    def spent_offline_step(self, username):
        """
        See L{IProfileStore.spent_offline_step}.
        """
        check_username(username)
        rows = self._read(
            "SELECT s.step, s.key_id, a.nonce FROM offline_steps s"
            " LEFT JOIN reconnect_attempts a"
            " ON a.username = s.username AND a.step = s.step"
            " WHERE s.username = ?",
            (username,),
        )
        if not rows:
            return None
        step, key_id, _ = rows[0]
        nonces = frozenset(bytes(nonce) for *_, nonce in rows if nonce is not None)
        return SpentOfflineStep(step, key_id, nonces)
