# -*- test-case-name: tests.machines.test_rotation,tests.machines.test_rotation_primed,tests.machines.test_spec -*-
"""
The server's side of a rotation connection, as a sans-IO state machine
(docs/PROTOCOL.md §9).

One connection serves one profile and carries rotation after rotation in
lockstep.  The protocol asks the rotation rules to begin (L{Begin}) and to
commit (L{Commit}) and reports back; the machine decides what goes on the
wire::

    idle        --reconnect-->  reconnecting
    reconnecting --reconnected--> rejoined    (sends RECONNECT_OK)
    rejoined    --rotate-->     beginning     (the rotation spends the step)
    reconnecting, beginning --denied--> done  (sends AUTH_0)
    idle        --rotate-->     beginning
    beginning   --started-->    awaiting_ack  (sends ROTATE_OK)
    beginning   --refused-->    done          (sends ERROR_UNKNOWN_KEY)
    awaiting_ack --ack-->       committing
    committing  --committed-->  idle          (sends ROTATE_DONE)
    committing  --committed_next--> primed    (sends ROTATE_DONE_NEXT)
    primed      --rotate_primed--> committing_primed
    committing_primed --committed_next--> primed (sends ROTATE_DONE_NEXT)
    committing_primed --refused / denied--> done (as beginning)
    committing, committing_primed --rejected--> done (ERROR_ROTATION_FAILED)
    any         --unexpected / violation--> done (sends ERROR_<CODE>)
    any         --an answer nothing asked for--> done (sends ERROR_BUSY)
    idle, primed --challenge--> the same      (sends VERIFY)
    idle, primed and every rotating state --proof--> the same (asks Prove)

A version-3 connection (docs/PROTOCOL.md §9.2) primes its next rotation:
its commits are answered C{SUTO_ROTATE_DONE_NEXT_}, which carries the
server's share for the next rotation, and the machine waits in C{primed}
rather than C{idle}.  From there the client's one message,
C{SUTO_C_ROTATE_PRIMED_}, carries its proof of the new key, and the rules
check the key, derive and commit in one step (L{CommitPrimed}), with no
C{SUTO_ROTATE_OK_} between.  Which answer a commit gets is the driver's to
say (it knows the connection's version): the machine only follows it, so
a version-2 connection, whose commits are all answered C{ROTATE_DONE},
never reaches C{primed}, and its C{SUTO_C_ROTATE_PRIMED_} arrives in a
state where it is out of order.  So is one after a reconnection before
its (two-message) rotation, and a plain C{SUTO_C_ROTATE_} in C{primed}.

A verification (docs/PROTOCOL.md §11) challenges the live connection only
between rotations (in C{idle} or C{primed}); the agent's proof may cross
a rotation the agent started meanwhile, so it is heard in every state of
a rotation.

Every connection of the fleet runs this machine through two inputs per
primed rotation (four per two-message one); its table (L{TRANSITIONS},
on L{suto_server.core.machine}) costs a dictionary lookup per input.
"""

from __future__ import annotations

from dataclasses import dataclass

from suto_server.core import wire
from suto_server.core.machine import Close, Send, Table
from suto_server.machines.phase import VIOLATION, PhaseMachine


@dataclass(frozen=True)
class Begin:
    """Start a rotation for C{message} (a L{wire.Rotate})."""

    message: object


@dataclass(frozen=True)
class Reconnect:
    """Check the reconnection C{message} (a L{wire.Reconnect})."""

    message: object


@dataclass(frozen=True)
class Commit:
    """Check C{sealed} (the client's ack) and commit the new key."""

    sealed: bytes

    def __repr__(self) -> str:
        return f"Commit(<{len(self.sealed)} bytes>)"


@dataclass(frozen=True)
class CommitPrimed:
    """
    Check the key C{message} (a L{wire.RotatePrimed}) rotates from, derive
    the next key with the share the connection primed, open the
    acknowledgement it carries, and commit.
    """

    message: object


@dataclass(frozen=True)
class Prove:
    """Check C{message} (a L{wire.VerifyProof}) against its challenge."""

    message: object


