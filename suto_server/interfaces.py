"""
The boundaries of the SUTO server, as zope interfaces.

Everything that can be swapped (where password hashes come from, where
state is kept) is reached through one of these, so tests and alternative
back ends plug in without monkeypatching.
"""

from zope.interface import Attribute, Interface


class IPasswordHashSource(Interface):
    """
    Somewhere a user's crypt(3)-style password hash can be looked up: the
    server's own user store, or a shadow-format file.
    """

    def hash_for(username):
        """
        @param username: the account name, as a L{str}.
        @return: the stored hash (for example C{"$6$salt$..."}) as a
            L{str}, or L{None} when this source has no usable hash for
            that user (unknown or locked account).
        """


class IUserStore(IPasswordHashSource):
    """
    The server's own durable account store.  Implementations: SQLite (the
    embedded default) and in-memory (tests); one shared test suite runs
    against both.
    """

    def add_user(username, password_hash, now):
        """
        Create an account.

        @param now: POSIX time of creation, passed in so rules never read
            the clock themselves.
        @raise suto_server.store.errors.UserExists: the name is taken.
        """

    def set_password_hash(username, password_hash, now):
        """
        Replace an existing account's hash.

        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def remove_user(username):
        """
        Delete an account.

        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def list_users():
        """
        @return: a L{list} of L{suto_server.store.records.UserRecord},
            sorted by name.
        """

    def close():
        """
        Release the underlying resources.  Further calls are errors.
        """


class IUserRecord(Interface):
    """
    One account as listed by L{IUserStore.list_users}; never carries the
    hash itself, only its scheme.
    """

    username = Attribute("The account name.")
    scheme = Attribute("The hash scheme name, e.g. C{'sha512_crypt'}.")
    created = Attribute("POSIX time the account was created.")
    updated = Attribute("POSIX time the hash was last set.")


class IEnrollmentStore(Interface):
    """
    Where enrollment state survives a restart: the open enrollment windows,
    the enrolled profiles and the audit log.  Implementations: SQLite (the
    embedded default) and in-memory (tests); one shared test suite runs
    against both.  Every method that takes a user name raises L{ValueError}
    for one the wire could not carry, and every method that takes a record
    raises L{ValueError} for one with a field of the wrong type or out of
    bounds; nothing is written then.
    """

    def open_window(window):
        """
        Open an enrollment window, replacing any the user already had (a
        reopened window starts again with its own password, deadline and
        attempt count).

        @param window: a L{suto_server.store.records.EnrollmentWindow}.
        """

    def get_window(username):
        """
        @return: the user's open
            L{suto_server.store.records.EnrollmentWindow}, or L{None}.
            Expiry is not checked here: the store does not read the clock.
        """

    def list_windows():
        """
        @return: a L{list} of every open
            L{suto_server.store.records.EnrollmentWindow}, sorted by name.
        """

    def record_failed_attempt(username):
        """
        Count one failed attempt on the user's window.

        @return: the new number of failed attempts.
        @raise suto_server.store.errors.UnknownWindow: no window is open
            for the user.
        """

    def close_window(username):
        """
        Close the user's window without enrolling anyone.

        @return: L{True} if a window was open and is now closed, L{False}
            if there was none.
        """

    def complete_enrollment(profile):
        """
        Use up the user's window and store the profile, in one transaction:
        afterwards either the window is gone and the profile stored, or
        nothing changed.  A window is thus used at most once.

        @param profile: a L{suto_server.store.records.Profile}.
        @raise suto_server.store.errors.UnknownWindow: no window is open
            for the user (expired and closed, used, or never opened).
        @raise suto_server.store.errors.ProfileExists: the user already has
            a profile and the window was not opened to replace it; the
            window stays open.
        """

    def get_profile(username):
        """
        @return: the user's L{suto_server.store.records.Profile}, or
            L{None}.
        """

    def list_profiles():
        """
        @return: a L{list} of every L{suto_server.store.records.Profile},
            sorted by name.
        """

    def remove_profile(username):
        """
        Forget the user's profile; its key is dead from then on.

        @return: L{True} if there was a profile, L{False} otherwise.
        """

    def append_audit(event):
        """
        Add an event to the audit log, chained to the last one appended
        (see L{suto_server.store.chain}); the store reads that one and
        writes this one in one transaction, so two writers cannot fork the
        chain.

        @param event: a L{suto_server.store.records.AuditEvent}; any
            C{previous_hash} and C{hash} it carries are ignored.
        @return: the event as stored, with its C{previous_hash} and
            C{hash}.
        """

    def append_audits(events):
        """
        Add several events to the audit log, chained in the order given,
        in one transaction: all or none (one sync for a whole batch).

        @param events: L{suto_server.store.records.AuditEvent}s.
        @return: a L{list} of the events as stored, in that order.
        @raise ValueError: an event is of the wrong type or out of
            bounds; none is stored.
        """

    def audit_events(since=None):
        """
        @param since: if given, a POSIX time: only events at or after it
            are returned (at, so that polling with the time of the last
            event seen loses nothing logged in the same instant).
        @return: a L{list} of L{suto_server.store.records.AuditEvent},
            oldest first; events of the same time in the order they were
            appended.
        """

    def verify_audit():
        """
        Check the audit log's hash chain, in the order the events were
        appended.

        @return: a L{list} of problems, each a L{str} saying which record
            was removed, moved or edited, the first break first; empty
            when the log is intact.
        """


