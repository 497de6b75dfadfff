# -*- test-case-name: tests.rules.test_rotation,tests.rules.test_rotation_primed,tests.rules.test_rotation_threaded -*-
"""
Key rotation rules: junk data from the client, a confirmed switch, and a
chain that survives a crash at any step.

A rotation from key K_n (generation n) derives

    K_n+1 = next_key(K_n, junk, fingerprint_hash, X25519(server, client), user, n+1)

from the client's junk, the fingerprint hash stored at enrollment (the
client recomputes its own and never sends it) and a fresh X25519 exchange,
which heals the chain after a past compromise.  The server proves it holds
K_n+1 by sealing "ok" under it; the client answers "ack" sealed under it;
only then does the server commit K_n+1 (keeping K_n as the previous key)
and seal "done".  The client commits on "done".

On a version-3 connection (docs/PROTOCOL.md §9.2) the commit hands the
client, sealed under K_n+1 instead of "done", the public half of a fresh
X25519 share for the connection's next rotation; the connection's driver
keeps the private half (L{Committed.next_private}) in memory only.  That
next rotation arrives with the client's ack already sealed under the key
it derived with the share, so it is L{Rotation.begin}, given the share
rather than drawing one, and L{Rotation.acknowledge} run back to back:
the same checks, the same derivation, the same failure accounting, one
message each way.

The previous key covers the one gap: a client that crashed or lost "done"
comes back with K_n, and the server rolls back to it.  Once the client has
rotated from K_n+1 the previous key is retired, in the transaction that
commits that rotation (its compare-and-swap on K_n+1 is the proof that the
client held it); any later use of a retired key is a second holder of the
chain, reported as C{clone_suspected}.

Both alerts of a rotation, C{clone_suspected} here and
C{fingerprint_mismatch} (L{suto_server.rules.rotation_failures}), are
C{unproven} (gathered per source by the audit log): a rotation proves
nothing until the client's acknowledgement opens, so a retired key id that
is only named, and failures that anyone naming a key id and sending noise
would produce alike, may come from any peer.

A rotation that fails on the client's side is counted by
L{suto_server.rules.rotation_failures}, which says when a failure counts
toward C{fingerprint_mismatch} and how it is named.

Every method takes C{now}; nothing here reads a clock.  The methods that
read or change the store are coroutines awaiting its calls
(L{suto_server.store.calls.IStoreCalls}): on a store across the network
they wait for it without holding up the reactor, so a decision reads what
it needs again after each wait rather than trusting what it read before.
A L{suto_server.store.errors.StoreError} passes through to the caller,
having changed nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.logger import Logger

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule
from suto_server.rules.rotation_failures import DEFAULT_FAILURE_ALERT, RotationFailures
from suto_server.store.records import RotationCommit

#: Seconds (of the C{now} the rules are given) between two log events
#: counting committed rotations: a fleet rotates too often for an event per
#: rotation.
COUNT_INTERVAL = 60.0


#: L{Rotation.check_key}'s default: no profile given, read it.
_READ = object()


class RotationRefused(Exception):
    """
    The rotation cannot go on; C{reason} is C{unknown_key},
    C{clone_suspected} or C{rotation_failed}.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class PendingRotation:
    """
    A rotation between the server's "ok" and the client's "ack".  Holds key
    material: never logged (C{repr} shows only public parts).  Made once
    per rotation and never changed, though not frozen: a frozen
    dataclass's C{__init__} sets each of the ten fields through
    C{object.__setattr__}, three times the cost of plain slots.

    @ivar expected_key_id: the key the client rotates from.
    @ivar replaces: when that is the profile's previous key, the id of the
        unconfirmed current key that a commit rolls back; else L{None}.
    @ivar ok: "ok" sealed under the new key; L{None} in a primed
        rotation, which sends no "ok".
    @ivar sealing: the new key made ready to seal "ok" and "done" (or the
        next share) and open "ack", its subkey derived once for the three.
    """

    user: str
    expected_key_id: str
    replaces: str | None
    generation: int
    server_public: bytes
    ok: bytes | None
    new_key: bytes = field(repr=False)
    sealing: keyschedule.SealingKey = field(repr=False, compare=False)
    offline_step: int | None = None
    attempt_nonce: bytes | None = None

    @property
    def new_key_id(self) -> str:
        return keyschedule.key_id(self.new_key)