@dataclass(frozen=True)
class Abandon:
    """
    A rotation was under way when the connection ended or broke the
    protocol: the client never acknowledged (or never committed) it.
    """

    reason: str


#: The states.
IDLE = "idle"  # Between rotations; the connection may stay quiet for an interval.
RECONNECTING = "reconnecting"  # The rules are checking a reconnection.
# Not named "reconnected": that is the method the protocol calls.
REJOINED = "rejoined"  # RECONNECT_OK went out; only a rotation may follow.
BEGINNING = "beginning"  # The rules are deriving the next key.
AWAITING_ACK = "awaiting_ack"  # ROTATE_OK went out; waiting for the ack.
COMMITTING = "committing"  # The new key is being committed.
# Between rotations, the server's share for the next one handed out.
PRIMED = "primed"
# The rules check a primed rotation's key and acknowledgement, and commit.
COMMITTING_PRIMED = "committing_primed"
DONE = "done"  # The connection is closing.

STATES = (
    IDLE,
    RECONNECTING,
    REJOINED,
    BEGINNING,
    AWAITING_ACK,
    COMMITTING,
    PRIMED,
    COMMITTING_PRIMED,
    DONE,
)

#: The inputs.
ROTATE = "rotate"  # SUTO_C_ROTATE_ for this connection's profile.
# SUTO_C_ROTATE_PRIMED_ for this connection's profile.
ROTATE_PRIMED = "rotate_primed"
RECONNECT = "reconnect"  # SUTO_C_RECONNECT_N_ (or _) for this connection's profile.
RECONNECTED = "reconnected"  # The reconnection opened under its attempt's key.
DENIED = "denied"  # The profile is blacklisted, or its reconnection failed.
ACK = "ack"  # SUTO_C_ROTATE_ACK_.
STARTED = "started"  # The next key is derived and sealed.
REFUSED = "refused"  # The presented key may not rotate.
COMMITTED = "committed"  # The new key is durable.
# The new key is durable, and the server's next share sealed under it.
COMMITTED_NEXT = "committed_next"
# The acknowledgement did not open, or the commit lost a race.
REJECTED = "rejected"
UNEXPECTED = "unexpected"  # A well-formed message with no place here.
LOST = "lost"  # The connection ended.
# A verification asks the live connection to prove its key.
CHALLENGE = "challenge"
PROOF = "proof"  # SUTO_C_VERIFY_: the agent's answer to a challenge.

INPUTS = (
    ROTATE,
    ROTATE_PRIMED,
    RECONNECT,
    RECONNECTED,
    DENIED,
    ACK,
    STARTED,
    REFUSED,
    COMMITTED,
    COMMITTED_NEXT,
    REJECTED,
    UNEXPECTED,
    LOST,
    VIOLATION,
    CHALLENGE,
    PROOF,
)


#: What a message with no place in the current state is.  One for all
#: conversations: only its code goes out, and every message would otherwise
#: pay for an error it almost never needs.
_OUT_OF_ORDER = wire.ProtocolError(
    wire.ERROR_OUT_OF_ORDER, "the message is not expected at this point"
)