class IRotationStore(Interface):
    """
    Where the key rotation of enrolled profiles survives a restart.  Each
    change is a compare-and-swap on the profile's key ids, so a change
    decided on a profile that another connection moved meanwhile is
    refused rather than applied to the wrong key.  Implementations: SQLite
    (the embedded default) and in-memory (tests); one shared test suite
    runs against both.  Every method raises L{ValueError} for an argument
    of the wrong type or out of bounds, and writes nothing then.
    """

    def commit_rotations(rotations):
        """
        Commit a batch of rotations in one transaction, so one sync to disk
        serves them all.  Each is applied, in order, only if the profile's
        current key is still its C{expected_key_id} at the generation
        before its C{new_generation}: the current key then becomes the
        previous one (the one it replaces retired), the new key current
        and unconfirmed, the profile last seen at C{now} from C{address},
        and its count of failed rotations starts again at 0.  A commit over
        an unconfirmed key is also that key's confirmation (the device
        derived the new key from it), so rotation needs no
        L{confirm_current} of its own.

        @param rotations: a L{list} of
            L{suto_server.store.records.RotationCommit}.
        @return: a L{list} of L{bool}, one per rotation: whether it was
            applied.
        @raise suto_server.store.errors.StoreError: the batch could not be
            committed; none of it was.
        """

    def confirm_current(username, key_id, now, address):
        """
        The device used the profile's current key: from now on it surely
        holds it, so the previous key is retired, and the profile was last
        seen at C{now} from C{address}.

        @return: L{True} if C{key_id} is the current key (and the above was
            done), L{False} otherwise (nothing changed).
        """

    def roll_back(username, key_id, now, address):
        """
        The device came back with the previous key before using the
        current one: it never committed the current key, so that key is
        retired and the previous one is current (and confirmed) again,
        with its own generation.

        @return: L{True} if C{key_id} is the previous key and the current
            one unconfirmed (and the above was done), L{False} otherwise
            (nothing changed).
        """

    def record_rotation_failure(username):
        """
        Count one rotation that failed on the device's side.

        @return: the number of such failures since the profile's last
            committed rotation.
        @raise suto_server.store.errors.UnknownProfile: no such profile.
        """

    def is_retired(username, key_id):
        """
        @return: whether C{key_id} is among the last
            L{suto_server.store.records.RETIRED_KEY_HISTORY} keys the
            profile gave up; L{False} when there is no such profile.
        """


