# -*- test-case-name: tests.store.test_sqlite,tests.store.test_postgres,tests.store.sqlite.test_retired_index -*-
"""
The profiles part of every SQL store (see L{suto_server.store.sql}): the
C{profiles} and C{retired_keys} tables, and the key rotation that changes
them with a compare-and-swap on the key ids (see
L{suto_server.store.interfaces.IProfileStore}).

Each compare-and-swap reads the profile with the store's C{_LOCK_READ}
clause (a rotation's, inside its C{INSERT ... SELECT} of the retired
key), so that no other writer changes the row between the read and the
write: SQLite needs none, its write transactions holding the whole
database, and PostgreSQL reads C{FOR UPDATE}, which keeps the row locked
until the transaction ends.
"""

from suto_server.store.checks import (
    check_key_id,
    check_key_use,
    check_locations_page,
    check_rotation_commit,
    check_username,
)
from suto_server.store.errors import UnknownProfile
from suto_server.store.records import RETIRED_KEY_HISTORY
from suto_server.store.sql.presence import attempt_recorded, end_offline_spell
from suto_server.store.sql.rows import PROFILE_COLUMNS, profile_from_row


def _trim_retired(connection, username):
    """
    Forget all but the newest L{RETIRED_KEY_HISTORY} retired keys of
    C{username}'s profile, within the caller's transaction.

    One range of the C{retired_keys_by_user} index: the scalar subquery
    walks the profile's ids down from the newest to the first one too old
    to keep (or finds none, and the comparison with C{NULL} deletes
    nothing), and the C{DELETE} takes every id up to it.  A rotation's
    commit runs this every time, and the history is full in every
    profile that rotated 17 times: written as C{id NOT IN} the newest ids
    it built a list of them and probed it for each of the profile's keys,
    6.3 against 2.6 µs a rotation on SQLite (bench/RESULTS.md, "Issue 21:
    the rotation's statements").
    """
    connection.execute(
        "DELETE FROM retired_keys WHERE username = ? AND id <="
        " (SELECT id FROM retired_keys WHERE username = ?"
        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
        (username, username, RETIRED_KEY_HISTORY),
    )


def _retire(connection, username, key_id, now):
    """
    Add C{key_id} to the retired keys of C{username}'s profile, forgetting
    all but the newest L{RETIRED_KEY_HISTORY} of them, within the caller's
    transaction.
    """
    connection.execute(
        "INSERT INTO retired_keys (username, key_id, retired_at)"
        " VALUES (?, ?, ?)",
        (username, key_id, now),
    )
    _trim_retired(connection, username)


def _commit_one(connection, commit, lock_read):
    """
    Apply one rotation within the caller's transaction, if the profile's
    current key is still the one it was derived from.

    No statement here waits for the answer of the one before (but the
    reconnection attempt's check, for a commit that has one): the
    compare-and-swap is each statement's own condition, not a read whose
    rows decide what to send next, so on PostgreSQL, whose batches are
    pipelined, a whole batch costs one round trip.  The previous key is
    retired by an C{INSERT ... SELECT} that reads the profile with
    C{lock_read} under the compare-and-swap's condition, so it retires
    nothing unless the rotation applies, and holds the row until the
    transaction ends; the C{UPDATE} carries the same condition and says,
    by its count of rows, whether it applied; the end of an offline spell
    applies only to a profile now holding the new key.

    @param commit: a checked L{RotationCommit}.
    @param lock_read: the store's C{_LOCK_READ} clause.
    @return: the C{UPDATE}'s cursor, whose C{rowcount} once the
        transaction is over says whether the rotation applied, or L{None}
        when its reconnection attempt committed a rotation before.
    """
    if attempt_recorded(connection, commit):
        return None
    current = (commit.username, commit.expected_key_id, commit.new_generation - 1)
    connection.execute(
        "INSERT INTO retired_keys (username, key_id, retired_at)"
        " SELECT username, previous_key_id, ? FROM profiles"
        " WHERE username = ? AND key_id = ? AND generation = ?"
        f" AND previous_key_id IS NOT NULL{lock_read}",
        (commit.now, *current),
    )
    _trim_retired(connection, commit.username)
    update = connection.execute(
        "UPDATE profiles SET previous_key_sealed = key_sealed,"
        " previous_key_id = key_id, key_sealed = ?, key_id = ?,"
        " generation = ?, current_confirmed = 0, rotated_at = ?,"
        " last_seen = ?, last_address = ?, rotation_failures = 0"
        " WHERE username = ? AND key_id = ? AND generation = ?",
        (
            commit.new_key_sealed,
            commit.new_key_id,
            commit.new_generation,
            commit.now,
            commit.now,
            commit.address,
            *current,
        ),
    )
    end_offline_spell(connection, commit)
    return update


