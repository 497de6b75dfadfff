"""
What every conversation the agent holds with a SUTO server shares, whatever
it is for (the classic challenge, enrollment, key rotation).

Each conversation is a sans-IO Automat machine of its own; L{Conversation}
is the plain base they are written on, holding what does not depend on the
transitions: the actions collected for the protocol to carry out (L{Send},
L{Close} and the conversation's own), the secret-free reason kept for the
report that ends it, the version check that opens a framed connection, and
the ways any conversation can end early (malformed bytes, a lost
connection, a timeout).  Those call the machine's inputs by name, so every
machine built on it declares C{_version}, C{_violation}, C{_lost} and
C{_expire}, and decides in C{_inspect} which input any other message is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from suto_server.core import wire


@dataclass(frozen=True)
class Send:
    """Write C{message} to the server."""

    message: object


@dataclass(frozen=True)
class Close:
    """
    Close the connection; C{abort} drops it without waiting for unsent
    data, for a server that stopped answering.
    """

    abort: bool = False


class Conversation:
    """
    The base of the agent's conversation machines: everything but their
    states, inputs, outputs and transitions.
    """

    def __init__(self) -> None:
        self._reason = ""
        self._actions: list = []

    def receive(self, message) -> list:
        """
        Feed one decoded message; return the actions it causes.
        """
        # The reason given if the message turns out to be out of order.
        self._reason = f"unexpected {type(message).__name__} from the server"
        if isinstance(message, wire.Version):
            if message.version == wire.PROTOCOL_VERSION:
                self._version()
            else:
                self._fail(f"the server speaks version {message.version}")
        else:
            self._inspect(message)
        return self._take()

    def protocol_error(self, error: wire.ProtocolError) -> list:
        """
        The decoder found the server's bytes malformed.
        """
        return self._end(f"protocol error: {error.code}", self._violation)

    def connection_lost(self, reason: str) -> list:
        """
        The connection went away; C{reason} says why, without secrets.
        """
        return self._end(reason, self._lost)

    def timed_out(self) -> list:
        """
        The exchange under way did not finish in time.
        """
        self._expire()
        return self._take()

    def _inspect(self, message) -> None:
        """
        Call the one input of the machine that C{message}, any message but
        a version, means.
        """
        raise NotImplementedError()

    def _end(self, reason: str, ending: Callable[[], None]) -> list:
        """
        Keep C{reason} for the report, call the input C{ending}, and return
        the actions it causes.
        """
        self._reason = reason
        ending()
        return self._take()

    def _fail(self, reason: str) -> None:
        """
        The server broke the conversation in the way C{reason} names.
        """
        self._reason = reason
        self._violation()

    def _take(self) -> list:
        """
        Hand the actions collected so far to the protocol, and start a new
        list for the next event.
        """
        actions, self._actions = self._actions, []
        return actions