class RotationConversation(PhaseMachine):
    """
    @param user: the profile this connection serves (from its first
        rotation); a rotation for another profile is out of order.
    """

    __slots__ = ("user", "_message", "_answer", "_first", "_challenge")

    def __init__(self, user: str) -> None:
        super().__init__()
        self.user = user
        self._message = None
        self._answer = None
        self._first = True
        self._challenge = None

    def receive(self, message) -> list:
        self._error = _OUT_OF_ORDER
        # A reconnection can only open a connection.
        first, self._first = self._first, False
        if isinstance(message, wire.Rotate) and message.user == self.user:
            self._message = message
            return self._input(ROTATE)
        if isinstance(message, wire.RotatePrimed) and message.user == self.user:
            self._message = message
            return self._input(ROTATE_PRIMED)
        if (
            isinstance(message, wire.Reconnect)
            and message.user == self.user
            and first
        ):
            self._message = message
            return self._input(RECONNECT)
        if isinstance(message, wire.RotateAck):
            self._message = message
            return self._input(ACK)
        if isinstance(message, wire.VerifyProof):
            self._message = message
            return self._input(PROOF)
        return self._input(UNEXPECTED)

    @property
    def between_rotations(self) -> bool:
        """
        Whether the connection is between rotations, where a challenge
        goes out at once.
        """
        return self._state in _BETWEEN

    def challenge(self, nonce: bytes) -> list:
        """
        A verification asks the agent to prove its key, bound to
        C{nonce}: sent only between rotations (the returned actions hold
        the L{Send} then), so the caller asks again once the rotation
        under way is over.
        """
        self._challenge = wire.VerifyChallenge(nonce)
        return self._input(CHALLENGE)

    def started(self, server_public: bytes, ok: bytes) -> list:
        self._answer = wire.RotateOk(server_public, ok)
        return self._input(STARTED)

    def reconnected(self, ok: bytes) -> list:
        self._answer = wire.ReconnectOk(ok)
        return self._input(RECONNECTED)

    def denied(self) -> list:
        """
        The profile is blacklisted, or its reconnection failed: say no
        more than C{SUTO_AUTH_0}, and close.
        """
        return self._input(DENIED)

    def refused(self) -> list:
        self._error = wire.ProtocolError(wire.ERROR_UNKNOWN_KEY, "unknown key")
        return self._input(REFUSED)

    def committed(self, done: bytes) -> list:
        self._answer = wire.RotateDone(done)
        return self._input(COMMITTED)

    def committed_next(self, sealed: bytes) -> list:
        """
        The new key is durable, and C{sealed} is the server's share for
        the connection's next rotation, sealed under it: a version-3
        connection's answer to every commit.
        """
        self._answer = wire.RotateDoneNext(sealed)
        return self._input(COMMITTED_NEXT)

    def rejected(self) -> list:
        self._error = wire.ProtocolError(
            wire.ERROR_ROTATION_FAILED, "the acknowledgement was refused"
        )
        return self._input(REJECTED)

    def connection_lost(self) -> list:
        """
        The connection ended; a rotation waiting for its acknowledgement
        is abandoned (the client could not open "ok", or went away).
        """
        return self._input(LOST)

    def unavailable(self, reason: str) -> list:
        return self.protocol_error(wire.ProtocolError(wire.ERROR_BUSY, reason))

    def _ask_begin(self):
        self._actions.append(Begin(self._message))

    def _ask_reconnect(self):
        self._actions.append(Reconnect(self._message))

    def _send_denial(self):
        self._actions += [Send(wire.Auth(False)), Close()]

    def _ask_commit(self):
        self._actions.append(Commit(self._message.sealed))

    def _ask_commit_primed(self):
        self._actions.append(CommitPrimed(self._message))

    def _send_answer(self):
        self._actions.append(Send(self._answer))

    def _send_challenge(self):
        self._actions.append(Send(self._challenge))

    def _ask_prove(self):
        self._actions.append(Prove(self._message))

    def _send_error(self):
        self._actions += [Send(wire.Error(self._error.code)), Close()]

    def _abandon(self):
        self._actions.append(Abandon(f"protocol error: {self._error.code}"))

    def _abandon_unacknowledged(self):
        self._actions.append(
            Abandon("no acknowledgement before the connection ended")
        )


_S = RotationConversation
_ERROR = (_S._send_error,)
_DENIAL = (_S._send_denial,)
#: Messages that arrive while the rules are still working on the last one.
_EARLY = (ROTATE, ROTATE_PRIMED, RECONNECT, ACK, UNEXPECTED)
_PIPELINED = (_S._report_pipelined, _S._send_error)
#: The answers of the rules, each to one ask.
_ANSWERS = (
    RECONNECTED,
    DENIED,
    REFUSED,
    STARTED,
    COMMITTED,
    COMMITTED_NEXT,
    REJECTED,
)
_UNASKED = (_S._report_unasked, _S._send_error)
_WORKING = (RECONNECTING, BEGINNING, COMMITTING, COMMITTING_PRIMED)
_OPEN = (
    IDLE,
    RECONNECTING,
    REJOINED,
    BEGINNING,
    COMMITTING,
    PRIMED,
    COMMITTING_PRIMED,
)
_ROTATING = (BEGINNING, AWAITING_ACK, COMMITTING, COMMITTING_PRIMED)
#: Between rotations: where a challenge goes out.
_BETWEEN = (IDLE, PRIMED)

