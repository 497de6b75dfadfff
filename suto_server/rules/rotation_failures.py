# -*- test-case-name: tests.rules.test_rotation -*-
"""
The count of rotations that fail on the client's side, and the alert a
run of them raises.

A rotation fails on the client's side when its acknowledgement never
comes or does not open (the client could not open "ok", or sent noise, or
its primed rotation's acknowledgement did not open): the server keeps the
old key.  A run of such failures means the client's fingerprint has most
likely changed, or a copy of its state runs on another machine, which
fails the same way: C{fingerprint_mismatch}, unproven, as a failure is
exactly what a peer without the key causes.

A failed rotation counts toward C{fingerprint_mismatch} only when it may
be the key holder's own.  It is not while another connection is the
profile's live one: that connection proved the key and the fingerprint,
so the holder's fingerprint is what it was, and the failing peer only
named a key id (a copy of the state at the same address holds a retired
key, and is a clone, within two rotations).  The server cannot tell the
holder's other failures from a forger's: the client sends nothing when it
cannot open "ok", it closes, exactly as a peer that gives up does; so
those count, and the alert stays for a changed fingerprint and for a copy
of the state on another machine.

Nor is a failure held against the address the profile was last used from
(its IPv6 /64): the client shares it with whoever is behind its NAT or on
its host, and a penalty for it would lock the user out for what a peer
that only named a key id did there.  Such a failure is recorded as
C{rotation_abandoned}, which the connection gate penalises only past its
own-address allowance (L{suto_server.rules.limits.OwnAddressAllowance});
a failure anywhere else is C{rotation_failed}.
"""

from __future__ import annotations

from suto_server.audit.log import AuditLog
from suto_server.rules.limits import source_key
from suto_server.store.errors import UnknownProfile

#: Consecutive rotations whose acknowledgement never came or did not open,
#: while no other connection held the profile, before
#: C{fingerprint_mismatch} is reported.
DEFAULT_FAILURE_ALERT = 3

#: Why a failure another connection's proof rules out is not counted.
_NOT_COUNTED = (
    "not counted toward fingerprint_mismatch: another connection holds the "
    "profile, having proven its key and fingerprint"
)


class RotationFailures:
    """
    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}),
        which keep the count with the profile.
    @param audit: the L{AuditLog} the failures and the alert go to.
    @ivar alert: consecutive failures before C{fingerprint_mismatch}.
    """

    def __init__(
        self, calls, audit: AuditLog, alert: int = DEFAULT_FAILURE_ALERT
    ) -> None:
        self._calls = calls
        self._audit = audit
        self.alert = alert

    async def record(
        self,
        user: str,
        source: str,
        reason: str,
        now: float,
        *,
        held_elsewhere: bool = False,
    ) -> None:
        """
        A rotation did not complete on the client's side (it could not
        open "ok", or its "ack" did not open): the server keeps the old
        key; after C{alert} such failures in a row the client's
        fingerprint has most likely changed, or a copy of its state runs on
        another machine, which fails the same way: the alert names where
        the failures come from and where the profile was last used.
        Unproven: a failure is exactly what a peer without the key causes.

        Recorded as C{rotation_abandoned} when it comes from the address
        the profile was last used from, which must not be penalised for
        it (within the gate's own-address allowance), and as
        C{rotation_failed} from anywhere else.

        @param held_elsewhere: whether another connection is the profile's
            live one, having proven the key and the fingerprint: the
            failure is then not the key holder's, and is recorded without
            counting (see the module's docstring).
        """
        profile = await self._calls.get_profile(user)
        if profile is None:
            return
        last = profile.last_address
        here = source_key(source)
        if here is not None and here == source_key(last):
            event = "rotation_abandoned"
        else:
            event = "rotation_failed"
        if held_elsewhere:
            self._audit.record(
                now, event, user, source, f"{reason}; {_NOT_COUNTED}", (source,)
            )
            return
        try:
            failures = await self._calls.record_rotation_failure(user)
        except UnknownProfile:
            return
        self._audit.record(now, event, user, source, reason, (source,))
        if failures < self.alert:
            return
        self._audit.record(
            now,
            "fingerprint_mismatch",
            user,
            source,
            f"{failures} rotations in a row failed on the client's side, the "
            f"last from {source}; its hardware fingerprint has likely "
            f"changed, or a copy of its state runs on another machine (the "
            f"profile was last used from {last})",
            (source,) if last in (None, source) else (source, last),
            unproven=True,
        )
