# -*- test-case-name: tests.store.test_memory,tests.store.test_sqlite,tests.store.test_open -*-
"""
The store's boundaries, cut by concept (accounts, enrollment windows,
profiles, the audit log, the blacklist), and L{IStore}, which combines
them and states the lifecycle and threading contract.  A store is written
against these alone; the shared suite in C{tests/support/store_suite}
holds every store to them.  What only some stores offer is beside them:
L{suto_server.store.clustering} (a store several processes share) and
L{suto_server.store.transfer} (a store's whole content, out and in).

Every method is synchronous.  One given a user name the wire could not
carry, or a record or time of the wrong type or out of bounds, raises
L{ValueError}; a failure of the store itself (a full disk, a lost
connection) raises L{suto_server.store.errors.StoreError}.  A refused
write leaves the store as it was, as a rolled-back transaction does.
"""

from zope.interface import Attribute, Interface

from suto_server.cred.interfaces import IPasswordHashSource


class IUserRecord(Interface):
    """
    One account as listed by L{IUserStore.list_users}; never carries the
    hash itself, only its scheme.
    """

    username = Attribute("The account name.")
    scheme = Attribute("The hash scheme name, e.g. C{'sha512_crypt'}.")
    created = Attribute("POSIX time the account was created.")
    updated = Attribute("POSIX time the hash was last set.")


class IUserStore(IPasswordHashSource):
    """
    The server's own accounts: the password hashes of the classic
    login, which L{IPasswordHashSource.hash_for} hands to cred's checkers.
    Accounts are not profiles: removing one leaves an enrolled device
    alone, and enrolling a device needs no account.

    Threads: as L{IStore} says; each method is one short statement.  The
    admin command, which has no reactor, calls them on its one thread.
    """

    def add_user(username, password_hash, now):
        """
        Create an account.

        @param now: POSIX time of creation, passed in so rules never read
            the clock themselves.
        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify, so the account could never log in.
        @raise suto_server.store.errors.UserExists: the name is taken.
        """

    def set_password_hash(username, password_hash, now):
        """
        Replace an existing account's hash.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.core.schemes.UnsupportedScheme: the hash's scheme is
            not one SUTO can verify, so the account could never log in.
        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def remove_user(username):
        """
        Delete an account.

        @raise ValueError: C{username} is not a valid name.
        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def list_users():
        """
        @return: a L{list} of L{suto_server.store.records.UserRecord},
            sorted by name.
        """


