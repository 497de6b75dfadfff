# -*- test-case-name: tests.phases.test_connection_verify,tests.phases.test_connection_primed -*-
"""
The verification challenges (docs/PROTOCOL.md §11) a profile's live
rotation connection answers, as the part of its driver that asks them.

A verification asks the agent to prove its current key, bound to a fresh
nonce (L{ChallengingDriver.challenge}).  The challenge goes out only
between rotations: the proofs it expects are read first (the rules'
C{verify_proofs}, over the store), and are stale once a rotation commits
meanwhile, since the agent answers with the key it holds when the
challenge arrives; a challenge asked during a rotation waits for its end.
The agent's answer (C{SUTO_C_VERIFY_}, the machine's L{Prove}) is compared
with those proofs in constant time, and changes nothing on the
connection.
"""

from __future__ import annotations

import hmac

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from suto_server.core.machine import Send
from suto_server.machines.rotation import Prove
from suto_server.phases.driver import Driver
from suto_server.rules.registry import TooManyChallenges

#: Challenges one connection may have waiting for their answers: a
#: verification waits seconds, and the callers' limits keep them few.
MAX_CHALLENGES = 16

#: What a challenge holds while the proofs it expects are read: it goes out
#: once they are there.
_PREPARING = object()


class ChallengingDriver(Driver):
    """
    A driver whose connection a verification may challenge.

    Its machine tells whether the connection is C{between_rotations},
    sends a challenge (C{challenge(nonce)}) and asks L{Prove} for the
    agent's answer; the subclass counts its commits in C{_rotations} and
    calls L{_send_challenges} after each, and calls L{_end_challenges}
    when the connection ends.

    @param expected_proofs: reads the proofs an agent holding one of the
        profile's keys may answer a challenge with, given the user and
        the nonce (L{suto_server.rules.rotation.Rotation.verify_proofs}).
    """

    __slots__ = ("_expected_proofs", "_challenges", "_rotations")

    ACTIONS = {**Driver.ACTIONS, Prove: "_prove"}

    def __init__(self, connection, machine, user: str, expected_proofs) -> None:
        super().__init__(connection, machine, user)
        self._expected_proofs = expected_proofs
        # nonce -> [the verification's Deferred, the proofs expected;
        # _PREPARING while they are read, or None while the challenge
        # waits for the rotation under way]
        self._challenges: dict[bytes, list] = {}
        # Rotations committed on this connection: a challenge's proofs
        # read before the latest one are stale.
        self._rotations = 0

    def challenge(self, nonce: bytes) -> Deferred:
        """
        Ask the agent to prove the profile's current key, bound to
        C{nonce}.

        @return: a L{Deferred} firing with C{True} (the proof matched),
            C{False} (it did not), or L{None} (the connection ended before
            an answer), or failing with L{TooManyChallenges} at once (the
            connection has L{MAX_CHALLENGES} waiting, or one with this
            nonce) or with the store's error when the proofs it expects
            could not be read (the device was not asked); cancel it to
            give up waiting.
        """
        if len(self._challenges) >= MAX_CHALLENGES or nonce in self._challenges:
            return fail(TooManyChallenges())
        d = Deferred(lambda _: self._challenges.pop(nonce, None))
        self._challenges[nonce] = [d, None]
        self._send_challenges()
        return d

    def _send_challenges(self) -> None:
        """
        Prepare the challenges still waiting, if the connection is between
        rotations: each goes out once its proofs are read.
        """
        if (
            not self._challenges
            or not self.machine.between_rotations
            or self.connection.ended
        ):
            return
        for nonce, entry in list(self._challenges.items()):
            if entry[1] is None:
                entry[1] = _PREPARING
                self.run_logged(
                    self._send_challenge(nonce, entry), "sending a verification"
                )

    async def _send_challenge(self, nonce: bytes, entry: list) -> None:
        """
        Read the proofs C{nonce}'s challenge expects, then send it, if the
        connection is still between the same two rotations: the agent
        answers with the key it holds when the challenge arrives, which is
        the key the proofs were made from only then.
        """
        rotations = self._rotations
        try:
            proofs = await self._expected_proofs(self.user, nonce)
        except Exception:
            failure = Failure()
            self.logged(failure, "preparing a verification")
            if self._challenges.get(nonce) is entry:
                del self._challenges[nonce]
                entry[0].errback(failure)
            return
        if self._challenges.get(nonce) is not entry:
            # Cancelled, or the connection ended, while the proofs were read.
            return
        if self.connection.ended or rotations != self._rotations:
            entry[1] = None
            self._send_challenges()
            return
        actions = self.machine.challenge(nonce)
        entry[1] = proofs if any(isinstance(a, Send) for a in actions) else None
        self.perform(actions)

    def _prove(self, action: Prove) -> None:
        message = action.message
        entry = self._challenges.get(message.nonce)
        if entry is None or entry[1] is None or entry[1] is _PREPARING:
            # No challenge of ours is waiting for it (it came too late, or
            # was never asked): it proves nothing.
            return
        del self._challenges[message.nonce]
        matched = False
        for expected in entry[1]:
            matched |= hmac.compare_digest(expected, message.proof)
        entry[0].callback(matched)

    def _end_challenges(self) -> None:
        """
        The connection ended: every challenge waiting is answered
        L{None}.
        """
        challenges, self._challenges = self._challenges, {}
        for d, _ in challenges.values():
            d.callback(None)
