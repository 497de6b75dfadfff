# -*- test-case-name: tests.cluster.test_verify_relay -*-
"""
Verifications of a live rotation connection held by another server
process on the same PostgreSQL store (docs/PROTOCOL.md §11.5).

A device's live rotation connection is on one process only, while the
verification API may be asked on any (several processes behind one
port share the callers).  The process asked, finding no live connection
of its own, announces a C{verify} notice: the user, a fresh nonce and
the time it still waits, under a random 63-bit key.  The process holding
that user's live connection, if any, answers C{holding} at once,
challenges the connection with the nonce, and announces the outcome:
C{matched}, C{mismatched}, C{no_answer} or C{busy}, with the
connection's address (for the audit record).  It never sends the proof
nor any key material: the proof is checked where the connection
is, against the profile's keys as that connection holds them.  A process
no other answers within L{HOLDER_WAIT} seconds reports that nobody holds
a live connection (C{device_offline}, as with one process).

The notices go through the cluster relay (L{suto_server.cluster.relay},
checked by L{suto_server.cluster.notice}).  An answer counts only when
it is addressed to this process, names one of its outstanding requests
by key and carries that request's nonce, and comes from the process that
first said it holds the connection.  Any role that can connect to the
database can send on the store's channel and hear it, so the relay acts
only on notices sealed with the deployment's notice key
(L{suto_server.cluster.notice}); the binding to key and nonce keeps a
stale or misdirected answer from ever being read as another request's.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from suto_server.core.keyschedule import CHECK_NONCE_SIZE
from suto_server.rules.registry import LiveSessions, TooManyChallenges
from suto_server.store.errors import StoreError

#: Seconds the process asked waits for another to say it holds the
#: user's live connection, before answering that none does.
HOLDER_WAIT = 1.0

#: The most challenges this process runs at once for other processes.
MAX_SERVED = 256

#: The outcome each answer of a live connection's challenge is announced as.
_OUTCOMES = {True: "matched", False: "mismatched", None: "no_answer"}


@dataclass(frozen=True)
class Answered:
    """
    What the process holding a live connection announced.

    @ivar outcome: one of L{suto_server.cluster.notice.PROOF_OUTCOMES}.
    @ivar device: the connection's address.
    """

    outcome: str
    device: str | None


@dataclass
class _Asked:
    """
    One verification this process asked the others for.

    @ivar holder: the process that said it holds the connection, once one did.
    """

    nonce: bytes
    answer: Deferred
    timer: IDelayedCall
    holder: str | None = None


@dataclass
class _Served:
    """
    One challenge this process runs on another's behalf.
    """

    challenge: Deferred
    timer: IDelayedCall | None = None


class VerifyRelay:
    """
    Asks the other processes on the store to verify a user's live
    connection, and verifies those this process holds for them.

    @param relay: the L{suto_server.cluster.relay.Relay} the notices go
        through; it delivers the ones of verifications here.
    @param live: this process's live rotation connections.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        relay,
        live: LiveSessions,
        random_key: Callable[[], int] = lambda: secrets.randbelow(2**63),
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock = clock
        self._relay = relay
        self._live = live
        self._random_key = random_key
        self._random_bytes = random_bytes
        self._asked: dict[int, _Asked] = {}
        self._served: dict[tuple[str, int], _Served] = {}

    def has_others(self) -> bool:
        """
        @return: whether another process was heard from lately, which may
            hold the live connection.
        """
        return bool(self._relay.others())

    def ask(self, user: str, timeout: float) -> Deferred:
        """
        Ask the other processes to challenge C{user}'s live connection.

        @param timeout: the seconds the caller still waits.
        @return: a L{Deferred} firing with the L{Answered} announced, or
            with L{None}
            when no process said it holds the connection within
            L{HOLDER_WAIT} seconds; cancel it to give up.
        """
        key = self._random_key()
        nonce = self._random_bytes(CHECK_NONCE_SIZE)
        answer = Deferred(lambda _: self._forget(key))
        timer = self._clock.callLater(min(HOLDER_WAIT, timeout), self._unheld, key)
        self._asked[key] = _Asked(nonce, answer, timer)
        sent = self._relay.send("verify", key, user=user, nonce=nonce.hex(), timeout=timeout)
        sent.addCallback(lambda told: None if told else self._unheld(key))
        return answer

    def _unheld(self, key: int) -> None:
        asked = self._forget(key)
        if asked is not None:
            asked.answer.callback(None)

    def _forget(self, key: int) -> _Asked | None:
        asked = self._asked.pop(key, None)
        if asked is not None and asked.timer.active():
            asked.timer.cancel()
        return asked

    def deliver(self, node: str, notice: dict) -> None:
        """
        Act on a verification notice another process sent, already
        checked (L{suto_server.cluster.notice.parse_notice}).
        """
        if notice["op"] == "verify":
            self._serve(node, notice)
        elif notice["to"] == self._relay.node:
            self._answered(node, notice)

    def _answered(self, node: str, notice: dict) -> None:
        asked = self._asked.get(notice["key"])
        if asked is None or not secrets.compare_digest(asked.nonce, notice["nonce"]):
            self.log.warn("dropped an answer to no verification of this process")
            return
        if asked.holder is None:
            asked.holder = node
            if asked.timer.active():
                # The holder answers within the caller's deadline.
                asked.timer.cancel()
        elif asked.holder != node:
            self.log.warn("dropped a second process's answer to a verification")
            return
        if notice["op"] == "verified":
            del self._asked[notice["key"]]
            asked.answer.callback(Answered(notice["outcome"], notice["device"]))

    def _serve(self, node: str, notice: dict) -> None:
        """
        Challenge the live connection the C{verify} notice asks for, if
        this process holds it, and announce the outcome to C{node}.
        """
        session = self._live.get(notice["user"])
        served = (node, notice["key"])
        if session is None or served in self._served:
            return
        if len(self._served) >= MAX_SERVED:
            self.log.warn("too many verifications asked by other processes; one ignored")
            return
        key, nonce, device = notice["key"], notice["nonce"].hex(), session.address
        self._relay.send("holding", key, to=node, nonce=nonce)
        challenge = session.connection.challenge(notice["nonce"])
        entry = self._served[served] = _Served(challenge)

        def busy(failure):
            # The asker reads either as error, "try again": too many
            # challenges wait, or the store could not give the proofs.
            failure.trap(TooManyChallenges, StoreError)
            return "busy"

        def answer(outcome):
            self._end(served)
            self._relay.send(
                "verified", key, to=node, nonce=nonce, outcome=outcome, device=device
            )

        def given_up(failure):
            # The asking process's deadline passed: nobody reads an answer.
            failure.trap(CancelledError)
            self._end(served)

        challenge.addCallbacks(_OUTCOMES.__getitem__, busy).addCallbacks(answer, given_up)
        if not challenge.called:
            entry.timer = self._clock.callLater(notice["timeout"], challenge.cancel)

    def _end(self, served: tuple[str, int]) -> None:
        entry = self._served.pop(served, None)
        if entry is not None and entry.timer is not None and entry.timer.active():
            entry.timer.cancel()

    def stop(self) -> None:
        """
        Give up every verification under way, asked or served: the
        notices stop with the relay.
        """
        for key in list(self._asked):
            self._unheld(key)
        for entry in list(self._served.values()):
            entry.challenge.cancel()


def verify_relay_for(clock, relay, live) -> VerifyRelay | None:
    """
    @return: the L{VerifyRelay} of a server whose C{relay} shares its
        store with other processes (L{None} when it has none), serving it.
    """
    if relay is None:
        return None
    verifications = VerifyRelay(clock, relay, live)
    relay.serve_verifications(verifications)
    return verifications
