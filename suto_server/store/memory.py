"""
A store of accounts, enrollment and rotation state, moves and the audit
log kept in dictionaries,
for tests that need a store but not a file.  It behaves exactly as
L{suto_server.store.sqlite.SQLiteStore} does; the shared store test suite
holds the two together.

Each method checks everything it can refuse before changing anything, so
a refused call leaves the store as it was, as a rolled-back transaction
would; a batch of rotations, whose items cannot fail once checked, is
applied whole.
"""

from collections import deque
from dataclasses import replace

from zope.interface import implementer

from suto_server.core.schemes import identify
from suto_server.store import chain
from suto_server.store.errors import (
    ProfileExists,
    StoreError,
    UnknownProfile,
    UnknownUser,
    UnknownWindow,
    UserExists,
)
from suto_server.store.interfaces import IStore
from suto_server.store.records import (
    RETIRED_KEY_HISTORY,
    BlacklistEntry,
    Move,
    UserRecord,
    check_blacklist_entry,
    check_key_id,
    check_key_use,
    check_move,
    check_profile,
    check_rotation_commit,
    check_time,
    check_username,
    check_window,
    checked_audit_events,
)


class _Tables:
    """
    Everything a L{MemoryStore} holds.

    @ivar accounts: username -> (password hash, L{UserRecord}).
    @ivar windows: username -> L{EnrollmentWindow}.
    @ivar profiles: username -> L{Profile}.
    @ivar retired: username -> the ids of the keys its profile gave up,
        oldest first, in a L{deque} that keeps the newest
        L{RETIRED_KEY_HISTORY}; only profiles that retired a key have one.
    @ivar audit: the chained L{AuditEvent}s in the order they were
        appended.
    @ivar moves: username -> its L{Move}s, oldest first.
    @ivar offline: username -> the POSIX time its profile was marked
        offline.
    @ivar offline_steps: username -> the newest offline step its profile
        reconnected with.
    @ivar blacklist: username -> its L{BlacklistEntry}.
    """

    def __init__(self):
        self.accounts = {}
        self.windows = {}
        self.profiles = {}
        self.retired = {}
        self.audit = []
        self.moves = {}
        self.offline = {}
        self.offline_steps = {}
        self.blacklist = {}

    def retire(self, username, key_id):
        """
        Add C{key_id} to the retired keys of C{username}'s profile.
        """
        history = self.retired.setdefault(
            username, deque(maxlen=RETIRED_KEY_HISTORY)
        )
        history.append(key_id)

    def forget_profile(self, username):
        """
        Remove C{username}'s profile and its retired keys, as the database
        does through its foreign key.

        @return: whether there was a profile.
        """
        self.retired.pop(username, None)
        self.offline.pop(username, None)
        self.offline_steps.pop(username, None)
        return self.profiles.pop(username, None) is not None


