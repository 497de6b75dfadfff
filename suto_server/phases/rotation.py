# -*- test-case-name: tests.phases.test_connection_rotation,tests.phases.test_connection_primed,tests.phases.test_rotation_awaits,tests.phases.test_primed_awaits -*-
"""
The rotation connection's driver: a device's agent keeps one connection
open and rotates its key on it, in lockstep, by L{RotationConversation}.

Before a rotation begins the driver asks the rules in order: the
reconnection rules (a blacklisted profile, or one marked offline that has
not reconnected, may not rotate), the rotation rules (is the presented key
the profile's?), and the port tracking (may this connection, from this
address, serve the profile?); only then does the rotation rules' C{begin}
derive the next key.  A reconnection is checked under its attempt's key
(from the offline key) and admitted by the tracking the same way, and lets
one rotation follow, whose commit spends the step and the attempt's nonce.

A version-3 connection primes each next rotation (docs/PROTOCOL.md §9.2):
every commit is answered with the server's share for the next rotation,
whose private key the driver holds (in memory only, never logged) until
that rotation, C{SUTO_C_ROTATE_PRIMED_}, uses it once, from the key it
was handed out under and no other: the same checks as a rotation's,
then the rules' C{begin} with that key and their C{acknowledge} of the
ack it carries, back to back, and a new share with its commit.

On the profile's live connection a verification (docs/PROTOCOL.md §11)
challenges the agent to prove its key, between rotations
(L{suto_server.phases.challenges}).

Each of these steps awaits the rules, which await the store: the driver
starts it once (L{Driver.run}) and, after every wait, looks again at
whether the connection is still open before it answers or goes on
(C{ended}, not only C{lost}: a timeout or a pipelined message may have
closed it meanwhile, before its transport reports the loss, and a step
going on then would count a rotation on a closed connection, set its
timeout again, or make it the profile's live one); only the
acknowledgement a primed rotation carried is still judged then, so that
hanging up at once hides no failure.  While a step waits the machine
is in a state that asks nothing of the peer (C{beginning},
C{reconnecting}, C{committing}, C{committing_primed}): a message arriving
then is pipelined, answered as the table says.  A store that fails a step
answers C{SUTO_ERROR_BUSY}; nothing was committed, and the client tries
again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from suto_server.core import timing, wire
from suto_server.core.machine import Close
from suto_server.machines.rotation import (
    Abandon,
    Begin,
    Commit,
    CommitPrimed,
    Reconnect,
    RotationConversation,
)
from suto_server.phases.challenges import ChallengingDriver
from suto_server.rules.reconnection import Reconnection, ReconnectRefused
from suto_server.rules.rotation import Rotation, RotationRefused
from suto_server.rules.tracking import Tracking


@dataclass(frozen=True, slots=True)
class HeldShare:
    """
    The server's share for a version-3 connection's next rotation, held
    in memory only between that connection's commits (docs/PROTOCOL.md
    §9.2).

    @ivar private: its X25519 private key; key material, never logged
        (C{repr} leaves it out) nor stored.
    @ivar follows: the id of the key it was handed out under, sealed: the
        one key the primed rotation may rotate from.
    """

    private: X25519PrivateKey = field(repr=False)
    follows: str


@dataclass(frozen=True)
class RotationRules:
    """
    What rotation connections need, on a listener that rotates keys.

    @ivar rotation: the key rotation rules.
    @ivar reconnection: the offline and blacklist rules, or L{None} where
        profiles may not reconnect (nor ask for the server's time).
    @ivar tracking: the port-tracking rules, or L{None} to admit rotation
        connections from anywhere.
    @ivar idle_timeout: seconds a rotation connection may stay quiet
        between rotations (the rotation interval, its jitter, and grace).
    """

    rotation: Rotation
    reconnection: Reconnection | None = None
    tracking: Tracking | None = None
    idle_timeout: float = timing.silence_allowed(
        timing.DEFAULT_ROTATION_INTERVAL, timing.DEFAULT_ROTATION_GRACE
    )


def tell_time(connection, reconnection: Reconnection) -> None:
    """
    A client derives its offline key for the server's time step, whatever
    its own clock says: send it the time and the step.
    """
    connection.send(wire.ServerTime(int(connection.clock.seconds()), reconnection.step))


class RotationDriver(ChallengingDriver):
    """
    Carries out L{RotationConversation}'s actions for the profile C{user},
    on a connection that agreed on protocol C{version}.
    """

    __slots__ = (
        "_rules",
        "_primes",
        "_share",
        "_pending",
        "_admitted",
        "_committing",
        "_offline_step",
        "_attempt_nonce",
    )

    ACTIONS = {
        **ChallengingDriver.ACTIONS,
        Begin: "_begin",
        Reconnect: "_reconnect",
        Commit: "_commit",
        CommitPrimed: "_commit_primed",
        Abandon: "_abandon",
    }

    def __init__(
        self, connection, rules: RotationRules, user: str, version: int
    ) -> None:
        super().__init__(
            connection,
            RotationConversation(user),
            user,
            rules.rotation.verify_proofs,
        )
        self._rules = rules
        # Whether every commit hands out the share of the next rotation.
        self._primes = version >= wire.PRIMED_SINCE
        # That share, until the primed rotation uses it.
        self._share = None
        self._pending = None
        self._admitted = False
        # A rotation's commit is on its way to the store.
        self._committing = False
        # What this connection's reconnection spends when the one rotation
        # it lets follow commits: the offline step, and the attempt's
        # nonce.  That rotation takes them (see _begin_rotation); the
        # connection's later rotations are plain ones.
        self._offline_step = None
        self._attempt_nonce = None

    def connection_lost(self) -> None:
        self._share = None
        self._end_challenges()
        self.perform(self.machine.connection_lost())
        if self._admitted and self._rules.tracking is not None:
            # A commit on its way still proves the move it completes.
            self._rules.tracking.detach(
                self.user, self.connection, keep_move=self._committing
            )

    def _close(self, action: Close) -> None:
        # The conversation is over: no rotation will use the share, and a
        # peer that stops reading could keep the transport (and this
        # driver) for as long as TCP lets it.
        self._share = None
        super()._close(action)

    def _abandon(self, action: Abandon) -> None:
        # The machine has ended the conversation: a failure here is only
        # logged (run's answer finds the conversation over).
        self.run(
            self._rules.rotation.failures.record(
                self.user,
                self.connection.source,
                action.reason,
                self.connection.clock.seconds(),
                held_elsewhere=self._held_elsewhere(),
            ),
            "recording an abandoned rotation",
        )

    def _held_elsewhere(self) -> bool:
        """
        Is another connection the profile's live one?  Then a rotation
        failing on this one is not the key holder's failure.
        """
        tracking = self._rules.tracking
        return tracking is not None and tracking.held_elsewhere(
            self.user, self.connection
        )

    def _begin(self, action: Begin) -> None:
        self._rotation_started()
        self.run(self._begin_rotation(action.message), "beginning a rotation")

    def _commit_primed(self, action: CommitPrimed) -> None:
        self._rotation_started()
        # The share is used once, whatever becomes of this rotation.
        share, self._share = self._share, None
        self.run(
            self._begin_rotation(action.message, share),
            "committing a primed rotation",
        )

    def _rotation_started(self) -> None:
        connection = self.connection
        connection.ticket.rotation_started()
        # From here the exchange's timeout bounds the rotation, the
        # store's answers included: a store that never answers ends the
        # connection as a silent peer would, not an interval later.
        connection.setTimeout(connection.exchange_timeout)

    async def _begin_rotation(self, message, share=None) -> None:
        """
        Check the presented key, then (for a connection that tracking has
        not yet admitted) the profile's location, then derive the next
        key: with a fresh share, answered "ok"; or, for a primed rotation
        (C{message} a L{wire.RotatePrimed}), with the L{HeldShare} the last
        commit handed out, then check the acknowledgement C{message}
        carries and commit.  A primed rotation rotates from the key the
        share was handed out under, or from no key: its holder
        proved that key on this connection, so a rotation from another
        (the previous, which a commit would roll back to) is not its
        client's.
        """
        connection = self.connection
        rotation = self._rules.rotation
        reconnection = self._rules.reconnection
        tracking = self._rules.tracking
        now = connection.clock.seconds()
        source = connection.source
        # The profile comes with the reconnection rules' marks, in one
        # read of the store; without those rules the key check reads it.
        read = {}
        if reconnection is not None:
            try:
                read["profile"] = await reconnection.check_rotation(
                    message.user,
                    message.key_id,
                    source,
                    now,
                    reconnected=self._offline_step is not None,
                )
            except ReconnectRefused:
                self.perform(self.machine.denied())
                return
        try:
            profile, presented = await rotation.check_key(
                message.user, message.key_id, source, now, **read
            )
        except RotationRefused:
            self.perform(self.machine.refused())
            return
        if share is not None and message.key_id != share.follows:
            self.perform(self.machine.refused())
            return
        # A primed rotation carried its acknowledgement: judged below even
        # if the connection ended meanwhile (see _judge).
        if connection.ended and share is None:
            return
        # Admitted already, begin awaits nothing before it derives and can
        # use the key just checked; after a wait for the tracker it checks
        # again, as another connection may have rotated the profile
        # meanwhile.
        checked = None
        if tracking is None or self._admitted:
            checked = (profile, presented)
        else:
            current, previous = rotation.held_keys(profile)
            if not await self._track(
                profile, current, now, previous=previous, proven=False
            ):
                return
            self._admitted = True
        # Only the rotation right after the reconnection spends its step
        # and nonce.  Were a later one on this connection to carry them,
        # its commit would offer the store a nonce already recorded, which
        # it refuses as a replayed reconnection: the key holder's next
        # rotation would fail, and it would go offline again.
        offline_step, self._offline_step = self._offline_step, None
        attempt_nonce, self._attempt_nonce = self._attempt_nonce, None
        try:
            pending = await rotation.begin(
                message.user,
                message.key_id,
                message.junk,
                message.public,
                source,
                connection.clock.seconds(),
                offline_step=offline_step,
                attempt_nonce=attempt_nonce,
                checked=checked,
                server_private=None if share is None else share.private,
            )
        except RotationRefused:
            self.perform(self.machine.refused())
            return
        if share is not None:
            if connection.ended:
                await self._judge(pending, message.sealed)
            else:
                await self._commit_rotation(pending, message.sealed)
            return
        if connection.ended:
            return
        self._pending = pending
        connection.setTimeout(connection.exchange_timeout)
        self.perform(self.machine.started(pending.server_public, pending.ok))

    async def _judge(self, pending, sealed: bytes) -> None:
        """
        A primed rotation whose connection ended while its key was
        checked commits nothing, but its acknowledgement is judged, as a
        two-message rotation's is whenever its connection ends: one that
        does not open counts as a failed rotation (the rules record it).
        """
        with contextlib.suppress(RotationRefused):
            await self._rules.rotation.check_ack(
                pending,
                sealed,
                self.connection.source,
                self.connection.clock.seconds(),
                held_elsewhere=self._held_elsewhere(),
            )

    def _reconnect(self, action: Reconnect) -> None:
        if self._rules.reconnection is None:
            self.perform(self.machine.refused())
            return
        self.run(self._rejoin(action.message), "checking a reconnection")

    async def _rejoin(self, message) -> None:
        """
        A client that marked itself offline came back: check its offline
        key, then (from a new address) the profile's location, then let
        one rotation follow.
        """
        connection = self.connection
        try:
            accepted = await self._rules.reconnection.reconnect(
                message, connection.source, connection.clock.seconds()
            )
        except ReconnectRefused as refusal:
            if refusal.reason == "unknown_key":
                self.perform(self.machine.refused())
            else:
                self.perform(self.machine.denied())
            return
        if connection.ended:
            return
        tracking = self._rules.tracking
        if tracking is not None and not await self._track(
            accepted.profile,
            accepted.key,
            connection.clock.seconds(),
            previous=accepted.previous,
            proven=True,
        ):
            return
        self._admitted = tracking is not None
        self._offline_step = accepted.step
        self._attempt_nonce = accepted.attempt_nonce
        self.perform(self.machine.reconnected(accepted.ok))

    async def _track(self, profile, key, now, *, previous, proven) -> bool:
        """
        Ask the tracking to make this connection C{profile}'s live one,
        as a rotation's first check and a reconnection both must.

        @return: whether the exchange goes on; L{False} once it was
            refused (and told so) or the client hung up while the tracker
            answered.
        """
        connection = self.connection
        tracking = self._rules.tracking
        admit = await tracking.admit(
            profile,
            key,
            connection.source,
            connection,
            now,
            previous=previous,
            proven=proven,
        )
        if connection.ended:
            if admit:
                # Made live after it hung up: it is not, and will prove
                # nothing.
                tracking.detach(self.user, connection)
            return False
        if not admit:
            self.perform(self.machine.refused())
        return admit

    def _commit(self, action: Commit) -> None:
        pending, self._pending = self._pending, None
        self.run(self._commit_rotation(pending, action.sealed), "committing a rotation")

    async def _commit_rotation(self, pending, sealed: bytes) -> None:
        """
        Check the acknowledgement and commit the new key; only then
        answer "done".
        """
        connection = self.connection
        tracking = self._rules.tracking
        self._committing = True
        try:
            committed = await self._rules.rotation.acknowledge(
                pending,
                sealed,
                connection.source,
                connection.clock.seconds(),
                held_elsewhere=self._held_elsewhere(),
                prime=self._primes,
            )
        except Exception as error:
            self._committing = False
            if tracking is not None:
                tracking.forget(connection)
            if not isinstance(error, RotationRefused):
                raise
            if not connection.ended:
                self.perform(self.machine.rejected())
            return
        self._committing = False
        self._rotations += 1
        if tracking is not None and tracking.claimed(connection):
            # The acknowledgement proved the key and the fingerprint.  The
            # rotation is committed whatever becomes of the move's record,
            # so a failure there is only logged.  (A connection holds a
            # claim until its first rotation commits: its later ones have
            # nothing to prove.)
            self.run_logged(
                tracking.proven(connection, connection.clock.seconds()),
                "recording a move",
            )
        if not connection.ended:
            # Quiet until the next rotation is due, plus its grace.
            connection.setTimeout(self._rules.idle_timeout)
            if committed.next_private is None:
                self.perform(self.machine.committed(committed.sealed))
            else:
                self._share = HeldShare(committed.next_private, pending.new_key_id)
                self.perform(self.machine.committed_next(committed.sealed))
            connection.ticket.rotated()
            self._send_challenges()
