"""
Port tracking: a profile that shows up somewhere new must not be in two
places at once.

When a rotation connection for a profile comes from an address other than
the one the registry holds, the server first asks the old address: it
sends a check packet there (a fresh nonce) and waits a few seconds for a
proof made with the profile's current key.  A valid answer means the
legitimate client is still online at the old place, so the newcomer holds
a copy: C{clone_suspected}, and the newcomer is refused.  Silence means the
client moved: the registry follows it and records C{location_changed}.  A
live rotation connection from another address is the same evidence
without asking.

Silence proves nothing about the newcomer, though: a copy of the state
file on another machine holds the key (enough to answer checks) but not
the machine's fingerprint.  So a newcomer that has not yet proven the
fingerprint is only admitted; the move is recorded once it has (its first
rotation committed, or its reconnection opened under the offline key).
Otherwise a copy that cannot rotate would still move the registry to
itself, answer the checks sent there, and have the legitimate client
refused as the clone when it came back.

The same goes for the alerts.  A C{clone_suspected} is raised at once only
for a newcomer that proved the key and the fingerprint (a reconnection):
an answer at the old location proves the key is held there, which is what
a legitimate client does, and nothing about a newcomer that only named a
public key id, which any peer can do; its alert is C{unproven}, gathered
per source by the audit log.  A forged answer to a check proves nothing
either (C{check_forged}, unproven).  A move is recorded only after a
proof, so C{location_changed} goes out at once.

Every method takes C{now}; the check's own timeout runs on the check
service's clock.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred, succeed

from suto_server.net.checks import CheckResult

# Why a newcomer is refused as a clone, as its alert says.
_LIVE = "a live session exists there"
_ANSWERED = "the client answered at its old location"


class Tracking:
    """
    @param store: the registry's durable half (profiles, moves).
    @param audit: records events and raises alerts (C{record(now, event,
        user, source, reason, locations)}).
    @param live: the L{LiveSessions} table.
    @param checks: sends check packets (C{check(user, address, key)}).
    @param locations: names addresses for reports (L{Locations}).
    """

    def __init__(self, store, audit, live, checks, locations) -> None:
        self._store = store
        self._audit = audit
        self._live = live
        self._checks = checks
        self._locations = locations
        # connection -> (user, old address, new address): moves admitted
        # but not yet proven (see proven()).
        self._unproven: dict = {}

    def admit(
        self,
        profile,
        key: bytes,
        address: str,
        connection,
        now: float,
        previous=None,
        *,
        proven: bool,
    ):
        """
        May C{connection}, from C{address}, serve C{profile}?

        @param key: the profile's current key, for checking a proof.
        @param previous: the key the current one replaced, while a
            legitimate client may still hold it.
        @param proven: whether C{connection} has already proven the
            machine's fingerprint (a reconnection); if not, a move is
            recorded only when L{proven} is called for it.
        @return: a L{Deferred} firing with C{True} (admitted, registered as
            the profile's live connection) or C{False} (a clone is
            suspected; already recorded).
        """
        user = profile.username
        live = self._live.get(user)
        if live is not None and live.connection is not connection:
            if live.address != address:
                self._clone(now, user, address, live.address, _LIVE, proven)
                return succeed(False)
        old = profile.last_address
        if old is None or old == address:
            self._live.attach(user, address, now, connection)
            return succeed(True)
        d = maybeDeferred(self._checks.check, user, old, key, previous=previous)

        describe = self._locations.describe_address

        def decided(result: CheckResult) -> bool:
            if result is CheckResult.ANSWERED:
                self._clone(now, user, address, old, _ANSWERED, proven)
                return False
            if result is CheckResult.FORGED:
                self._audit.record(
                    now,
                    "check_forged",
                    user,
                    old,
                    "an answer to the check packet carried a wrong proof",
                    (describe(old),),
                    unproven=True,
                )
            live = self._live.get(user)
            if live is not None and live.connection is not connection:
                # Another newcomer was admitted while this one waited.
                if live.address != address:
                    self._clone(now, user, address, live.address, _LIVE, proven)
                    return False
                # It joins that one, and takes over its unproven move.
                moving = self._unproven.pop(live.connection, None)
                if moving is not None:
                    self._unproven[connection] = moving
                self._live.attach(user, address, now, connection)
                return True
            self._live.attach(user, address, now, connection)
            if proven:
                self._move(now, user, old, address)
            else:
                self._unproven[connection] = (user, old, address)
            return True

        return d.addCallback(decided)

    def proven(self, connection, now: float) -> None:
        """
        C{connection} proved it holds the profile's key and the machine's
        fingerprint (its rotation committed): record the move it was
        admitted for, if any.
        """
        unproven = self._unproven.pop(connection, None)
        if unproven is not None:
            self._move(now, *unproven)

    def forget(self, connection) -> None:
        """
        C{connection} will not prove its move (its commit failed).
        """
        self._unproven.pop(connection, None)

    def detach(self, user: str, connection, keep_move: bool = False) -> None:
        """
        C{connection} ended; it is no longer live.

        @param keep_move: whether a commit that may still prove its move
            is on its way (L{proven} or L{forget} follows).
        """
        if not keep_move:
            self.forget(connection)
        self._live.detach(user, connection)

    def _move(self, now, user, old, address) -> None:
        describe = self._locations.describe_address
        self._store.record_move(
            user,
            now,
            old,
            address,
            self._locations.name_of(old),
            self._locations.name_of(address),
        )
        self._audit.record(
            now,
            "location_changed",
            user,
            address,
            f"moved from {describe(old)} to {describe(address)}",
            (describe(old), describe(address)),
        )

    def _clone(self, now, user, new, old, why, proven: bool) -> None:
        """
        Refuse the newcomer at C{new}: the profile is held at C{old}.

        @param proven: whether the newcomer proved the key and the
            fingerprint; if not, its alert is unproven.
        """
        places = tuple(map(self._locations.describe_address, (old, new)))
        self._audit.record(
            now,
            "clone_suspected",
            user,
            new,
            f"{why}: {places[0]}; refused the newcomer at {places[1]}",
            places,
            unproven=not proven,
        )
