# -*- test-case-name: tests.phases.test_connection -*-
"""
The classic challenge's driver: a connection that answers a pending
authentication request (matched by its source address) runs
L{ClassicConversation}, whose response is checked through the portal and whose
verdict ends the request at the rendezvous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
    @ivar salt_for: returns the salt of a user's stored hash, or L{None}
        if the user has no usable hash.
    @ivar make_rsalt: returns a fresh random salt.
    """

    rendezvous: Rendezvous
    portal: object
    salt_for: Callable[[str], str | None]
    make_rsalt: Callable[[], str]


def salt_lookup(source):
    """
    Build the classic conversation's salt lookup over C{source}: the salt of the user's
    stored hash, or L{None} when the user has no usable hash.
    """

    def salt_for(user: str) -> str | None:
        password_hash = source.hash_for(user)
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

    def __init__(self, connection, rules: ClassicRules, request) -> None:
        super().__init__(
            connection,
            ClassicConversation(
                connection.framing,
                rules.salt_for(request.user),
                rules.make_rsalt,
            ),
            request.user,
            rules.portal,
        )
        self._rendezvous = rules.rendezvous
        self._request = request

    @classmethod
    def start(cls, connection, rules: ClassicRules) -> ClassicDriver | None:
        """
        Claim the request waiting for the connection's source address.

        @return: the driver, or L{None} when no request waits (the
            connection is then refused, and its ticket logs that once per
            source per interval: anyone can connect as often as the limits
            allow).
        """
        source = connection.source
        request = rules.rendezvous.claim(source) if source else None
        if request is None:
            connection.ticket.unanswered()
            connection.refuse(wire.ERROR_NO_REQUEST)
            return None
        return cls(connection, rules, request)

    def connection_lost(self) -> None:
        self._rendezvous.finish(self._request, Verdict.ERROR, "connection lost")

    def _finish(self, action: Finish) -> None:
        self.log.info(
            "authentication for {user} from {source}: {verdict}"
            "{reason_text}",
            user=self.user,
            source=self.connection.source,
            verdict=action.verdict.value,
            reason=action.reason,
            reason_text=f" ({action.reason})" if action.reason else "",
        )
        self._rendezvous.finish(self._request, action.verdict, action.reason)
