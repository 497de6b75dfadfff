# -*- test-case-name: tests.rules.test_reconnection,tests.rules.test_reconnection_retry,tests.rules.test_rotation_threaded,tests.rules.test_windows_awaits -*-
"""
Offline spells, the offline rolling authenticator and the blacklist: the
rules a profile follows once its junk stopped coming (docs/PROTOCOL.md
§10).

A client that marked itself offline comes back with C{SUTO_C_RECONNECT_N_}:
a random attempt nonce and fresh junk sealed under the attempt's key,

    attempt_key(offline_key(K, fingerprint_hash, step, user), nonce, user)

over the last key C{K} it agreed on, its hardware fingerprint (recomputed,
never sent) and the time step of the server's clock, which it learnt over
the verified channel, with a MAC under C{K} itself of the nonce and the
junk (L{keyschedule.reconnect_proof}).  The server derives the same key
for each step of a small window around its own clock, newer than any step
the profile already reconnected with, and tries to open the junk.
Opened: it answers with a confirmation sealed under that key, and the
connection may run one normal rotation, which spends the step and records
the nonce.  Not opened, by a client that proved it holds C{K}, for a
profile the server had marked offline: the profile is blacklisted, since
whoever holds its key without its fingerprint (or on a stale clock) holds
copied state.

One exception to "newer than any step spent": a client whose
reconnection's rotation committed on the server but not on its side (it
lost C{SUTO_ROTATE_DONE_}, or could not write its state) comes back from
the key before, still marked offline, within the same step.  It may use
that step again while the profile's current key is the one that very
reconnection made, still unconfirmed, and it names the previous key; its
nonce must be new, since the server refuses every nonce whose rotation
committed (L{spent_step_reopens}).  A replayed message carries its
nonce, so it is never accepted twice.

The first form, C{SUTO_C_RECONNECT_} without a nonce, sealed under the
offline key itself, is still accepted from agents not yet upgraded, under
the rules before the exception: never twice in one step.

Blacklisting is final until an operator lifts it, and anyone who can name
a profile could try to cause it, so only evidence that needs the
profile's key counts.  Key ids are public names (reports and the audit
log show them): a message that only names one, a plain rotation of an
offline profile, a retired key id, a reconnection without a valid proof,
is refused and raised as an alert, never blacklisted; and from the
profile's own address the connection gate does not penalise it, within
its own-address allowance (L{suto_server.rules.limits.OwnAddressAllowance}),
since the real agent shares that address.  A failed
reconnection for a profile that is not marked offline (the client noticed
its silence before the server did) is refused the same way.

The same line sorts the alerts: one raised for a peer that proved nothing
(it named a key id) is C{unproven}, gathered per source by the audit log,
since anyone could raise it at will; one raised after a valid proof of the
key goes out at once.

Every method takes C{now}; nothing here reads a clock.  The decisions
on a connection are coroutines awaiting the store's calls
(L{suto_server.store.calls.IStoreCalls}), reading each step's marks in as
few calls as the store offers (L{IBlacklistStore.rotation_start} gives
the profile and both marks in one read);
a L{suto_server.store.errors.StoreError} passes through to the caller
before anything is recorded.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from suto_server.core import keyschedule, timing
from suto_server.core.timestamps import iso_utc
from suto_server.store.records import BlacklistEntry

_OK = b"ok"

#: Reconnections in one spent step whose rotations committed, after which
#: the step is not reopened: bounds what the store keeps per profile.  The
#: legitimate agent backs off between attempts, so it makes a handful at
#: most in a step.
MAX_ATTEMPTS_PER_STEP = 16


class ReconnectRefused(Exception):
    """
    The connection may not go on.  C{reason} is C{blacklisted} (the
    profile is, or just became, blacklisted: answer C{SUTO_AUTH_0}),
    C{unknown_key} (answer C{SUTO_ERROR_UNKNOWN_KEY}) or
    C{reconnect_failed} (answer C{SUTO_AUTH_0}).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Reconnected:
    """
    A reconnection the server accepted: the step it used, the
    confirmation to send, and the profile and its key for the location
    check.  C{repr} leaves out the key.
    """

    user: str
    step: int
    ok: bytes = field(repr=False)
    profile: object = field(repr=False)
    key: bytes = field(repr=False)
    previous: bytes | None = field(repr=False)
    attempt_nonce: bytes | None = None


