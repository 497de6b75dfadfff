# -*- test-case-name: tests.client.test_classic_machine,tests.machines.test_spec -*-
"""
The agent's side of the classic SUTO salted challenge, as a sans-IO state
machine (docs/PROTOCOL.md §6.2).

The machine never touches a socket, a clock or a hash: it receives decoded
wire messages and the results of hash computations, and answers with a list
of actions (L{Send}, L{ComputeHash}, L{Close}, L{Finish}) that the protocol
carries out.  L{ClientClassic.receive} inspects each message and feeds
exactly one input of the machine, so the table at the end of the module
reads as the protocol::

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
    any --a call out of turn--> done                    (ERROR)

Which salts request is sent is fixed when the conversation is made: C{GET_RSALT}
when the salted hash is cached, C{GET_SALTA} otherwise; the reply must be
the matching one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from suto_client.conversation import (
    CANNOT_HASH,
    EXPIRE,
    GIVE_UP,
    HASHED,
    LOST,
    SERVER_ERROR,
    VERSION,
    VIOLATION,
    PasswordConversation,
)
from suto_server.core import wire
from suto_server.core.machine import Close, Send, Table


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
    """The conversation has ended with C{outcome}; C{reason} is secret-free."""

    outcome: Outcome
    reason: str = ""


#: The states.
IDLE = "idle"  # Not connected yet.
AWAITING_VERSION = "awaiting_version"  # Framed only: our version, confirmed.
AWAITING_SALTS = "awaiting_salts"  # The salts request went out.
HASHING = "hashing"  # The final hash is being computed (lockstep).
AWAITING_VERDICT = "awaiting_verdict"  # The final hash went out.
DONE = "done"  # The conversation has ended; nothing more happens.

STATES = (IDLE, AWAITING_VERSION, AWAITING_SALTS, HASHING, AWAITING_VERDICT, DONE)

#: The inputs, besides the ones every conversation has.
OPEN_FRAMED = "open_framed"  # Connected to a framed server.
OPEN_LEGACY = "open_legacy"  # Connected to a 1.3.2 server.
SALTS_ARRIVED = "salts_arrived"  # The reply to our salts request.
ACCEPTED = "accepted"  # SUTO_AUTH_1.
REFUSED = "refused"  # SUTO_AUTH_0.

INPUTS = (
    OPEN_FRAMED,
    OPEN_LEGACY,
    VERSION,
    SALTS_ARRIVED,
    HASHED,
    CANNOT_HASH,
    ACCEPTED,
    REFUSED,
    SERVER_ERROR,
    VIOLATION,
    LOST,
    EXPIRE,
    GIVE_UP,
)


class ClientClassic(PasswordConversation):
    """
    One connection's classic conversation, from connecting to the verdict.

    @param framing: the framing the account's server speaks; only the
        framed one starts with a version exchange.
    @param cached: whether the salted hash is cached, which decides between
        asking for a random salt only or for both salts.
    """

    __slots__ = ("_framing", "_request", "_reply", "_salts")

    _FINISH = Finish
    _OUTCOME = Outcome

    def __init__(self, framing: wire.Framing, cached: bool) -> None:
        super().__init__()
        self._framing = framing
        if cached:
            self._request, self._reply = wire.GetRSalt(), wire.RSalt
        else:
            self._request, self._reply = wire.GetSaltA(), wire.SaltA
        self._salts = None

    # What the protocol calls.

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        if self._framing is wire.Framing.FRAMED:
            return self._input(OPEN_FRAMED)
        return self._input(OPEN_LEGACY)

    def hashed(self, response: str) -> list:
        """
        The final hash asked for by L{ComputeHash} is ready.
        """
        try:
            self._response = wire.CFHash(response)
        except wire.ProtocolError:
            return self.hash_failed("the computed response is malformed")
        return self._input(HASHED)

    def _inspect(self, message) -> list:
        if isinstance(message, self._reply):
            self._salts = message
            return self._input(SALTS_ARRIVED)
        if isinstance(message, wire.Auth):
            return self._input(ACCEPTED if message.ok else REFUSED)
        if isinstance(message, wire.Error):
            self._reason = f"the server reported {message.code}"
            return self._input(SERVER_ERROR)
        return self._input(VIOLATION)

    # Outputs.

    def _send_request(self):
        self._actions.append(Send(self._request))

    def _ask_hash(self):
        salts, self._salts = self._salts, None
        salt = salts.salt if isinstance(salts, wire.SaltA) else None
        self._actions.append(ComputeHash(salt, salts.rsalt))

    def _finish_accepted(self):
        self._actions += [Close(), Finish(Outcome.ACCEPTED)]

    def _finish_rejected(self):
        self._actions += [
            Close(),
            Finish(Outcome.REJECTED, "the server refused the authentication"),
        ]



_S = ClientClassic
_ERROR = (_S._finish_error,)
_OPEN = (IDLE, AWAITING_VERSION, AWAITING_SALTS, HASHING, AWAITING_VERDICT)
_OUT_OF_TURN = (_S._report_out_of_turn, _S._finish_error)

#: Every transition, in the order of docs/PROTOCOL.md §6.2.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((IDLE,), (OPEN_FRAMED,), AWAITING_VERSION, (_S._send_version,)),
        ((IDLE,), (OPEN_LEGACY,), AWAITING_SALTS, (_S._send_request,)),
        ((AWAITING_VERSION,), (VERSION,), AWAITING_SALTS, (_S._send_request,)),
        ((AWAITING_SALTS,), (SALTS_ARRIVED,), HASHING, (_S._ask_hash,)),
        ((AWAITING_SALTS,), (REFUSED,), DONE, (_S._finish_rejected,)),
        ((HASHING,), (HASHED,), AWAITING_VERDICT, (_S._send_hash,)),
        ((HASHING,), (CANNOT_HASH,), DONE, _ERROR),
        ((AWAITING_VERDICT,), (ACCEPTED,), DONE, (_S._finish_accepted,)),
        ((AWAITING_VERDICT,), (REFUSED,), DONE, (_S._finish_rejected,)),
        # Everything else a server can send at the wrong time is a violation.
        ((IDLE, HASHING), (VERSION, SALTS_ARRIVED, ACCEPTED, REFUSED), DONE, _ERROR),
        ((AWAITING_VERSION,), (SALTS_ARRIVED, ACCEPTED, REFUSED), DONE, _ERROR),
        ((AWAITING_SALTS,), (VERSION, ACCEPTED), DONE, _ERROR),
        ((AWAITING_VERDICT,), (VERSION, SALTS_ARRIVED), DONE, _ERROR),
        *_S.ending_rows(_OPEN, DONE),
        (_OPEN[1:], (OPEN_FRAMED, OPEN_LEGACY), DONE, _OUT_OF_TURN),
        (
            (IDLE, AWAITING_VERSION, AWAITING_SALTS, AWAITING_VERDICT),
            (HASHED, CANNOT_HASH),
            DONE,
            _OUT_OF_TURN,
        ),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
ClientClassic.TABLE = TRANSITIONS
del _S
