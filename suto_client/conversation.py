"""
What every conversation the agent holds with a SUTO server shares, whatever
it is for (the classic challenge, enrollment, key rotation).

Each conversation is a sans-IO machine on L{suto_server.core.machine}, the
one machine base both ends share; L{Conversation} adds what does not
depend on its transitions: the secret-free reason kept for the report that
ends it, the version check that opens a framed connection, and the ways
any conversation can end early (malformed bytes, a lost connection, a
timeout).  Those feed the inputs named below, so every machine built on
it has them, and decides in C{_inspect} which input any other message is.
The actions are core.machine's L{Send} and L{Close} and the
conversation's own; the outputs all conversations share are here too.
"""

from __future__ import annotations

from suto_server.core import wire
from suto_server.core.machine import Machine, Send

#: The inputs every conversation has.
VERSION = "version"  # The server confirmed our version.
VIOLATION = "violation"  # The server broke the protocol.
LOST = "lost"  # The connection closed.
EXPIRE = "expire"  # The exchange under way took too long.


class Conversation(Machine):
    """
    The base of the agent's conversation machines: everything but their
    states, inputs, outputs and transitions.
    """

    __slots__ = ("_reason",)

    def __init__(self) -> None:
        super().__init__()
        self._reason = ""

    def receive(self, message) -> list:
        """
        Feed one decoded message; return the actions it causes.
        """
        # The reason given if the message turns out to be out of order.
        self._reason = f"unexpected {type(message).__name__} from the server"
        if not isinstance(message, wire.Version):
            return self._inspect(message)
        if message.version != wire.PROTOCOL_VERSION:
            return self._fail(f"the server speaks version {message.version}")
        return self._version()

    def protocol_error(self, error: wire.ProtocolError) -> list:
        """
        The decoder found the server's bytes malformed.
        """
        return self._end(f"protocol error: {error.code}", VIOLATION)

    def connection_lost(self, reason: str) -> list:
        """
        The connection went away; C{reason} says why, without secrets.
        """
        return self._end(reason, LOST)

    def timed_out(self) -> list:
        """
        The exchange under way did not finish in time.
        """
        return self._input(EXPIRE)

    def _version(self) -> list:
        """
        Feed the input the server's confirmation of our version means.
        """
        return self._input(VERSION)

    def _inspect(self, message) -> list:
        """
        Feed the one input of the machine that C{message}, any message but
        a version, means.
        """
        raise NotImplementedError()

    def _end(self, reason: str, symbol: str) -> list:
        """
        Keep C{reason} for the report and feed the input C{symbol}.
        """
        self._reason = reason
        return self._input(symbol)

    def _fail(self, reason: str) -> list:
        """
        The server broke the conversation in the way C{reason} names.
        """
        return self._end(reason, VIOLATION)

    # Outputs every conversation has.

    def _send_version(self):
        self._actions.append(Send(wire.Version(wire.PROTOCOL_VERSION)))

    def _report_out_of_turn(self):
        # The protocol starts a conversation once, and brings an answer
        # (a hash, a stored key) only when the machine asked for it, and
        # the next rotation only after the last was reported; anything
        # else is the agent's own fault.
        self._reason = "the agent called the conversation out of turn"