class Reconnection:
    """
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}).
    @param rotation: the L{Rotation} rules, which open the profile's keys.
    @param audit: the L{AuditLog}.
    @param step: seconds in an offline time step.
    @param window: steps either side of the server's own to try.
    """

    def __init__(
        self,
        calls,
        rotation,
        audit,
        step: int = timing.DEFAULT_OFFLINE_STEP,
        window: int = timing.DEFAULT_OFFLINE_WINDOW,
    ) -> None:
        self._calls = calls
        self._rotation = rotation
        self._audit = audit
        self.step = step
        self.window = window

    async def reconnect(self, message, source: str, now: float) -> Reconnected:
        """
        A client came back with C{message} (a L{wire.Reconnect}).

        @raise ReconnectRefused: see its reasons; what it means is already
            recorded.
        """
        user = message.user
        # The marks and the profile in one read, as a rotation's start.
        start = await self._calls.rotation_start(user)
        if start.blacklisted:
            self._refuse_blacklisted(user, source, now)
        profile = start.profile
        if profile is None:
            raise ReconnectRefused("unknown_key")
        offline = start.offline_since is not None
        held = self._rotation.held_keys(profile)
        key = self._key_named(profile, held, message.key_id)
        if key is None:
            if await self._calls.is_retired(user, message.key_id):
                # A second holder of the chain, as the rotation rules report
                # it; but a retired id proves no key (ids are public names),
                # so it blacklists nothing and its alert is unproven.
                self._audit.record(
                    now,
                    "clone_suspected",
                    user,
                    source,
                    f"superseded key id {message.key_id} used to reconnect "
                    f"from {source}; the profile was last used from "
                    f"{profile.last_address}",
                    (source, profile.last_address),
                    unproven=True,
                )
            raise ReconnectRefused("unknown_key")
        proof = keyschedule.reconnect_proof(key, user, message.sealed, message.nonce)
        if not hmac.compare_digest(proof, message.proof):
            # Unproven: a wrong proof is what anyone naming the key id sends.
            self._audit.record(
                now,
                "reconnect_failed",
                user,
                source,
                f"a reconnection from {source} named key id {message.key_id} "
                f"without proof of holding that key; nothing changed",
                (source,),
                unproven=True,
            )
            raise ReconnectRefused("reconnect_failed")
        spent = await self._calls.spent_offline_step(user)
        reopens = spent_step_reopens(spent, profile, message)
        for step in keyschedule.candidate_steps(now, self.step, self.window):
            if spent is not None and (
                step < spent.step or (step == spent.step and not reopens)
            ):
                continue
            sealing = _opening(
                _sealing_key(
                    keyschedule.offline_key(key, profile.fingerprint_hash, step, user),
                    message,
                ),
                message.sealed,
                user,
            )
            if sealing is not None:
                self._audit.record(
                    now,
                    "reconnected",
                    user,
                    source,
                    f"reconnected with the offline key of step {step}"
                    + _form_note(message, spent, step),
                    (source,),
                )
                return Reconnected(
                    user=user,
                    step=step,
                    ok=sealing.seal(_OK, keyschedule.RECONNECT_OK_PURPOSE),
                    profile=profile,
                    key=held[0],
                    previous=held[1],
                    attempt_nonce=message.nonce,
                )
        # From here the peer has proven it holds the key: a failure is
        # copied state (or a stale clock), raised at once.
        reason = (
            f"the reconnection from {source} did not open under the offline "
            f"key of any step near the server's time"
        )
        if offline:
            await self._blacklist(
                now, user, source, "reconnect_failed", reason, (source,)
            )
            raise ReconnectRefused("blacklisted")
        self._audit.record(
            now,
            "reconnect_failed",
            user,
            source,
            reason + "; the profile was not offline, so it stays enrolled",
            (source,),
        )
        raise ReconnectRefused("reconnect_failed")

    async def check_rotation(
        self, user: str, key_id: str, source: str, now: float, reconnected: bool
    ):
        """
        May a rotation of C{user} from C{key_id} start on this connection?
        A blacklisted profile may not rotate; an offline one only on a
        connection that reconnected first: a plain rotation naming a key id
        a legitimate client may hold (the current one, or the previous one
        while the current is unconfirmed) is refused and raised as
        C{reconnect_failed}, but blacklists nothing, since the message
        proves no key (key ids are public names).  Any other key id is left
        for the rotation rules, which refuse a retired one as
        C{clone_suspected} (a second holder of the chain, offline or not)
        and one the profile never held as unknown.

        @param reconnected: whether this connection reconnected the
            profile.
        @return: the profile (or L{None}), read with the marks, for the
            rotation rules' key check
            (L{suto_server.rules.rotation.Rotation.check_key}'s
            C{profile}): a rotation's start costs the store one read.
        @raise ReconnectRefused: with C{blacklisted} or
            C{reconnect_failed}.
        """
        # The marks and the profile in one read: this runs on every
        # rotation.
        start = await self._calls.rotation_start(user)
        profile = start.profile
        if start.blacklisted:
            self._refuse_blacklisted(user, source, now)
        if reconnected or start.offline_since is None:
            return profile
        if profile is None or not profile.may_hold(key_id):
            return profile
        # Unproven: the rotation message only names the key id.
        self._audit.record(
            now,
            "reconnect_failed",
            user,
            source,
            f"a plain rotation from {source} for a profile marked offline: "
            f"a returning client reconnects with its offline key first; "
            f"refused, nothing changed",
            (source, profile.last_address),
            unproven=True,
        )
        raise ReconnectRefused("reconnect_failed")

    def _refuse_blacklisted(self, user: str, source: str, now: float) -> None:
        """
        Record the attempt of blacklisted C{user}'s profile from C{source}.

        @raise ReconnectRefused: with C{blacklisted}, always.
        """
        self._audit.record(
            now,
            "blacklisted_refused",
            user,
            source,
            f"a connection from {source} for a blacklisted profile was refused",
            (source,),
        )
        raise ReconnectRefused("blacklisted")

    async def blacklist_report(self) -> list[dict]:
        """
        One row per blacklisted profile, for C{suto-admin blacklist}.
        """
        entries = await self._calls.list_blacklist()
        return [
            {
                "user": entry.username,
                "time": iso_utc(entry.time),
                "reason": entry.reason,
                "source": entry.source,
                "alert": entry.alert,
            }
            for entry in entries
        ]

    async def unblock(
        self, user: str, now: float, operator: str = "an operator"
    ) -> bool:
        """
        C{operator} lifts C{user}'s blacklist entry; the profile goes with
        it, so the device must enroll again.

        @return: whether there was an entry.
        """
        if not await self._calls.unblock(user):
            return False
        self._audit.record(
            now,
            "unblocked",
            user,
            None,
            f"{operator} lifted the blacklist entry and removed the "
            f"profile; the device must enroll again",
        )
        return True

    def _key_named(self, profile, held, key_id: str) -> bytes | None:
        """
        The key C{key_id} names among those a legitimate client of
        C{profile} may hold (the current one, and the previous one while
        the current is unconfirmed), or L{None}.
        """
        current, previous = held
        if key_id == profile.key_id:
            return current
        if previous is not None and key_id == profile.previous_key_id:
            return previous
        return None

    async def _blacklist(self, now, user, source, alert, reason, locations) -> None:
        """
        Raise C{alert}, then blacklist the profile naming it; both at
        once, since only a proof of the profile's key blacklists, and the
        blacklisting is a change of state an operator must see.  Both
        records follow the store's answer, so a store that fails records
        neither.
        """
        added = await self._calls.add_to_blacklist(
            BlacklistEntry(user, now, reason[:255], source, alert)
        )
        if alert != "blacklisted":
            self._audit.record(now, alert, user, source, reason, locations)
        if added:
            self._audit.record(
                now,
                "blacklisted",
                user,
                source,
                f"blacklisted ({alert}): {reason}",
                locations,
            )


