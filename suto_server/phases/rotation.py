# -*- test-case-name: tests.phases.test_connection_rotation -*-
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

On the profile's live connection a verification (docs/PROTOCOL.md §11)
challenges the agent to prove its key (L{RotationDriver.challenge}): the
challenge goes out between rotations, the proofs it expects are computed
by the rotation rules as it goes, and the agent's answer is compared with
them in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from twisted.internet.defer import Deferred, fail, succeed

from suto_server.core import timing, wire
from suto_server.core.machine import Send
from suto_server.machines.rotation import (
    Abandon,
    Begin,
    Commit,
    Prove,
    Reconnect,
    RotationConversation,
)
from suto_server.phases.driver import Driver
from suto_server.rules.reconnection import Reconnection, ReconnectRefused
from suto_server.rules.registry import TooManyChallenges
from suto_server.rules.rotation import Rotation, RotationRefused
from suto_server.rules.tracking import Tracking
from suto_server.store.errors import StoreError

#: Challenges one connection may have waiting for their answers: a
#: verification waits seconds, and the callers' limits keep them few.
MAX_CHALLENGES = 16


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
    connection.send(
        wire.ServerTime(int(connection.clock.seconds()), reconnection.step)
    )


class RotationDriver(Driver):
    """
    Carries out L{RotationConversation}'s actions for the profile C{user}.
    """

    __slots__ = (
        "_rules",
        "_pending",
        "_admitted",
        "_committing",
        "_offline_step",
        "_attempt_nonce",
        "_challenges",
    )

    ACTIONS = {
        **Driver.ACTIONS,
        Begin: "_begin",
        Reconnect: "_reconnect",
        Commit: "_commit",
        Abandon: "_abandon",
        Prove: "_prove",
    }

    def __init__(self, connection, rules: RotationRules, user: str) -> None:
        super().__init__(connection, RotationConversation(user), user)
        self._rules = rules
        self._pending = None
        self._admitted = False
        # A rotation's commit is on its way to the store.
        self._committing = False
        # What this connection's reconnection spends when the one rotation
        # it lets follow commits: the offline step, and the attempt's
        # nonce.  That rotation takes them (see _begin); the connection's
        # later rotations are plain ones.
        self._offline_step = None
        self._attempt_nonce = None
        # nonce -> [the verification's Deferred, the proofs expected, or
        # None while the challenge waits for the rotation under way]
        self._challenges: dict[bytes, list] = {}

    def challenge(self, nonce: bytes) -> Deferred:
        """
        Ask the agent to prove the profile's current key, bound to
        C{nonce}.

        @return: a L{Deferred} firing with C{True} (the proof matched),
            C{False} (it did not), or L{None} (the connection ended before
            an answer), or failing with L{TooManyChallenges} at once (the
            connection has L{MAX_CHALLENGES} waiting, or one with this
            nonce); cancel it to give up waiting.
        """
        if len(self._challenges) >= MAX_CHALLENGES or nonce in self._challenges:
            return fail(TooManyChallenges())
        d = Deferred(lambda _: self._challenges.pop(nonce, None))
        self._challenges[nonce] = [d, None]
        self._send_challenges()
        return d

    def _send_challenges(self) -> None:
        """
        Send the challenges still waiting, if the machine says the
        connection is between rotations.
        """
        for nonce, entry in list(self._challenges.items()):
            if entry[1] is not None or self.connection.lost:
                continue
            actions = self.machine.challenge(nonce)
            if any(isinstance(action, Send) for action in actions):
                # The keys as they are when the challenge goes out: the
                # agent answers with the key it holds then.
                try:
                    entry[1] = self._rules.rotation.verify_proofs(self.user, nonce)
                except Exception:
                    self.log.failure(
                        "preparing a verification of {user} failed", user=self.user
                    )
                    del self._challenges[nonce]
                    entry[0].callback(None)
                    continue
            self.perform(actions)

    def _prove(self, action: Prove) -> None:
        message = action.message
        entry = self._challenges.get(message.nonce)
        if entry is None or entry[1] is None:
            # No challenge of ours is waiting for it (it came too late, or
            # was never asked): it proves nothing.
            return
        del self._challenges[message.nonce]
        matched = False
        for expected in entry[1]:
            matched |= hmac.compare_digest(expected, message.proof)
        entry[0].callback(matched)

    def connection_lost(self) -> None:
        challenges, self._challenges = self._challenges, {}
        for d, _ in challenges.values():
            d.callback(None)
        self.perform(self.machine.connection_lost())
        if self._admitted and self._rules.tracking is not None:
            # A commit on its way still proves the move it completes.
            self._rules.tracking.detach(
                self.user, self.connection, keep_move=self._committing
            )

    def _abandon(self, action: Abandon) -> None:
        self._rules.rotation.failed(
            self.user,
            self.connection.source,
            action.reason,
            self.connection.clock.seconds(),
            held_elsewhere=self._held_elsewhere(),
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
        """
        Check the presented key, then (for a connection that tracking has
        not yet admitted) the profile's location, then derive the next
        key.
        """
        message = action.message
        connection = self.connection
        connection.ticket.rotation_started()
        rotation = self._rules.rotation
        reconnection = self._rules.reconnection
        tracking = self._rules.tracking
        now = connection.clock.seconds()
        source = connection.source
        try:
            if reconnection is not None:
                reconnection.check_rotation(
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
            profile, presented = rotation.check_key(
                message.user, message.key_id, source, now
            )
        except RotationRefused:
            self.perform(self.machine.refused())
            return
        # Admitted at once, begin runs in this turn and can use the key
        # just checked; after a wait for the tracker it checks again, as
        # another connection may have rotated the profile meanwhile.
        checked = None
        if tracking is None or self._admitted:
            admitted = succeed(True)
            checked = (profile, presented)
        else:
            current, previous = rotation.held_keys(profile)
            admitted = tracking.admit(
                profile,
                current,
                source,
                connection,
                now,
                previous=previous,
                proven=False,
            )

        def begin(admit: bool) -> None:
            if connection.lost:
                if admit and tracking is not None:
                    # Admitted after it hung up: it will prove nothing.
                    tracking.detach(self.user, connection)
                return
            if not admit:
                self.perform(self.machine.refused())
                return
            self._admitted = True
            # Only the rotation right after the reconnection spends its step
            # and nonce.  Were a later one on this connection to carry them,
            # its commit would offer the store a nonce already recorded,
            # which it refuses as a replayed reconnection: the key holder's
            # next rotation would fail, and it would go offline again.
            offline_step, self._offline_step = self._offline_step, None
            attempt_nonce, self._attempt_nonce = self._attempt_nonce, None
            try:
                self._pending = rotation.begin(
                    message.user,
                    message.key_id,
                    message.junk,
                    message.public,
                    source,
                    connection.clock.seconds(),
                    offline_step=offline_step,
                    attempt_nonce=attempt_nonce,
                    checked=checked,
                )
            except RotationRefused:
                self.perform(self.machine.refused())
            else:
                connection.setTimeout(connection.exchange_timeout)
                self.perform(
                    self.machine.started(self._pending.server_public, self._pending.ok)
                )

        admitted.addCallback(begin).addErrback(self._broke)

    def _reconnect(self, action: Reconnect) -> None:
        """
        A client that marked itself offline came back: check its offline
        key, then (from a new address) the profile's location, then let
        one rotation follow.
        """
        reconnection = self._rules.reconnection
        if reconnection is None:
            self.perform(self.machine.refused())
            return
        connection = self.connection
        try:
            accepted = reconnection.reconnect(
                action.message, connection.source, connection.clock.seconds()
            )
        except ReconnectRefused as refusal:
            if refusal.reason == "unknown_key":
                self.perform(self.machine.refused())
            else:
                self.perform(self.machine.denied())
            return
        tracking = self._rules.tracking
        if tracking is None:
            admitted = succeed(True)
        else:
            admitted = tracking.admit(
                accepted.profile,
                accepted.key,
                connection.source,
                connection,
                connection.clock.seconds(),
                previous=accepted.previous,
                proven=True,
            )

        def answer(admit: bool) -> None:
            if connection.lost:
                return
            if not admit:
                self.perform(self.machine.refused())
                return
            self._admitted = tracking is not None
            self._offline_step = accepted.step
            self._attempt_nonce = accepted.attempt_nonce
            self.perform(self.machine.reconnected(accepted.ok))

        admitted.addCallback(answer).addErrback(self._broke)

    def _broke(self, failure) -> None:
        self.log.failure("rotation for {user} failed", failure, user=self.user)
        if not self.connection.lost:
            self.perform(self.machine.unavailable("internal error"))

    def _commit(self, action: Commit) -> None:
        connection = self.connection
        try:
            d = self._rules.rotation.acknowledge(
                self._pending,
                action.sealed,
                connection.source,
                connection.clock.seconds(),
                held_elsewhere=self._held_elsewhere(),
            )
        except RotationRefused:
            self.perform(self.machine.rejected())
            return
        self._pending = None
        self._committing = True
        tracking = self._rules.tracking

        def committed(done: bytes) -> None:
            self._committing = False
            if tracking is not None:
                # The acknowledgement proved the key and the fingerprint.
                tracking.proven(connection, connection.clock.seconds())
            if not connection.lost:
                # Quiet until the next rotation is due, plus its grace.
                connection.setTimeout(self._rules.idle_timeout)
                self.perform(self.machine.committed(done))
                connection.ticket.rotated()
                self._send_challenges()

        def failed(failure) -> None:
            self._committing = False
            if tracking is not None:
                tracking.forget(connection)
            if connection.lost:
                return
            if failure.check(RotationRefused):
                self.perform(self.machine.rejected())
            elif failure.check(StoreError):
                # Nothing was committed; the agent tries again.
                self.log.warn(
                    "committing a rotation for {user} failed: {error}",
                    user=self.user,
                    error=failure.getErrorMessage(),
                )
                self.perform(self.machine.unavailable("the commit failed"))
            else:
                self.log.failure(
                    "committing a rotation for {user} failed",
                    failure,
                    user=self.user,
                )
                self.perform(self.machine.unavailable("the commit failed"))

        d.addCallbacks(committed, failed)