@dataclass(slots=True)
class Committed:
    """
    What a committed rotation answers the client with.

    @ivar sealed: sealed under the new key: "done" (C{SUTO_ROTATE_DONE_}),
        or, when the commit primes the next rotation, the public key of
        the server's share for it (C{SUTO_ROTATE_DONE_NEXT_}).
    @ivar next_private: that share's private key, for the connection's
        driver to hold until the next rotation; L{None} unless primed.
        Key material: never logged (C{repr} leaves it out), never stored.
    """

    sealed: bytes
    next_private: X25519PrivateKey | None = field(default=None, repr=False)


class Rotation:
    """
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}).
    @param master_key: opens and seals keys at rest.
    @param committer: a L{GroupCommitter} over the store's
        C{commit_rotations}.
    @param audit: the L{AuditLog} events and alerts go to.
    @param failure_alert: consecutive failures before
        C{fingerprint_mismatch} (L{RotationFailures}).

    @ivar failures: counts the rotations that fail on the client's side.

    @ivar observers: callables told C{(user, now)} of every committed
        rotation (the web console's rotation history).
    """

    log = Logger()

    def __init__(
        self,
        calls,
        master_key,
        committer,
        audit: AuditLog,
        failure_alert: int = DEFAULT_FAILURE_ALERT,
        new_private_key=X25519PrivateKey.generate,
    ) -> None:
        self._calls = calls
        self._master_key = master_key
        self._committer = committer
        self.failures = RotationFailures(calls, audit, failure_alert)
        self._new_private_key = new_private_key
        self._audit_log = audit
        self.observers: list = []
        # Rotations committed since _counting_since (None: none yet).
        self._committed = 0
        self._counting_since: float | None = None

    async def check_key(
        self, user: str, key_id: str, source: str, now: float, profile=_READ
    ):
        """
        Is C{key_id} a key C{user}'s profile may rotate from (its current
        key, or its previous one while the current is unconfirmed)?  No
        state changes, except that a retired key is recorded as a clone.

        @param profile: C{user}'s profile (or L{None}) as the store
            returned it for this rotation's start
            (L{suto_server.store.records.RotationStart}), so that the start
            costs one read; left out, it is read here.  Either way it may
            be a moment old by the commit, whose compare-and-swap on the
            key refuses a profile another connection moved meanwhile.
        @return: the profile and the presented key, for the location
            check that comes before L{begin}.
        @raise RotationRefused: unknown profile or key, or a retired key.
        """
        if profile is _READ:
            profile = await self._calls.get_profile(user)
        if profile is None:
            raise RotationRefused("unknown_key")
        if key_id == profile.key_id:
            sealed = profile.key_sealed
        elif key_id == profile.previous_key_id and profile.previous_held:
            sealed = profile.previous_key_sealed
        else:
            await self._refuse_stale(profile, key_id, source, now)
        return profile, self._master_key.open_key(user, key_id, sealed)

    def held_keys(self, profile) -> tuple[bytes, bytes | None]:
        """
        The keys a legitimate client of C{profile} may hold now: the
        current one, and the previous one while the current is
        unconfirmed (a client that missed "done" still has it).  For
        checking a proof of possession.
        """
        user = profile.username
        current = self._master_key.open_key(user, profile.key_id, profile.key_sealed)
        previous = None
        if profile.previous_held:
            previous = self._master_key.open_key(
                user, profile.previous_key_id, profile.previous_key_sealed
            )
        return current, previous

    async def verify_proofs(self, user: str, nonce: bytes) -> tuple[bytes, ...]:
        """
        The answers a legitimate agent of C{user}'s profile may give now
        to a verification challenge bound to C{nonce} (docs/PROTOCOL.md
        §11): its proof under each key of L{held_keys}.  Only the proofs
        leave this method, never a key.

        @return: the expected proofs; none when there is no such profile.
        """
        profile = await self._calls.get_profile(user)
        if profile is None:
            return ()
        return tuple(
            keyschedule.verify_proof(key, nonce, user)
            for key in self.held_keys(profile)
            if key is not None
        )

    async def begin(
        self,
        user: str,
        key_id: str,
        junk: bytes,
        client_public: bytes,
        source: str,
        now: float,
        offline_step: int | None = None,
        checked: tuple | None = None,
        attempt_nonce: bytes | None = None,
        server_private: X25519PrivateKey | None = None,
    ) -> PendingRotation:
        """
        The client holding C{key_id} asks to rotate: roll back to that key
        if it is the previous one, derive the next one and seal "ok" under
        it.

        @param offline_step: the offline time step this connection
            reconnected with, which the commit spends; L{None} for a
            connection that did not reconnect.
        @param attempt_nonce: the nonce of that reconnection, which the
            commit records so that it is never accepted again; L{None}
            for one without a nonce, or no reconnection.
        @param checked: what L{check_key} returned for C{user} and
            C{key_id}, with nothing awaited since, so nothing can have
            changed; L{None} to check the key here.
        @param server_private: the server's share a primed rotation was
            given (L{Committed.next_private}), used instead of a fresh
            one; "ok" is then not sealed, as a primed rotation's client
            proves the key before any answer.

        @raise RotationRefused: not a key this profile may rotate from.
        """
        if checked is None:
            checked = await self.check_key(user, key_id, source, now)
        profile, current = checked
        # check_key let through the current key or the unconfirmed previous
        # one.  Nothing is written here, whichever it is: only the client's
        # acknowledgement proves it holds the key and the fingerprint.  The
        # commit of a rotation from the current key (a compare-and-swap on
        # that key) retires the previous key in the grouped transaction, so
        # a steady rotation costs one share of one sync; a rotation from
        # the previous key rolls back to it once acknowledged.
        replaces = profile.key_id if key_id != profile.key_id else None
        generation = profile.generation + (0 if replaces else 1)
        primed = server_private is not None
        private = server_private if primed else self._new_private_key()
        try:
            shared = keyschedule.dh_shared_secret(private, client_public)
        except keyschedule.KeyScheduleError:
            raise RotationRefused("rotation_failed") from None
        new_key = keyschedule.next_key(
            current, junk, profile.fingerprint_hash, shared, user, generation
        )
        sealing = keyschedule.SealingKey(new_key, user)
        ok = None if primed else sealing.seal(b"ok", keyschedule.ROTATE_OK_PURPOSE)
        return PendingRotation(
            user=user,
            expected_key_id=key_id,
            replaces=replaces,
            generation=generation,
            server_public=private.public_key().public_bytes_raw(),
            ok=ok,
            new_key=new_key,
            sealing=sealing,
            offline_step=offline_step,
            attempt_nonce=attempt_nonce,
        )

    async def acknowledge(
        self,
        pending: PendingRotation,
        sealed_ack: bytes,
        source: str,
        now: float,
        *,
        held_elsewhere: bool = False,
        prime: bool = False,
    ) -> Committed:
        """
        The client's acknowledgement arrived: check it, commit the new key
        durably (grouped with other rotations), and return the final
        message.

        @param held_elsewhere: as for L{RotationFailures.record}, should it
            not open.
        @param prime: answer with a fresh share for the connection's next
            rotation (a version-3 connection) rather than with "done".
        @return: once the new key is on disk, the sealed "done", or the
            sealed next share and its private key.
        @raise RotationRefused: the acknowledgement does not open, or
            another connection moved the profile meanwhile.
        """
        user = pending.user
        await self.check_ack(
            pending, sealed_ack, source, now, held_elsewhere=held_elsewhere
        )
        if pending.replaces is not None:
            await self._roll_back(pending, source, now)
        new_key_id = pending.new_key_id
        commit = RotationCommit(
            username=user,
            expected_key_id=pending.expected_key_id,
            new_key_sealed=self._master_key.seal_key(user, new_key_id, pending.new_key),
            new_key_id=new_key_id,
            new_generation=pending.generation,
            now=now,
            address=source,
            offline_step=pending.offline_step,
            attempt_nonce=pending.attempt_nonce,
        )
        if not await self._committer.submit(commit):
            # Another connection moved the profile meanwhile.
            raise RotationRefused("rotation_failed")
        self._count_commit(now)
        for observer in self.observers:
            observer(user, now)
        if not prime:
            return Committed(
                pending.sealing.seal(b"done", keyschedule.ROTATE_DONE_PURPOSE)
            )
        private = self._new_private_key()
        return Committed(
            pending.sealing.seal(
                private.public_key().public_bytes_raw(),
                keyschedule.ROTATE_DONE_NEXT_PURPOSE,
            ),
            private,
        )

    async def check_ack(
        self,
        pending: PendingRotation,
        sealed_ack: bytes,
        source: str,
        now: float,
        *,
        held_elsewhere: bool = False,
    ) -> None:
        """
        Does the client's acknowledgement open under the new key?  One
        that does not is a failed rotation, recorded as
        L{RotationFailures.record} says; nothing else is written.
        L{acknowledge} begins with it, and a primed rotation whose
        connection ended before its key was checked is judged by it alone,
        so that hanging up at once hides no failure.

        @raise RotationRefused: it does not open.
        """
        try:
            pending.sealing.open(sealed_ack, keyschedule.ROTATE_ACK_PURPOSE)
        except keyschedule.SealError:
            await self.failures.record(
                pending.user,
                source,
                "the acknowledgement did not open",
                now,
                held_elsewhere=held_elsewhere,
            )
            raise RotationRefused("rotation_failed") from None

    async def _roll_back(
        self, pending: PendingRotation, source: str, now: float
    ) -> None:
        """
        The client proved it holds the previous key: it never committed
        the current one, which is now retired.

        @raise RotationRefused: the profile changed since the rotation
            began.
        """
        user = pending.user
        if not await self._calls.roll_back(
            user, pending.expected_key_id, now, source
        ):
            raise RotationRefused("rotation_failed")
        self._audit(
            now,
            "rotation_rolled_back",
            user,
            source,
            f"the client came back with key id {pending.expected_key_id}: it "
            f"never committed {pending.replaces}",
            (source,),
        )

    def _count_commit(self, now: float) -> None:
        """
        Count one committed rotation, and log the count once
        L{COUNT_INTERVAL} seconds have passed since counting began.
        """
        if self._counting_since is None:
            self._counting_since = now
        self._committed += 1
        if now - self._counting_since >= COUNT_INTERVAL:
            self.log.info(
                "committed {count} rotations in the last {seconds:.0f} s",
                count=self._committed,
                seconds=now - self._counting_since,
            )
            self._committed = 0
            self._counting_since = now

    async def _refuse_stale(self, profile, key_id: str, source: str, now: float):
        known = key_id == profile.previous_key_id or await self._calls.is_retired(
            profile.username, key_id
        )
        if known:
            # Unproven: the id is only named (ids are public names).
            self._audit(
                now,
                "clone_suspected",
                profile.username,
                source,
                f"superseded key id {key_id} used from {source}; the profile "
                f"was last used from {profile.last_address}",
                (source, profile.last_address),
                unproven=True,
            )
        raise RotationRefused("unknown_key")

    def _audit(
        self, now, event, user, source, reason, locations, unproven=False
    ) -> None:
        self._audit_log.record(
            now, event, user, source, reason, locations, unproven=unproven
        )
