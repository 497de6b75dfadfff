# -*- test-case-name: tests.client.test_classic_machine,tests.client.test_enrollment,tests.client.test_rotation,tests.client.test_version_fallback -*-
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

L{PasswordConversation} is what the two conversations that prove a
password (the classic challenge and enrollment) share besides: the hash
the agent computes, the server's error and the agent giving up as inputs,
and the one way each ends early, closing and finishing with an error or a
timeout.  Rotation is not one of them: it proves a key, reports each
rotation and stays open for the next.
"""

from __future__ import annotations

from suto_server.core import wire
from suto_server.core.machine import Close, Machine, Send

#: The inputs every conversation has.
VERSION = "version"  # The server confirmed our version.
VIOLATION = "violation"  # The server broke the protocol.
LOST = "lost"  # The connection closed.
EXPIRE = "expire"  # The exchange under way took too long.

#: The inputs every password conversation has besides.
HASHED = "hashed"  # What the agent was asked to compute is ready.
CANNOT_HASH = "cannot_hash"  # It could not be computed.
SERVER_ERROR = "server_error"  # SUTO_ERROR_: the server is giving up.
GIVE_UP = "give_up"  # The agent abandons the conversation.


class Conversation(Machine):
    """
    The base of the agent's conversation machines: everything but their
    states, inputs, outputs and transitions.
    """

    __slots__ = ("_reason", "announced", "version", "refused_version")

    def __init__(self, version: int = wire.PROTOCOL_VERSION) -> None:
        """
        @param version: the protocol version to announce: this release's
            own, or an earlier one it speaks, for a server that refused
            this release's.
        """
        super().__init__()
        self._reason = ""
        self.announced = version
        #: The protocol version the server answered: the one announced or
        #: an earlier one this side speaks too, as a server may answer an
        #: agent that is newer; L{None} before.
        self.version = None
        #: The version announced, once the server answered it with
        #: C{SUTO_ERROR_BAD_VERSION} (a server of an earlier release that
        #: speaks only its own); L{None} otherwise.  Whoever connects
        #: again reads it to announce an earlier version, never the reason
        #: text.
        self.refused_version = None

    def receive(self, message) -> list:
        """
        Feed one decoded message; return the actions it causes.
        """
        # The reason given if the message turns out to be out of order.
        self._reason = f"unexpected {type(message).__name__} from the server"
        if not isinstance(message, wire.Version):
            if (
                isinstance(message, wire.Error)
                and message.code == wire.ERROR_BAD_VERSION
                and self.version is None
            ):
                self.refused_version = self.announced
            return self._inspect(message)
        if (
            message.version not in wire.PROTOCOL_VERSIONS
            or message.version > self.announced
        ):
            return self._fail(f"the server speaks version {message.version}")
        self.version = message.version
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
        self._actions.append(Send(wire.Version(self.announced)))

    def _report_out_of_turn(self):
        # The protocol starts a conversation once, and brings an answer
        # (a hash, a stored key) only when the machine asked for it, and
        # the next rotation only after the last was reported; anything
        # else is the agent's own fault.
        self._reason = "the agent called the conversation out of turn"


class PasswordConversation(Conversation):
    """
    The base of the conversations that prove a password and end once, with
    a C{Finish} of their own kind.

    @cvar _FINISH: the C{Finish} action class of the conversation.
    @cvar _OUTCOME: its outcome enumeration, which has C{ERROR} and
        C{TIMEOUT} members.
    """

    __slots__ = ("_response",)

    def __init__(self) -> None:
        # Neither the classic challenge nor enrollment changed in version
        # 3, which adds only the primed rotation: announcing the earliest
        # version this release speaks keeps them working with a server of
        # either release, with no second connection.
        super().__init__(wire.PROTOCOL_VERSIONS[0])
        self._response: wire.CFHash | None = None

    def hash_failed(self, reason: str) -> list:
        """
        The hash could not be computed (for example, a password salt the
        local crypt does not support).
        """
        return self._end(reason, CANNOT_HASH)

    def abandon(self, reason: str) -> list:
        """
        Give up on the conversation (the agent is stopping).
        """
        return self._end(reason, GIVE_UP)

    @classmethod
    def ending_rows(cls, open_states, done):
        """
        @return: the transitions by which the conversation ends early from
            any of C{open_states}: the server gave up or broke the
            protocol, the connection went away, the exchange timed out, or
            the agent gave up.
        """
        return (
            (open_states, (SERVER_ERROR, VIOLATION), done, (cls._finish_error,)),
            (open_states, (LOST,), done, (cls._finish_lost,)),
            (open_states, (EXPIRE,), done, (cls._finish_timeout,)),
            (open_states, (GIVE_UP,), done, (cls._finish_abandoned,)),
        )

    def _forget(self) -> None:
        """
        Drop what the conversation holds that must not outlive a failure;
        nothing unless a subclass holds a secret.
        """

    def _failed(self, outcome, reason: str):
        """
        @return: the C{Finish} of the conversation's C{outcome} member
            (C{"ERROR"} or C{"TIMEOUT"}), after forgetting its secrets.
        """
        self._forget()
        return self._FINISH(self._OUTCOME[outcome], reason)

    # Outputs every password conversation has.

    def _send_hash(self):
        response, self._response = self._response, None
        self._actions.append(Send(response))

    def _finish_error(self):
        self._actions += [Close(), self._failed("ERROR", self._reason)]

    def _finish_lost(self):
        self._actions.append(self._failed("ERROR", self._reason))

    def _finish_timeout(self):
        self._actions += [
            Close(abort=True),
            self._failed("TIMEOUT", "the server did not answer in time"),
        ]

    def _finish_abandoned(self):
        self._actions += [Close(abort=True), self._failed("ERROR", self._reason)]
