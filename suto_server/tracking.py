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

Every method takes C{now}; the check's own timeout runs on the check
service's clock.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred, succeed

from suto_server.checks import CheckResult


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

    def admit(
        self, profile, key: bytes, address: str, connection, now: float, previous=None
    ):
        """
        May C{connection}, from C{address}, serve C{profile}?

        @param key: the profile's current key, for checking a proof.
        @param previous: the key the current one replaced, while a
            legitimate client may still hold it.
        @return: a L{Deferred} firing with C{True} (admitted, registered as
            the profile's live connection) or C{False} (a clone is
            suspected; already recorded).
        """
        user = profile.username
        live = self._live.get(user)
        if live is not None and live.connection is not connection:
            if live.address != address:
                self._clone(now, user, address, live.address, "a live session exists there")
                return succeed(False)
        old = profile.last_address
        if old is None or old == address:
            self._live.attach(user, address, now, connection)
            return succeed(True)
        d = maybeDeferred(self._checks.check, user, old, key, previous=previous)

        describe = self._locations.describe_address

        def decided(result: CheckResult) -> bool:
            if result is CheckResult.ANSWERED:
                self._clone(now, user, address, old, "the client answered at its old location")
                return False
            if result is CheckResult.FORGED:
                self._audit.record(
                    now,
                    "check_forged",
                    user,
                    old,
                    "an answer to the check packet carried a wrong proof",
                    (describe(old),),
                )
            live = self._live.get(user)
            if live is not None and live.connection is not connection:
                # Another newcomer was admitted while this one waited.
                if live.address != address:
                    self._clone(
                        now, user, address, live.address, "a live session exists there"
                    )
                    return False
                self._live.attach(user, address, now, connection)
                return True
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
            self._live.attach(user, address, now, connection)
            return True

        return d.addCallback(decided)

    def detach(self, user: str, connection) -> None:
        self._live.detach(user, connection)

    def _clone(self, now, user, new, old, why) -> None:
        places = tuple(map(self._locations.describe_address, (old, new)))
        self._audit.record(
            now,
            "clone_suspected",
            user,
            new,
            f"{why}: {places[0]}; refused the newcomer at {places[1]}",
            places,
        )