def _commit_one(tables, commit):
    """
    Apply one rotation, if the profile's current key is still the one it
    was derived from.

    @param commit: a checked L{RotationCommit}.
    @return: whether it was applied.
    """
    profile = tables.profiles.get(commit.username)
    if (
        profile is None
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
        tables.offline_steps[commit.username] = max(
            commit.offline_step,
            tables.offline_steps.get(commit.username, commit.offline_step),
        )
    return True


@implementer(IStore)
class MemoryStore:
    """
    Accounts, enrollment and rotation state, moves and the audit log in
    memory, lost when the object goes.
    """

    def __init__(self, tables=None):
        """
        @param tables: the L{_Tables} of the store this is a sibling of;
            new empty ones unless given.
        """
        # None once closed.
        self._tables = _Tables() if tables is None else tables

    def sibling(self):
        """
        See L{IStore.sibling}: another store on the same tables.  The
        tables take no lock, which is enough for tests: they call one
        store at a time.
        """
        return type(self)(self._open_tables())

    def _open_tables(self):
        """
        @return: the tables.
        @raise StoreError: the store has been closed.
        """
        if self._tables is None:
            raise StoreError("the store is closed")
        return self._tables

    def add_user(self, username, password_hash, now):
        """
        See L{IUserStore.add_user}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
        accounts = self._open_tables().accounts
        if username in accounts:
            raise UserExists(f"user {username} already exists")
        accounts[username] = (
            password_hash,
            UserRecord(username, scheme, now, now),
        )

    def set_password_hash(self, username, password_hash, now):
        """
        See L{IUserStore.set_password_hash}.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify.
        """
        check_username(username)
        scheme = identify(password_hash)
        accounts = self._open_tables().accounts
        if username not in accounts:
            raise UnknownUser(f"no user {username}")
        _, record = accounts[username]
        accounts[username] = (
            password_hash,
            replace(record, scheme=scheme, updated=now),
        )

    def remove_user(self, username):
        """
        See L{IUserStore.remove_user}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        accounts = self._open_tables().accounts
        if accounts.pop(username, None) is None:
            raise UnknownUser(f"no user {username}")

    def list_users(self):
        """
        See L{IUserStore.list_users}.
        """
        accounts = self._open_tables().accounts
        return [accounts[name][1] for name in sorted(accounts)]

    def hash_for(self, username):
        """
        See L{IPasswordHashSource.hash_for}.

        @raise ValueError: C{username} is not a valid name.
        """
        check_username(username)
        account = self._open_tables().accounts.get(username)
        return None if account is None else account[0]

    def open_window(self, window):
        """
        See L{IWindowStore.open_window}.

        @raise suto_server.core.schemes.UnsupportedScheme: the one-time
            password's hash is not one SUTO can verify.
        """
        check_window(window)
        self._open_tables().windows[window.username] = window

    def get_window(self, username):
        """
        See L{IWindowStore.get_window}.
        """
        check_username(username)
        return self._open_tables().windows.get(username)

    def list_windows(self):
        """
        See L{IWindowStore.list_windows}.
        """
        windows = self._open_tables().windows
        return [windows[name] for name in sorted(windows)]

    def record_failed_attempt(self, username):
        """
        See L{IWindowStore.record_failed_attempt}.
        """
        check_username(username)
        windows = self._open_tables().windows
        window = windows.get(username)
        if window is None:
            raise UnknownWindow(f"no enrollment window for {username}")
        windows[username] = replace(window, attempts=window.attempts + 1)
        return window.attempts + 1

    def close_window(self, username):
        """
        See L{IWindowStore.close_window}.
        """
        check_username(username)
        return self._open_tables().windows.pop(username, None) is not None

    def complete_enrollment(self, profile):
        """
        See L{IWindowStore.complete_enrollment}.
        """
        check_profile(profile)
        tables = self._open_tables()
        username = profile.username
        window = tables.windows.get(username)
        if window is None:
            raise UnknownWindow(f"no enrollment window for {username}")
        if username in tables.profiles and not window.replace:
            raise ProfileExists(f"{username} is already enrolled")
        del tables.windows[username]
        tables.forget_profile(username)
        tables.profiles[username] = profile

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

    def remove_profile(self, username):
        """
        See L{IProfileStore.remove_profile}.
        """
        check_username(username)
        return self._open_tables().forget_profile(username)

    def append_audit(self, event):
        """
        See L{IAuditStore.append_audit}.
        """
        return self.append_audits([event])[0]

    def append_audits(self, events):
        """
        See L{IAuditStore.append_audits}.
        """
        events = checked_audit_events(events)
        audit = self._open_tables().audit
        stored = chain.chained_all(audit[-1].hash if audit else chain.GENESIS, events)
        audit.extend(stored)
        return stored

    def audit_events(self, since=None):
        """
        See L{IAuditStore.audit_events}.

        @raise ValueError: C{since} is neither L{None} nor a time the store
            accepts (see L{check_time}).
        """
        events = self._open_tables().audit
        if since is not None:
            check_time("since", since)
            events = [event for event in events if event.time >= since]
        # sorted() is stable: events of the same time stay in append order.
        return sorted(events, key=lambda event: event.time)

    def verify_audit(self):
        """
        See L{IAuditStore.verify_audit}.
        """
        return chain.verify(self._open_tables().audit)

    def record_move(
        self,
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
    ):
        """
        See L{IProfileStore.record_move}.
        """
        move = Move(
            username,
            time,
            old_address,
            new_address,
            old_location_name,
            new_location_name,
        )
        check_move(move)
        tables = self._open_tables()
        tables.moves.setdefault(username, []).append(move)
        profile = tables.profiles.get(username)
        if profile is not None:
            tables.profiles[username] = replace(
                profile, last_address=new_address, last_seen=time
            )

    def moves(self, username):
        """
        See L{IProfileStore.moves}.
        """
        check_username(username)
        return list(self._open_tables().moves.get(username, ()))

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
        usernames = list(usernames)
        for username in usernames:
            check_username(username)
        check_time("now", now)
        if silent_before is not None:
            check_time("silent_before", silent_before)
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

    def offline_since(self, username):
        """
        See L{IProfileStore.offline_since}.
        """
        check_username(username)
        return self._open_tables().offline.get(username)

    def standing(self, username):
        """
        See L{IBlacklistStore.standing}.
        """
        check_username(username)
        tables = self._open_tables()
        return username in tables.blacklist, tables.offline.get(username)

    def last_offline_step(self, username):
        """
        See L{IProfileStore.last_offline_step}.
        """
        check_username(username)
        return self._open_tables().offline_steps.get(username)

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

    def close(self):
        """
        See L{IStore.close}.
        """
        self._open_tables()
        self._tables = None
