"""
The agent's side of the classic SUTO salted challenge, as a sans-IO state
machine.

The machine never touches a socket, a clock or a hash: it receives decoded
wire messages and the results of hash computations, and answers with a list
of actions (L{Send}, L{ComputeHash}, L{Close}, L{Finish}) that the protocol
carries out.  L{ClientSession.receive} inspects each message and calls
exactly one input of the machine, so the transitions below read as the
protocol table::

    idle --open_framed--> awaiting_version              (sends VERSION)
    idle --open_legacy--> awaiting_salts                (sends GET_SALTA/RSALT)
    awaiting_version --version--> awaiting_salts        (sends GET_SALTA/RSALT)
    awaiting_salts --salts--> hashing                   (asks for the hash)
    hashing --hashed--> awaiting_verdict                (sends CF_HASH)
    awaiting_verdict --accepted/refused--> done         (ACCEPTED/REJECTED)
    awaiting_salts --refused--> done                    (REJECTED: AUTH_0)
    any --server_error/violation/lost/hash_failed--> done     (ERROR)
    any --expire--> done                                (TIMEOUT)
    any --abandon--> done                               (ERROR: gave up)

Which salts request is sent is fixed when the session is made: C{GET_RSALT}
when the salted hash is cached, C{GET_SALTA} otherwise; the reply must be
the matching one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from automat import MethodicalMachine

from suto_client.conversation import Close, Conversation, Send
from suto_server.core import wire


class Outcome(enum.Enum):
    """
    How one authentication ended, as the agent reports it.
    """

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class ComputeHash:
    """
    Compute the final hash for C{rsalt}: from the password and C{salt} when
    C{salt} is given (the server sent C{SUTO_SALTA_}), else from the cached
    salted hash.  Neither salt is secret: both crossed the wire.
    """

    salt: str | None
    rsalt: str


@dataclass(frozen=True)
class Finish:
    """The exchange has ended with C{outcome}; C{reason} is secret-free."""

    outcome: Outcome
    reason: str = ""


class ClientSession(Conversation):
    """
    One connection's exchange, from connecting to the verdict.

    @param framing: the framing the account's server speaks; only the
        framed one starts with a version exchange.
    @param cached: whether the salted hash is cached, which decides between
        asking for a random salt only or for both salts.
    """

    _machine = MethodicalMachine()

    def __init__(self, framing: wire.Framing, cached: bool) -> None:
        super().__init__()
        self._framing = framing
        if cached:
            self._request, self._reply = wire.GetRSalt(), wire.RSalt
        else:
            self._request, self._reply = wire.GetSaltA(), wire.SaltA
        self._salts = None
        self._response: str | None = None

    # What the protocol calls.

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        if self._framing is wire.Framing.FRAMED:
            self._open_framed()
        else:
            self._open_legacy()
        return self._take()

    def hashed(self, response: str) -> list:
        """
        The final hash asked for by L{ComputeHash} is ready.
        """
        try:
            self._response = wire.CFHash(response)
        except wire.ProtocolError:
            return self.hash_failed("the computed response is malformed")
        self._hashed()
        return self._take()

    def hash_failed(self, reason: str) -> list:
        """
        The final hash could not be computed (for example, a password salt
        the local crypt does not support).
        """
        return self._end(reason, self._cannot_hash)

    def abandon(self, reason: str) -> list:
        """
        Give up on the exchange (the agent is stopping).
        """
        return self._end(reason, self._give_up)

    def _inspect(self, message) -> None:
        if isinstance(message, self._reply):
            self._salts = message
            self._salts_arrived()
        elif isinstance(message, wire.Auth):
            if message.ok:
                self._accepted()
            else:
                self._refused()
        elif isinstance(message, wire.Error):
            self._reason = f"the server reported {message.code}"
            self._server_error()
        else:
            self._violation()

    # States.

    @_machine.state(initial=True)
    def idle(self):
        "Not connected yet."

    @_machine.state()
    def awaiting_version(self):
        "Framed only: the server must first confirm our version."

    @_machine.state()
    def awaiting_salts(self):
        "The salts request went out; waiting for SALTA or RSALT."

    @_machine.state()
    def hashing(self):
        "The final hash is being computed; the server must wait (lockstep)."

    @_machine.state()
    def awaiting_verdict(self):
        "The final hash went out; waiting for AUTH_1 or AUTH_0."

    @_machine.state()
    def done(self):
        "The exchange has ended; nothing more happens."

    # Inputs.

    @_machine.input()
    def _open_framed(self):
        "Connected to a framed server."

    @_machine.input()
    def _open_legacy(self):
        "Connected to a 1.3.2 server."

    @_machine.input()
    def _version(self):
        "The server confirmed our version."

    @_machine.input()
    def _salts_arrived(self):
        "The reply to our salts request arrived."

    @_machine.input()
    def _hashed(self):
        "The final hash is ready."

    @_machine.input()
    def _cannot_hash(self):
        "The final hash could not be computed."

    @_machine.input()
    def _accepted(self):
        "SUTO_AUTH_1 arrived."

    @_machine.input()
    def _refused(self):
        "SUTO_AUTH_0 arrived."

    @_machine.input()
    def _server_error(self):
        "SUTO_ERROR_ arrived: the server is giving up."

    @_machine.input()
    def _violation(self):
        "The server broke the protocol."

    @_machine.input()
    def _lost(self):
        "The connection closed."

    @_machine.input()
    def _expire(self):
        "The exchange took too long."

    @_machine.input()
    def _give_up(self):
        "The agent abandons the exchange."

    # Outputs.

    @_machine.output()
    def _send_version(self):
        self._actions.append(Send(wire.Version(wire.PROTOCOL_VERSION)))

    @_machine.output()
    def _send_request(self):
        self._actions.append(Send(self._request))

    @_machine.output()
    def _ask_hash(self):
        salts, self._salts = self._salts, None
        salt = salts.salt if isinstance(salts, wire.SaltA) else None
        self._actions.append(ComputeHash(salt, salts.rsalt))

    @_machine.output()
    def _send_hash(self):
        response, self._response = self._response, None
        self._actions.append(Send(response))

    @_machine.output()
    def _finish_accepted(self):
        self._actions += [Close(), Finish(Outcome.ACCEPTED)]

    @_machine.output()
    def _finish_rejected(self):
        self._actions += [
            Close(),
            Finish(Outcome.REJECTED, "the server refused the authentication"),
        ]

    @_machine.output()
    def _finish_error(self):
        self._actions += [Close(), Finish(Outcome.ERROR, self._reason)]

    @_machine.output()
    def _finish_lost(self):
        self._actions.append(Finish(Outcome.ERROR, self._reason))

    @_machine.output()
    def _finish_timeout(self):
        self._actions += [
            Close(abort=True),
            Finish(Outcome.TIMEOUT, "the server did not answer in time"),
        ]

    @_machine.output()
    def _finish_abandoned(self):
        self._actions += [
            Close(abort=True),
            Finish(Outcome.ERROR, self._reason),
        ]

    @_machine.output()
    def _ignore(self):
        "Nothing happens once the exchange has ended."

    # Transitions: the protocol as a table.

    idle.upon(_open_framed, enter=awaiting_version, outputs=[_send_version])
    idle.upon(_open_legacy, enter=awaiting_salts, outputs=[_send_request])

    awaiting_version.upon(
        _version, enter=awaiting_salts, outputs=[_send_request]
    )
    awaiting_salts.upon(_salts_arrived, enter=hashing, outputs=[_ask_hash])
    awaiting_salts.upon(_refused, enter=done, outputs=[_finish_rejected])
    hashing.upon(_hashed, enter=awaiting_verdict, outputs=[_send_hash])
    hashing.upon(_cannot_hash, enter=done, outputs=[_finish_error])
    awaiting_verdict.upon(_accepted, enter=done, outputs=[_finish_accepted])
    awaiting_verdict.upon(_refused, enter=done, outputs=[_finish_rejected])

    # Everything else a server can send at the wrong time is a violation.
    awaiting_version.upon(_salts_arrived, enter=done, outputs=[_finish_error])
    awaiting_version.upon(_refused, enter=done, outputs=[_finish_error])
    awaiting_salts.upon(_version, enter=done, outputs=[_finish_error])
    hashing.upon(_version, enter=done, outputs=[_finish_error])
    hashing.upon(_salts_arrived, enter=done, outputs=[_finish_error])
    hashing.upon(_refused, enter=done, outputs=[_finish_error])
    awaiting_verdict.upon(_version, enter=done, outputs=[_finish_error])
    awaiting_verdict.upon(_salts_arrived, enter=done, outputs=[_finish_error])
    for _waiting in (awaiting_version, awaiting_salts, hashing):
        _waiting.upon(_accepted, enter=done, outputs=[_finish_error])

    for _open in (
        idle,
        awaiting_version,
        awaiting_salts,
        hashing,
        awaiting_verdict,
    ):
        _open.upon(_server_error, enter=done, outputs=[_finish_error])
        _open.upon(_violation, enter=done, outputs=[_finish_error])
        _open.upon(_lost, enter=done, outputs=[_finish_lost])
        _open.upon(_expire, enter=done, outputs=[_finish_timeout])
        _open.upon(_give_up, enter=done, outputs=[_finish_abandoned])

    for _late in (
        _version,
        _salts_arrived,
        _hashed,
        _cannot_hash,
        _accepted,
        _refused,
        _server_error,
        _violation,
        _lost,
        _expire,
        _give_up,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _waiting, _open, _late
