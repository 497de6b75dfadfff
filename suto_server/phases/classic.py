# -*- test-case-name: tests.phases.test_connection,tests.phases.test_classic_off_reactor -*-
"""
The classic challenge's driver: a connection that answers a pending
authentication request (matched by its source address) runs
L{ClassicConversation}, whose response is checked through the portal and whose
verdict ends the request at the rendezvous.

Before the conversation starts, the connection claims its request (in
the store, when other processes share it) and the user's salt is read:
both may be answered later by a store across the network, so the driver
is decided by a coroutine the connection waits for
(L{suto_server.phases.starting}).  A store that cannot answer ends the
request as an error and tells the device C{SUTO_ERROR_BUSY}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from suto_server.core import schemes, wire
from suto_server.machines.classic import ClassicConversation, Finish
from suto_server.phases.driver import VerifyingDriver
from suto_server.rules.rendezvous import Rendezvous, Verdict


@dataclass(frozen=True)
class ClassicRules:
    """
    What the classic challenge needs, on every listener.

    @ivar rendezvous: the pending authentication requests.
    @ivar portal: checks the challenge's responses.
    @ivar salt_for: returns an awaitable of the salt of a user's stored
        hash, or of L{None} if the user has no usable hash.
    @ivar make_rsalt: returns a fresh random salt.
    """

    rendezvous: Rendezvous
    portal: object
    salt_for: Callable[[str], Awaitable[str | None]]
    make_rsalt: Callable[[], str]


def salt_lookup(source):
    """
    Build the classic conversation's salt lookup over C{source}: the salt of the user's
    stored hash, or L{None} when the user has no usable hash.
    """

    async def salt_for(user: str) -> str | None:
        password_hash = await maybeDeferred(source.hash_for, user)
        if password_hash is None:
            return None
        try:
            return schemes.salt_of(password_hash)
        except schemes.UnsupportedScheme:
            return None

    return salt_for


class ClassicDriver(VerifyingDriver):
    """
    Carries out L{ClassicConversation}'s actions for the request C{request}.
    """

    __slots__ = ("_rendezvous", "_request")

    ACTIONS = {**VerifyingDriver.ACTIONS, Finish: "_finish"}

    def __init__(self, connection, rules: ClassicRules, request, salt) -> None:
        super().__init__(
            connection,
            ClassicConversation(connection.framing, salt, rules.make_rsalt),
            request.user,
            rules.portal,
        )
        self._rendezvous = rules.rendezvous
        self._request = request

    @classmethod
    def start(cls, connection, rules: ClassicRules) -> Deferred:
        """
        Claim the request waiting for the connection's source address.

        @return: a L{Deferred} firing with the driver, or with L{None} when
            no request waits (the connection is then refused, and its
            ticket logs that once per source per interval: anyone can
            connect as often as the limits allow), the store could not
            answer, or the connection ended meanwhile.
        """
        return Deferred.fromCoroutine(cls._claim(connection, rules))

    @classmethod
    async def _claim(cls, connection, rules: ClassicRules):
        source = connection.source
        request = await rules.rendezvous.claim(source) if source else None
        if request is None:
            connection.ticket.unanswered()
            if not connection.ended:
                connection.refuse(wire.ERROR_NO_REQUEST)
            return None
        try:
            salt = await rules.salt_for(request.user)
        except Exception:
            connection.undecided(
                cls.log, Failure(), "reading the salt of {user}", user=request.user
            )
            rules.rendezvous.finish(
                request, Verdict.ERROR, "the salt could not be read"
            )
            if not connection.ended:
                connection.refuse(wire.ERROR_BUSY)
            return None
        if connection.ended:
            rules.rendezvous.finish(request, Verdict.ERROR, "connection lost")
            return None
        return cls(connection, rules, request, salt)

    def connection_lost(self) -> None:
        self._rendezvous.finish(self._request, Verdict.ERROR, "connection lost")

    def _finish(self, action: Finish) -> None:
        self.log.info(
            "authentication for {user} from {source}: {verdict}{reason_text}",
            user=self.user,
            source=self.connection.source,
            verdict=action.verdict.value,
            reason=action.reason,
            reason_text=f" ({action.reason})" if action.reason else "",
        )
        self._rendezvous.finish(self._request, action.verdict, action.reason)
