# -*- test-case-name: tests.rules.test_tracking,tests.rules.test_rotation_threaded,tests.cluster.test_presence -*-
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

Silence proves nothing about the newcomer, though, and neither does
naming a key id (key ids are public names): a copy of the state file on
another machine holds the key (enough to answer checks) but not the
machine's fingerprint, and any peer at the client's own address (behind
the same NAT, on the same host) can name the current key id.  So a
newcomer that has not yet proven the key and the fingerprint is only
admitted: it holds a claim, and becomes the profile's live connection, and
has its move recorded, once it has proven them (its first rotation
committed, or its reconnection opened under the offline key).  Until then
the live connection it would replace stays live.  Otherwise a copy that
cannot rotate would move the registry to itself, answer the checks sent
there, and have the legitimate client refused as the clone when it came
back; and a peer that only named a key id at the client's own address
would replace the live connection, which C{suto-admin clients} would then
show as disconnected while it kept rotating.

The same goes for the alerts.  A C{clone_suspected} is raised at once only
for a newcomer that proved the key and the fingerprint (a reconnection):
an answer at the old location proves the key is held there, which is what
a legitimate client does, and nothing about a newcomer that only named a
public key id, which any peer can do; its alert is C{unproven}, gathered
per source by the audit log.  A forged answer to a check proves nothing
either (C{check_forged}, unproven).  A move is recorded only after a
proof, so C{location_changed} goes out at once.

A move is decided once, even by several server processes over one store:
the store records it only if the profile is still at the address this
process read (a compare-and-swap,
L{suto_server.store.interfaces.IProfileStore.record_move}).  A
reconnection whose move another process decided first, while its check
was out, decides again against the address the profile is now at: the
same address (one device reaching two processes at once) is admitted
without a second move or any alert, a third one is checked there.

The live connection tracking weighs is the profile's in any process
sharing the store (L{suto_server.cluster.presence}, given by
L{Tracking.share}): with none here, a newcomer from another address than
the profile's last asks the others whether they hold one, which their
holder proves by answering a challenge, and a connection that becomes
live here is announced, so that another process's earlier one is let go
and closed.  A copy reaching one process while its original's connection
is live on another is thus refused as "a live session exists there", as
within one process; and a device reconnecting through another process
replaces its old connection there with no alert.  On a store of one
process (SQLite, memory) there is no presence, and only this process's
live connections count.

Every method takes C{now}; the check's own timeout runs on the check
service's clock.  L{Tracking.admit} and L{Tracking.proven} are coroutines
awaiting the check and the store's calls
(L{suto_server.store.calls.IStoreCalls}); after each wait they read the
live connections again, since another connection of the profile may have
proven its key meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from twisted.internet.defer import maybeDeferred

from suto_server.net.checks import CheckResult

# Why a newcomer is refused as a clone, as its alert says.
_LIVE = "a live session exists there"
_ANSWERED = "the client answered at its old location"


@dataclass(frozen=True)
class _Claim:
    """
    A connection admitted for a profile that has not proven the key and
    the fingerprint yet.

    @ivar moving_from: the address the registry held when the connection
        was admitted from another one, whose move the proof records; or
        L{None} when the proof moves nothing.
    @ivar connected: whether the connection is still open; one that ended
        while the commit that proves it was on its way still records its
        move, but is not live.
    """

    user: str
    address: str
    moving_from: str | None
    connected: bool = True


