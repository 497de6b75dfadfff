# -*- test-case-name: tests.client.test_failover -*-
"""
One endpoint for the several servers of one deployment.

Servers that share one store (PostgreSQL, PROTOCOL.md §9.6) hold the
same profiles and keys, so an agent may rotate with any of them.  The
agent keeps using the server it last reached; when a connection attempt
fails (refused, timed out, unreachable), or a connection ends before the
server said anything (L{FailoverEndpoint.move_on}, which the agent calls:
a hung server accepts connections it never serves), the next attempt
goes to the next server of the list, round and round.  The attempts themselves are paced
by whoever calls L{FailoverEndpoint.connect} again: the agent's
L{twisted.application.internet.ClientService}, with the rotation's
back-off (L{suto_client.rotation.RotationFactory.retry_delay}), so a
deployment whose every server is down is tried no more often than one
server alone would be.

A rotation cut off by a server's death is not resumed where it stopped:
the agent keeps its key until C{SUTO_ROTATE_DONE} arrives, and starts its
next rotation on the next server from that key, which the store still
knows as current or as previous (PROTOCOL.md §9.3).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer


@implementer(IStreamClientEndpoint)
class FailoverEndpoint:
    """
    Connects to one of several servers: the one that last worked, or
    after a failed attempt the next one.

    @ivar current: the name of the server the next attempt goes to.
    """

    log = Logger()

    def __init__(self, servers: Sequence[tuple[str, IStreamClientEndpoint]]) -> None:
        """
        @param servers: C{(name, endpoint)} for each server, in the order
            they are tried; the name (an address) is for the log.
        @raise ValueError: there is none.
        """
        if not servers:
            raise ValueError("a failover endpoint needs a server")
        self._servers = list(servers)
        self._index = 0

    @property
    def current(self) -> str:
        return self._servers[self._index][0]

    def connect(self, protocolFactory):
        """
        Connect to the current server; should it fail, make the next one
        current for the next attempt.

        @return: a L{Deferred} firing as that server's endpoint's does.
        """
        name, endpoint = self._servers[self._index]
        connecting = endpoint.connect(protocolFactory)
        connecting.addErrback(self._failed, name)
        return connecting

    def move_on(self, why: str) -> None:
        """
        The current server was reached but did not answer (it closed the
        connection, or let it time out, before saying anything): a hung
        server accepts connections it never serves, so the next attempt
        goes to the next server.

        @param why: what happened, for the log.
        """
        self._move_from(self.current, why)

    def _failed(self, failure: Failure, name: str) -> Failure:
        self._move_from(name, failure.getErrorMessage())
        return failure

    def _move_from(self, name: str, why: str) -> None:
        """
        Make the server after C{name} current, unless an attempt already
        moved on from it.
        """
        if len(self._servers) > 1 and self.current == name:
            self._index = (self._index + 1) % len(self._servers)
            self.log.info(
                "{server} failed ({why}); the next attempt goes to {next_server}",
                server=name,
                why=why,
                next_server=self.current,
            )