class IWindowStore(Interface):
    """
    The open enrollment windows: for each user at most one, with its
    one-time password's hash, the networks it may be used from, its
    deadline and its count of failed attempts.  A window is used up at
    most once, by L{complete_enrollment}, which stores the profile in the
    same transaction.

    Threads: as L{IStore} says; each method is one short transaction on
    one user's window.
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

    def complete_enrollment(profile, otp_hash=None):
        """
        Use up the user's window and store the profile, in one transaction:
        afterwards either the window is gone and the profile stored, or
        nothing changed.  A window is thus used at most once.

        @param profile: a L{suto_server.store.records.Profile}.
        @param otp_hash: the one-time password's hash of the window the
            device proved its password for; the window must still have
            it (IT may have reopened it with another password since).
            L{None} to use up whatever window is open.
        @raise suto_server.store.errors.UnknownWindow: no window is open
            for the user (expired and closed, used, or never opened), or
            not one with C{otp_hash}.
        @raise suto_server.store.errors.ProfileExists: the user already has
            a profile and the window was not opened to replace it; the
            window stays open.
        """


class IProfileStore(Interface):
    """
    The enrolled profiles and what happens to them after enrollment: their
    keys and the rotation of those keys, where they moved, when they were
    last seen and whether they went offline.

    Each key change is a compare-and-swap on the profile's key ids, so a
    change decided on a profile that another connection (or the database
    thread) moved meanwhile is refused rather than applied to the wrong
    key.  A committed rotation ends a profile's offline spell, and
    removing a profile forgets its retired keys and its offline state
    (its moves and any blacklist entry outlive it).

    Threads: L{commit_rotations} on the database thread, where a batch of
    rotations shares one sync to disk; every other method as L{IStore}
    says, each one short transaction on one profile (or, for
    L{mark_offline}, on one sweep's names).  A rotation may commit
    between L{silent_profiles} and L{mark_offline}, which is why the
    latter takes C{silent_before}.
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

    def locations(after, count):
        """
        One page of where the profiles are, without reading them whole:
        what a table of every profile's address needs, in memory that
        does not grow with the records' other fields or the whole table.

        @param after: the last user name of the page before, or L{None}
            for the first page.
        @param count: how many profiles the page names at most, from 1 to
            L{suto_server.store.records.LOCATIONS_PAGE}.
        @return: a L{list} of C{(username, last_address)} pairs, of the
            first C{count} profiles whose names sort after C{after}, in
            the order of L{list_profiles}; shorter than C{count} only at
            the end.
        """

    def remove_profile(username):
        """
        Forget the user's profile; its key is dead from then on.

        @return: L{True} if there was a profile, L{False} otherwise.
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
        L{confirm_current} of its own.  Any applied commit ends the
        profile's offline spell; one that ends a reconnection (its
        C{offline_step} set) also spends that step, recording the new key
        and its C{attempt_nonce} with it (L{spent_offline_step}), and is
        not applied when the profile recorded that nonce before.

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

    def record_move(
        username,
        time,
        old_address,
        new_address,
        old_location_name,
        new_location_name,
        seen=None,
    ):
        """
        Decide a move of C{username}'s profile, once: a compare-and-swap on
        its C{last_address}.  Only if the profile exists and its
        C{last_address} is still C{seen}, record that it moved from
        C{old_address} to C{new_address} at C{time}, and make
        C{new_address} and C{time} its C{last_address} and C{last_seen},
        in one transaction, so the registry never holds a move without its
        new location.  Otherwise nothing changes: another caller (another
        server process, over a shared store) decided first, or the profile
        is gone.  Of callers that saw one address, exactly one moves.

        @param old_location_name: the named location of C{old_address}, or
            L{None}.
        @param new_location_name: the named location of C{new_address}, or
            L{None}.
        @param seen: the C{last_address} the caller read; C{old_address}
            when L{None}.  A rotation's commit sets the address itself,
            under its own compare-and-swap, so the move it proves expects
            C{new_address} there.
        @return: C{True} if the move was recorded, C{False} if not.
        """

    def moves(username, newest=None, skip=0):
        """
        @param newest: if given, a positive count: at most that many
            moves, the newest after the C{skip} newest, so that a profile
            that moved all day is read a page at a time
            (L{suto_server.audit.paging}), as the audit log is.
        @param skip: how many of the newest moves to pass over; 0 unless
            C{newest} is given.
        @return: a L{list} of the L{suto_server.store.records.Move}s of
            C{username}'s profile: all of them oldest first, or with
            C{newest} that page of them newest first (the order
            L{IAuditStore.audit_events_matching} reads a page in).
        @raise ValueError: C{newest} or C{skip} is out of bounds.
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

    def count_offline():
        """
        @return: how many profiles are marked offline: what a metrics
            scrape shows, counted by the store rather than read whole.
        """

    def offline_since(username):
        """
        @return: the POSIX time the profile was marked offline, or L{None}
            when it is not offline (or does not exist).
        """

    def spent_offline_step(username):
        """
        @return: a L{suto_server.store.records.SpentOfflineStep} for the newest offline time step
            the profile reconnected with, or L{None} if it never did.
        """


class IAuditStore(Interface):
    """
    The audit log: append-only, each record chained to the one before it
    by a hash (see L{suto_server.store.chain}), so that a record removed,
    moved or edited afterwards shows in L{verify_audit}.

    Threads: L{append_audits} on the database thread, where the audit
    log's group commit gives a burst of events one sync to disk; the
    reads and L{append_audit} as L{IStore} says.  L{verify_audit} must
    also work on a store opened read-only (the admin command checking a
    copy of the database).
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

    def audit_events_matching(
        username=None,
        event=None,
        since=None,
        until=None,
        newest=None,
        skip=0,
        types=None,
    ):
        """
        The events a filtered, paged listing shows, selected by the store
        itself: a page of the audit log does not read the whole log.

        @param username: if given, only the events naming this user.
        @param event: if given, only the events of this type.
        @param types: if given, a collection of 1 to
            L{suto_server.store.checks.MAX_AUDIT_TYPES} event types: only
            the events of one of them (the alerts are several types); with
            C{event}, only those of C{event} if it is among them.
        @param since: if given, a POSIX time: only events at or after it.
        @param until: if given, a POSIX time: only events at or before it.
        @param newest: if given, a positive count: at most that many
            events, the newest after the C{skip} newest.
        @param skip: how many of the newest matching events to pass over;
            only with C{newest}.
        @return: a L{list} of L{suto_server.store.records.AuditEvent},
            B{newest first}; events of the same time in the reverse of the
            order they were appended.
        """

    def count_audit_events(
        username=None, event=None, since=None, until=None, types=None
    ):
        """
        @return: how many events L{audit_events_matching} selects with the
            same filters and no C{newest}.
        """

    def verify_audit():
        """
        Check the audit log's hash chain, in the order the events were
        appended.

        @return: a L{list} of problems, each a L{str} saying which record
            was removed, moved or edited, the first break first; empty
            when the log is intact.
        """


class IBlacklistStore(Interface):
    """
    The profiles refused for good, each with why and by whom, until an
    administrator lifts the entry (which also removes the profile, so the
    device must enroll again).  An entry outlives its profile.

    Threads: as L{IStore} says; L{rotation_start} is read on every
    rotation, so it must answer from one short query.
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

    def count_blacklisted():
        """
        @return: how many profiles have a blacklist entry, counted by the
            store rather than read whole.
        """

    def unblock(username):
        """
        Lift the profile's blacklist entry and remove the profile with its
        keys, in one transaction: the device must enroll again.

        @return: whether there was an entry.
        """

    def standing(username):
        """
        Both marks a rotation is checked against, read at once.

        @return: C{(blacklisted, offline_since)}: whether the profile has a
            blacklist entry, and what L{IProfileStore.offline_since} returns.
        """

    def rotation_start(username):
        """
        Everything a plain rotation's start is checked against, from one
        short query: L{standing} and L{IProfileStore.get_profile}, read
        together (so from one snapshot of the store).

        @return: a L{suto_server.store.records.RotationStart}.
        """


class IStore(IUserStore, IWindowStore, IProfileStore, IAuditStore, IBlacklistStore):
    """
    A whole store: every concept above, its lifecycle and its threads.

    Lifecycle: opened ready to use (by L{suto_server.store.open.open_store}),
    used, and closed once, after which every method raises
    L{suto_server.store.errors.StoreError}.

    Threading: a store object belongs to the thread that opened it and is
    only ever called from that thread (a SQLite connection, say, cannot
    move between threads).  The daemon keeps two:
     - the store it opens, on the reactor thread.  On a local store
       (memory, a SQLite file) the running server's calls run there,
       through L{suto_server.store.calls}, and each must return quickly:
       reads, and writes of a single row or profile.  On any store the
       reads at start-up, before the reactor runs, use it too.
     - a L{sibling}, opened and used on the database thread
       (L{suto_server.store.dbthread.DatabaseThread}).  It carries the
       writes that batch many callers into one sync to disk,
       L{IProfileStore.commit_rotations} and L{IAuditStore.append_audits},
       and is closed on that thread when the daemon stops.
    A store across the network (one providing
    L{suto_server.store.clustering.IClusteredStore}) gets more siblings:
    the rules' calls on it, each a read or a single write, go to a pool
    of database threads with one sibling each
    (L{suto_server.store.dbthread.DatabasePool}, through
    L{suto_server.store.calls}), so the reactor never waits on the
    network for them.
    Both objects reach the same data and each sees what the other
    committed once the commit has returned; writes from the two are
    serialized, so every multi-statement method (a rotation's
    compare-and-swap, the audit chain's read-then-append) is atomic
    across them.  A store without a database thread (the in-memory one in
    tests) runs those writes on the reactor thread as well.
    """

    def sibling():
        """
        Open another store object onto the same data, for the thread that
        calls this, which alone uses and closes it.  Closing either object
        leaves the other open.

        @return: a new provider of L{IStore}.
        @raise suto_server.store.errors.StoreError: the data cannot be
            reached again (as from a store built on a bare connection).
        """

    def close():
        """
        Release this object's resources (its connection, its file
        handles); its siblings stay open.  Every later call raises
        L{suto_server.store.errors.StoreError}, including a second close.
        """