class Tracking:
    """
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}),
        the registry's durable half (profiles, moves).
    @param audit: records events and raises alerts (C{record(now, event,
        user, source, reason, locations)}).
    @param live: the L{LiveSessions} table.
    @param checks: sends check packets (C{check(user, address, key)}).
    @param locations: names addresses for reports (L{Locations}).
    """

    def __init__(self, calls, audit, live, checks, locations) -> None:
        self._calls = calls
        self._audit = audit
        self._live = live
        self._checks = checks
        self._locations = locations
        # connection -> _Claim: admitted, not yet proven (see proven()).
        self._claims: dict = {}
        self._presence = None

    def share(self, presence) -> None:
        """
        Weigh the live connections of the other processes on the store
        too, through C{presence} (a
        L{suto_server.cluster.presence.Presence}).
        """
        self._presence = presence

    async def admit(
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
        @param proven: whether C{connection} has already proven the key
            and the machine's fingerprint (a reconnection); if not, it
            becomes live, and its move is recorded, only when L{proven} is
            called for it.
        @return: C{True} (admitted: live at once if C{proven}, else once
            proven) or C{False} (a clone is suspected, already recorded; or
            the profile is gone).
        """
        user = profile.username
        old = profile.last_address
        if (
            self._presence is not None
            and old not in (None, address)
            and user not in self._live
        ):
            # A connection is live only where the profile was last seen,
            # so only a newcomer from elsewhere asks the other processes.
            held_at = await self._presence.holder(user)
            if held_at is not None and held_at != address:
                self._clone(now, user, address, held_at, _LIVE, proven)
                return False
        live = self._live.get(user)
        if (
            live is not None
            and live.connection is not connection
            and live.address != address
        ):
            self._clone(now, user, address, live.address, _LIVE, proven)
            return False
        if old is None or old == address:
            self._admitted(now, user, address, connection, proven)
            return True
        result = await maybeDeferred(
            self._checks.check, user, old, key, previous=previous
        )
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
                (self._locations.describe_address(old),),
                unproven=True,
            )
        live = self._live.get(user)
        if live is not None and live.connection is not connection:
            # Another connection proved the key while this one waited.
            if live.address != address:
                self._clone(now, user, address, live.address, _LIVE, proven)
                return False
            # Its proof already moved the registry here.
            self._admitted(now, user, address, connection, proven)
            return True
        if not proven:
            self._claims[connection] = _Claim(user, address, old)
            return True
        if not await self._move(now, user, old, address):
            return await self._again(user, key, address, connection, now, previous)
        # The move is the store's: whatever became live while it was
        # recorded, this connection is where the profile now is.
        self._attach(user, address, now, connection)
        return True

    async def _again(self, user, key, address, connection, now, previous):
        """
        Another server process over the same store moved C{user}'s
        profile first, while this one checked: decide again against the
        address it moved to.  The same address as C{address} (the same
        device, reconnecting through two processes at once) is admitted
        without a second move or an alert; a third address is checked
        there, where the winner now is.

        @return: what L{admit} returns, or C{False} for a profile that is
            gone.
        """
        profile = await self._calls.get_profile(user)
        if profile is None:
            return False
        return await self.admit(
            profile, key, address, connection, now, previous, proven=True
        )

    async def proven(self, connection, now: float) -> None:
        """
        C{connection} proved it holds the profile's key and the machine's
        fingerprint (its rotation committed): it is the profile's live
        connection now, if it is still open, replacing any other (a
        client that reconnected before the server noticed its old
        connection died), and the move it was admitted for, if any, is
        recorded.  The connection is live before the move's record is
        awaited, and the other newcomers from the same address join the
        move before it too, so none records it a second time meanwhile.
        """
        claim = self._claims.pop(connection, None)
        if claim is None:
            return
        user, address = claim.user, claim.address
        if claim.connected:
            self._attach(user, address, now, connection)
        if claim.moving_from is None:
            return
        for other, waiting in list(self._claims.items()):
            if waiting.user == user and waiting.address == address:
                self._claims[other] = replace(waiting, moving_from=None)
        # The commit set the address itself, under its own compare-and-swap.
        await self._move(now, user, claim.moving_from, address, seen=address)

    def claimed(self, connection) -> bool:
        """
        @return: whether C{connection} holds a claim that L{proven} would
            settle: admitted, and not yet proven (or forgotten).  Every
            rotation after a connection's first has none, so its driver
            asks this before starting L{proven}.
        """
        return connection in self._claims

    def held_elsewhere(self, user: str, connection) -> bool:
        """
        @return: whether a connection other than C{connection} is
            C{user}'s live one: that one proved the key and the
            fingerprint, so C{connection} is not the key holder's.
        """
        live = self._live.get(user)
        return live is not None and live.connection is not connection

    def forget(self, connection) -> None:
        """
        C{connection} will not prove its claim (its commit failed).
        """
        self._claims.pop(connection, None)

    def detach(self, user: str, connection, keep_move: bool = False) -> None:
        """
        C{connection} ended; it is no longer live, nor will it be.

        @param keep_move: whether a commit that may still prove its move
            is on its way (L{proven} or L{forget} follows).
        """
        claim = self._claims.pop(connection, None)
        if keep_move and claim is not None:
            self._claims[connection] = replace(claim, connected=False)
        self._live.detach(user, connection)

    def _admitted(self, now, user, address, connection, proven) -> None:
        """
        C{connection} from C{address}, where the registry holds C{user},
        may serve it: live at once if it has C{proven} the key, else once
        it does.
        """
        if not proven:
            self._claims[connection] = _Claim(user, address, None)
            return
        self._attach(user, address, now, connection)

    def _attach(self, user, address, now, connection) -> None:
        """
        C{connection} is C{user}'s live one now, here and, told so, in the
        other processes, which let theirs go.
        """
        self._live.attach(user, address, now, connection)
        if self._presence is not None:
            self._presence.attached(user, address)

    async def _move(self, now, user, old, address, seen=None) -> bool:
        """
        Record C{user}'s move from C{old} to C{address}, and its
        C{location_changed}, unless another process decided a move first
        (the store's compare-and-swap on the address C{seen}, C{old} by
        default).

        @return: whether the move was recorded.
        """
        describe = self._locations.describe_address
        if not await self._calls.record_move(
            user,
            now,
            old,
            address,
            self._locations.name_of(old),
            self._locations.name_of(address),
            seen=seen,
        ):
            return False
        self._audit.record(
            now,
            "location_changed",
            user,
            address,
            f"moved from {describe(old)} to {describe(address)}",
            (describe(old), describe(address)),
        )
        return True

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