class IRegistryStore(Interface):
    """
    The durable history of the registry of enrolled profiles: where each
    profile moved, kept after the profile itself is gone.
    Implementations: SQLite (the embedded default) and in-memory (tests);
    one shared test suite runs against both.  Every method raises
    L{ValueError} for an argument of the wrong type or out of bounds, and
    writes nothing then.
    """

    def record_move(
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
    ):
        """
        Record that C{username}'s profile moved from C{old_address} to
        C{new_address} at C{time}, and make C{new_address} and C{time} the
        profile's C{last_address} and C{last_seen} (if it still exists) in
        the same transaction, so the registry never holds a move without
        its new location.

        @param old_location_name: the named location of C{old_address}, or
            L{None}.
        @param new_location_name: the named location of C{new_address}, or
            L{None}.
        """

    def moves(username):
        """
        @return: a L{list} of the L{suto_server.store.records.Move}s of
            C{username}'s profile, oldest first.
        """


class IOfflineStore(Interface):
    """
    Where offline spells and the blacklist survive a restart: which
    profiles the server marked offline and since when, the newest offline
    time step each reconnected with, and the profiles refused for good.
    A committed rotation ends a profile's offline spell (see
    L{IRotationStore.commit_rotations}).  Implementations: SQLite (the
    embedded default) and in-memory (tests); one shared test suite runs
    against both.  Every method raises L{ValueError} for an argument of
    the wrong type or out of bounds, and writes nothing then.
    """

    def silent_profiles(before):
        """
        @return: the user names, in order, of the profiles last seen before
            C{before} that are not marked offline.
        """

    def mark_offline(usernames, now, silent_before=None):
        """
        Mark each of C{usernames} offline since C{now}, in one transaction;
        one already offline keeps its time, and a name without a profile
        is skipped.  When C{silent_before} is given, so is a profile last
        seen at or after it: what L{silent_profiles} found silent may have
        rotated since, on another thread.

        @return: a L{list} of the names newly marked.
        """

    def offline_profiles():
        """
        @return: a L{dict} from the user name of every profile marked
            offline to the POSIX time it was marked.
        """

    def offline_since(username):
        """
        @return: the POSIX time the profile was marked offline, or L{None}
            when it is not offline (or does not exist).
        """

    def standing(username):
        """
        Both marks a rotation is checked against, read at once.

        @return: C{(blacklisted, offline_since)}: whether the profile has a
            blacklist entry, and what L{offline_since} returns.
        """

    def last_offline_step(username):
        """
        @return: the newest offline time step the profile reconnected
            with, or L{None} if it never did.
        """

    def add_to_blacklist(entry):
        """
        Blacklist a profile, unless it already is (the first entry stays).

        @param entry: a L{suto_server.store.records.BlacklistEntry}.
        @return: whether the entry was added.
        """

    def blacklist_entry(username):
        """
        @return: the profile's L{suto_server.store.records.BlacklistEntry},
            or L{None}.
        """

    def list_blacklist():
        """
        @return: every L{suto_server.store.records.BlacklistEntry}, by
            user name.
        """

    def unblock(username):
        """
        Lift the profile's blacklist entry and remove the profile with its
        keys, in one transaction: the device must enroll again.

        @return: whether there was an entry.
        """


class IAlertSink(Interface):
    """
    Somewhere alerts go as they happen: the structured log, a JSON-lines
    file, a webhook, syslog.  A sink is called from the code that decides
    an authentication or an enrollment, so it must return at once and
    never raise into its caller: a sink that cannot deliver logs why and
    drops or retries the alert on its own.
    """

    def deliver(alert):
        """
        Send an alert on its way.

        @param alert: an L{suto_server.audit.alerts.Alert}.
        @return: L{None}, or a L{twisted.internet.defer.Deferred} that
            fires when this sink is done with the alert (it never fails);
            callers need not wait for it.
        """