def spent_step_reopens(spent, profile, message) -> bool:
    """
    May C{message} use the profile's spent offline step again?  Only as the
    retry of a client whose reconnection in that step committed on the
    server and not on its side (docs/PROTOCOL.md §10.2): the profile's
    current key is the one the step's newest reconnection made, still
    unconfirmed, the message names the key before it (the one that
    reconnection came from, which the client still holds), with a nonce
    none of the step's committed reconnections carried, and fewer than
    L{MAX_ATTEMPTS_PER_STEP} of them committed.

    @param spent: the profile's L{SpentOfflineStep}, or L{None}.
    @param profile: the profile's L{Profile}.
    @param message: the L{wire.Reconnect}.
    """
    return (
        spent is not None
        and message.nonce is not None
        and spent.key_id == profile.key_id
        and profile.previous_held
        and message.key_id == profile.previous_key_id
        and message.nonce not in spent.attempt_nonces
        and len(spent.attempt_nonces) < MAX_ATTEMPTS_PER_STEP
    )


def _sealing_key(offline_key: bytes, message) -> bytes:
    """
    The key C{message}'s junk is sealed under for this offline key: the
    attempt's own key, or the offline key itself for the first form of the
    message, which has no nonce.
    """
    if message.nonce is None:
        return offline_key
    return keyschedule.attempt_key(offline_key, message.nonce, message.user)


def _form_note(message, spent, step) -> str:
    """
    What the audit record of an accepted reconnection adds: that it
    retried a step already spent, or came in the first form.
    """
    if message.nonce is None:
        return " (the first form of the message, without an attempt nonce)"
    if spent is not None and step == spent.step:
        return (
            ", again: the client did not commit the rotation the last "
            "reconnection in that step committed"
        )
    return ""


def _opening(
    sealing_key: bytes, sealed: bytes, user: str
) -> keyschedule.SealingKey | None:
    """
    @return: C{sealing_key} made ready to seal the answer ("ok") when the
        client's junk, C{sealed}, opens under it, so that the attempt's
        key is made once for both messages, as the agent holds it;
        L{None} when it does not open.
    """
    try:
        sealing = keyschedule.SealingKey(sealing_key, user)
        sealing.open(sealed, keyschedule.RECONNECT_PURPOSE)
    except keyschedule.KeyScheduleError:
        # A SealError among them: the junk did not open.
        return None
    return sealing