class Profiles:
    """
    The enrolled profiles and their keys, over the C{profiles} and
    C{retired_keys} tables.
    """

    def get_profile(self, username):
        """
        See L{IProfileStore.get_profile}.
        """
        check_username(username)
        rows = self._read(
            f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE username = ?",
            (username,),
        )
        return profile_from_row(rows[0]) if rows else None

    def list_profiles(self):
        """
        See L{IProfileStore.list_profiles}.
        """
        rows = self._read(
            f"SELECT {PROFILE_COLUMNS} FROM profiles ORDER BY username"
        )
        return [profile_from_row(row) for row in rows]

    def locations(self, after, count):
        """
        See L{IProfileStore.locations}.  The page after a name is read
        from the primary key's index, so each page costs the same however
        far into the table it is; every name sorts after the empty one.
        """
        check_locations_page(after, count)
        rows = self._read(
            "SELECT username, last_address FROM profiles WHERE username > ?"
            " ORDER BY username LIMIT ?",
            ("" if after is None else after, count),
        )
        return [(username, address) for username, address in rows]

    def remove_profile(self, username):
        """
        See L{IProfileStore.remove_profile}.
        """
        check_username(username)
        return (
            self._write("DELETE FROM profiles WHERE username = ?", (username,))
            > 0
        )

    def commit_rotations(self, rotations):
        """
        See L{IProfileStore.commit_rotations}.
        """
        rotations = list(rotations)
        for commit in rotations:
            check_rotation_commit(commit)
        with self._transaction("committing rotations") as connection:
            updates = [
                _commit_one(connection, commit, self._LOCK_READ)
                for commit in rotations
            ]
        # Read once the transaction committed: on PostgreSQL the counts
        # arrive with the commit's answer.
        return [update is not None and update.rowcount == 1 for update in updates]

    def confirm_current(self, username, key_id, now, address):
        """
        See L{IProfileStore.confirm_current}.
        """
        check_key_use(username, key_id, now, address)
        with self._transaction("confirming a key") as connection:
            rows = connection.execute(
                "SELECT previous_key_id FROM profiles"
                f" WHERE username = ? AND key_id = ?{self._LOCK_READ}",
                (username, key_id),
            ).fetchall()
            if not rows:
                return False
            (previous_key_id,) = rows[0]
            if previous_key_id is not None:
                _retire(connection, username, previous_key_id, now)
            connection.execute(
                "UPDATE profiles SET current_confirmed = 1,"
                " previous_key_sealed = NULL, previous_key_id = NULL,"
                " last_seen = ?, last_address = ? WHERE username = ?",
                (now, address, username),
            )
        return True

    def roll_back(self, username, key_id, now, address):
        """
        See L{IProfileStore.roll_back}.
        """
        check_key_use(username, key_id, now, address)
        with self._transaction("rolling back a rotation") as connection:
            rows = connection.execute(
                "SELECT key_id FROM profiles WHERE username = ?"
                " AND previous_key_id = ? AND current_confirmed = 0"
                f"{self._LOCK_READ}",
                (username, key_id),
            ).fetchall()
            if not rows:
                return False
            _retire(connection, username, rows[0][0], now)
            connection.execute(
                "UPDATE profiles SET key_sealed = previous_key_sealed,"
                " key_id = previous_key_id, generation = generation - 1,"
                " previous_key_sealed = NULL, previous_key_id = NULL,"
                " current_confirmed = 1, last_seen = ?, last_address = ?"
                " WHERE username = ?",
                (now, address, username),
            )
        return True

    def record_rotation_failure(self, username):
        """
        See L{IProfileStore.record_rotation_failure}.
        """
        check_username(username)
        with self._transaction("counting a failed rotation") as connection:
            rows = connection.execute(
                "UPDATE profiles SET rotation_failures = rotation_failures + 1"
                " WHERE username = ? RETURNING rotation_failures",
                (username,),
            ).fetchall()
        if not rows:
            raise UnknownProfile(f"no profile for {username}")
        return rows[0][0]

    def is_retired(self, username, key_id):
        """
        See L{IProfileStore.is_retired}.
        """
        check_username(username)
        check_key_id(key_id)
        rows = self._read(
            "SELECT 1 FROM retired_keys WHERE username = ? AND key_id = ?",
            (username, key_id),
        )
        return bool(rows)