#: Every transition, C{{(state, input): (next state, outputs)}}, in the
#: order of docs/PROTOCOL.md §6.6.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((IDLE,), (ROTATE,), BEGINNING, (_S._ask_begin,)),
        ((IDLE,), (RECONNECT,), RECONNECTING, (_S._ask_reconnect,)),
        ((RECONNECTING,), (RECONNECTED,), REJOINED, (_S._send_answer,)),
        ((REJOINED,), (ROTATE,), BEGINNING, (_S._ask_begin,)),
        ((BEGINNING,), (STARTED,), AWAITING_ACK, (_S._send_answer,)),
        ((AWAITING_ACK,), (ACK,), COMMITTING, (_S._ask_commit,)),
        ((COMMITTING,), (COMMITTED,), IDLE, (_S._send_answer,)),
        ((COMMITTING,), (COMMITTED_NEXT,), PRIMED, (_S._send_answer,)),
        ((PRIMED,), (ROTATE_PRIMED,), COMMITTING_PRIMED, (_S._ask_commit_primed,)),
        ((COMMITTING_PRIMED,), (COMMITTED_NEXT,), PRIMED, (_S._send_answer,)),
        ((RECONNECTING, BEGINNING, COMMITTING_PRIMED), (REFUSED,), DONE, _ERROR),
        ((RECONNECTING, BEGINNING, COMMITTING_PRIMED), (DENIED,), DONE, _DENIAL),
        ((COMMITTING, COMMITTING_PRIMED), (REJECTED,), DONE, _ERROR),
        ((IDLE,), (ROTATE_PRIMED, ACK, UNEXPECTED), DONE, _ERROR),
        ((REJOINED,), (ROTATE_PRIMED, RECONNECT, ACK, UNEXPECTED), DONE, _ERROR),
        ((PRIMED,), (ROTATE, RECONNECT, ACK, UNEXPECTED), DONE, _ERROR),
        (_WORKING, _EARLY, DONE, _PIPELINED),
        (
            (AWAITING_ACK,),
            (ROTATE, ROTATE_PRIMED, RECONNECT, UNEXPECTED),
            DONE,
            (_S._abandon, _S._send_error),
        ),
        (_OPEN, (VIOLATION,), DONE, _ERROR),
        ((AWAITING_ACK,), (VIOLATION,), DONE, (_S._abandon, _S._send_error)),
        (_OPEN, (LOST,), DONE, ()),
        ((AWAITING_ACK,), (LOST,), DONE, (_S._abandon_unacknowledged,)),
        ((IDLE, REJOINED, PRIMED), _ANSWERS, DONE, _UNASKED),
        (
            (RECONNECTING,),
            (STARTED, COMMITTED, COMMITTED_NEXT, REJECTED),
            DONE,
            _UNASKED,
        ),
        (
            (BEGINNING,),
            (RECONNECTED, COMMITTED, COMMITTED_NEXT, REJECTED),
            DONE,
            _UNASKED,
        ),
        ((COMMITTING,), (RECONNECTED, DENIED, REFUSED, STARTED), DONE, _UNASKED),
        ((COMMITTING_PRIMED,), (RECONNECTED, STARTED, COMMITTED), DONE, _UNASKED),
        (
            (AWAITING_ACK,),
            _ANSWERS,
            DONE,
            (_S._report_unasked, _S._abandon, _S._send_error),
        ),
        *(((state,), (CHALLENGE,), state, (_S._send_challenge,)) for state in _BETWEEN),
        *(
            ((state,), (CHALLENGE,), state, ())
            for state in (RECONNECTING, REJOINED, *_ROTATING)
        ),
        *(
            ((state,), (PROOF,), state, (_S._ask_prove,))
            for state in _BETWEEN + _ROTATING
        ),
        ((RECONNECTING,), (PROOF,), DONE, _PIPELINED),
        ((REJOINED,), (PROOF,), DONE, _ERROR),
        ((DONE,), INPUTS, DONE, ()),
    ),
)
RotationConversation.TABLE = TRANSITIONS
del _S
