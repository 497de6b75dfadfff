# -*- test-case-name: tests.store.test_memory -*-
"""
The profiles part of L{suto_server.store.memory.MemoryStore}: the
profiles, their keys and the key rotation that changes them with a
compare-and-swap on the key ids (see
L{suto_server.store.interfaces.IProfileStore}).
"""

import heapq
from dataclasses import replace

from suto_server.store.checks import (
    check_key_id,
    check_key_use,
    check_locations_page,
    check_rotation_commit,
    check_username,
)
from suto_server.store.errors import UnknownProfile
from suto_server.store.records import SpentOfflineStep


def _commit_one(tables, commit):
    """
    Apply one rotation, if the profile's current key is still the one it
    was derived from.

    @param commit: a checked L{RotationCommit}.
    @return: whether it was applied.
    """
    profile = tables.profiles.get(commit.username)
    if (
        _attempt_recorded(tables, commit)
        or profile is None
        or profile.key_id != commit.expected_key_id
        or profile.generation != commit.new_generation - 1
    ):
        return False
    if profile.previous_key_id is not None:
        tables.retire(commit.username, profile.previous_key_id)
    tables.profiles[commit.username] = replace(
        profile,
        previous_key_sealed=profile.key_sealed,
        previous_key_id=profile.key_id,
        key_sealed=commit.new_key_sealed,
        key_id=commit.new_key_id,
        generation=commit.new_generation,
        current_confirmed=False,
        rotated_at=commit.now,
        last_seen=commit.now,
        last_address=commit.address,
        rotation_failures=0,
    )
    tables.offline.pop(commit.username, None)
    if commit.offline_step is not None:
        _spend_step(tables, commit)
    return True


def _attempt_recorded(tables, commit):
    """
    Has C{commit}'s reconnection attempt committed a rotation before?
    """
    spent = tables.offline_steps.get(commit.username)
    return (
        commit.attempt_nonce is not None
        and spent is not None
        and commit.attempt_nonce in spent.attempt_nonces
    )


def _spend_step(tables, commit):
    """
    Spend C{commit}'s offline step, as the SQL stores do: the newest step
    is kept, with the key its newest rotation made and the attempt nonces
    that committed in it; an older step changes nothing.
    """
    spent = tables.offline_steps.get(commit.username)
    nonces = {commit.attempt_nonce} - {None}
    if spent is None or commit.offline_step > spent.step:
        spent = SpentOfflineStep(
            commit.offline_step, commit.new_key_id, frozenset(nonces)
        )
    elif commit.offline_step == spent.step:
        spent = SpentOfflineStep(
            spent.step, commit.new_key_id, spent.attempt_nonces | nonces
        )
    tables.offline_steps[commit.username] = spent


class Profiles:
    """
    The enrolled profiles and their keys.
    """

    def get_profile(self, username):
        """
        See L{IProfileStore.get_profile}.
        """
        check_username(username)
        return self._open_tables().profiles.get(username)

    def list_profiles(self):
        """
        See L{IProfileStore.list_profiles}.
        """
        profiles = self._open_tables().profiles
        return [profiles[name] for name in sorted(profiles)]

    def locations(self, after, count):
        """
        See L{IProfileStore.locations}.
        """
        check_locations_page(after, count)
        profiles = self._open_tables().profiles
        names = heapq.nsmallest(
            count,
            (name for name in profiles if after is None or name > after),
        )
        return [(name, profiles[name].last_address) for name in names]

    def remove_profile(self, username):
        """
        See L{IProfileStore.remove_profile}.
        """
        check_username(username)
        return self._open_tables().forget_profile(username)

    def commit_rotations(self, rotations):
        """
        See L{IProfileStore.commit_rotations}.
        """
        rotations = list(rotations)
        for commit in rotations:
            check_rotation_commit(commit)
        tables = self._open_tables()
        return [_commit_one(tables, commit) for commit in rotations]

    def confirm_current(self, username, key_id, now, address):
        """
        See L{IProfileStore.confirm_current}.
        """
        check_key_use(username, key_id, now, address)
        tables = self._open_tables()
        profile = tables.profiles.get(username)
        if profile is None or profile.key_id != key_id:
            return False
        if profile.previous_key_id is not None:
            tables.retire(username, profile.previous_key_id)
        tables.profiles[username] = replace(
            profile,
            current_confirmed=True,
            previous_key_sealed=None,
            previous_key_id=None,
            last_seen=now,
            last_address=address,
        )
        return True

    def roll_back(self, username, key_id, now, address):
        """
        See L{IProfileStore.roll_back}.
        """
        check_key_use(username, key_id, now, address)
        tables = self._open_tables()
        profile = tables.profiles.get(username)
        if (
            profile is None
            or profile.current_confirmed
            or profile.previous_key_id != key_id
        ):
            return False
        tables.retire(username, profile.key_id)
        tables.profiles[username] = replace(
            profile,
            key_sealed=profile.previous_key_sealed,
            key_id=profile.previous_key_id,
            generation=profile.generation - 1,
            previous_key_sealed=None,
            previous_key_id=None,
            current_confirmed=True,
            last_seen=now,
            last_address=address,
        )
        return True

    def record_rotation_failure(self, username):
        """
        See L{IProfileStore.record_rotation_failure}.
        """
        check_username(username)
        profiles = self._open_tables().profiles
        profile = profiles.get(username)
        if profile is None:
            raise UnknownProfile(f"no profile for {username}")
        failures = profile.rotation_failures + 1
        profiles[username] = replace(profile, rotation_failures=failures)
        return failures

    def is_retired(self, username, key_id):
        """
        See L{IProfileStore.is_retired}.
        """
        check_username(username)
        check_key_id(key_id)
        return key_id in self._open_tables().retired.get(username, ())
