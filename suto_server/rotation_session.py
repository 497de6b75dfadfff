"""
The server's side of a rotation connection, as a sans-IO state machine
(docs/PROTOCOL.md §9).

One connection serves one profile and carries rotation after rotation in
lockstep.  The protocol asks the rotation rules to begin (L{Begin}) and to
commit (L{Commit}) and reports back; the machine decides what goes on the
wire::

    idle        --reconnect-->  reconnecting
    reconnecting --reconnected--> welcomed_back (sends RECONNECT_OK)
    welcomed_back --rotate-->   beginning     (the rotation spends the step)
    reconnecting, beginning --denied--> done  (sends AUTH_0)
    idle        --rotate-->     beginning
    beginning   --started-->    awaiting_ack  (sends ROTATE_OK)
    beginning   --refused-->    done          (sends ERROR_UNKNOWN_KEY)
    awaiting_ack --ack-->       committing
    committing  --committed-->  idle          (sends ROTATE_DONE)
    committing  --rejected-->   done          (sends ERROR_ROTATION_FAILED)
    any         --unexpected / violation--> done (sends ERROR_<CODE>)
"""

from __future__ import annotations

from dataclasses import dataclass

from automat import MethodicalMachine

from suto_server import wire
from suto_server.session import Close, Send


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
class Abandon:
    """
    A rotation was under way when the connection ended or broke the
    protocol: the client never acknowledged (or never committed) it.
    """

    reason: str


class RotationSession:
    """
    @param user: the profile this connection serves (from its first
        rotation); a rotation for another profile is out of order.
    """

    _machine = MethodicalMachine()

    def __init__(self, user: str) -> None:
        self.user = user
        self._message = None
        self._answer = None
        self._error: wire.ProtocolError | None = None
        self._actions: list = []
        self._first = True

    def receive(self, message) -> list:
        self._error = wire.ProtocolError(
            wire.ERROR_OUT_OF_ORDER,
            f"{type(message).__name__} is not expected at this point",
        )
        # A reconnection can only open a connection.
        first, self._first = self._first, False
        if isinstance(message, wire.Rotate) and message.user == self.user:
            self._message = message
            self._rotate()
        elif (
            isinstance(message, wire.Reconnect)
            and message.user == self.user
            and first
        ):
            self._message = message
            self._reconnect()
        elif isinstance(message, wire.RotateAck):
            self._message = message
            self._ack()
        else:
            self._unexpected()
        return self._take()

    def started(self, server_public: bytes, ok: bytes) -> list:
        self._answer = wire.RotateOk(server_public, ok)
        self._started()
        return self._take()

    def reconnected(self, ok: bytes) -> list:
        self._answer = wire.ReconnectOk(ok)
        self._reconnected()
        return self._take()

    def denied(self) -> list:
        """
        The profile is blacklisted, or its reconnection failed: say no
        more than C{SUTO_AUTH_0}, and close.
        """
        self._denied()
        return self._take()

    def refused(self) -> list:
        self._error = wire.ProtocolError(wire.ERROR_UNKNOWN_KEY, "unknown key")
        self._refused()
        return self._take()

    def committed(self, done: bytes) -> list:
        self._answer = wire.RotateDone(done)
        self._committed()
        return self._take()

    def rejected(self) -> list:
        self._error = wire.ProtocolError(
            wire.ERROR_ROTATION_FAILED, "the acknowledgement was refused"
        )
        self._rejected()
        return self._take()

    def protocol_error(self, error: wire.ProtocolError) -> list:
        self._error = error
        self._violation()
        return self._take()

    def connection_lost(self) -> list:
        """
        The connection ended; a rotation waiting for its acknowledgement
        is abandoned (the client could not open "ok", or went away).
        """
        self._lost()
        return self._take()

    def unavailable(self, reason: str) -> list:
        return self.protocol_error(wire.ProtocolError(wire.ERROR_BUSY, reason))

    def _take(self) -> list:
        actions, self._actions = self._actions, []
        return actions

    @_machine.state(initial=True)
    def idle(self):
        "Between rotations; the connection may stay quiet for an interval."

    @_machine.state()
    def reconnecting(self):
        "The rules are checking a reconnection."

    # Not "reconnected": that name is the method the protocol calls, which
    # a state of the same name defined later in the class would replace.
    @_machine.state()
    def welcomed_back(self):
        "RECONNECT_OK went out; only a rotation may follow."

    @_machine.state()
    def beginning(self):
        "The rules are deriving the next key."

    @_machine.state()
    def awaiting_ack(self):
        "ROTATE_OK went out; waiting for the client's acknowledgement."

    @_machine.state()
    def committing(self):
        "The new key is being committed."

    @_machine.state()
    def done(self):
        "The connection is closing."

    @_machine.input()
    def _rotate(self):
        "SUTO_C_ROTATE_ for this connection's profile."

    @_machine.input()
    def _reconnect(self):
        "SUTO_C_RECONNECT_ for this connection's profile."

    @_machine.input()
    def _reconnected(self):
        "The reconnection opened under the offline key."

    @_machine.input()
    def _denied(self):
        "The profile is blacklisted, or its reconnection failed."

    @_machine.input()
    def _ack(self):
        "SUTO_C_ROTATE_ACK_."

    @_machine.input()
    def _started(self):
        "The next key is derived and sealed."

    @_machine.input()
    def _refused(self):
        "The presented key may not rotate."

    @_machine.input()
    def _committed(self):
        "The new key is durable."

    @_machine.input()
    def _rejected(self):
        "The acknowledgement did not open, or the commit lost a race."

    @_machine.input()
    def _unexpected(self):
        "A well-formed message with no place here."

    @_machine.input()
    def _lost(self):
        "The connection ended."

    @_machine.input()
    def _violation(self):
        "Bad bytes, silence, or the server could not check."

    @_machine.output()
    def _ask_begin(self):
        self._actions.append(Begin(self._message))

    @_machine.output()
    def _ask_reconnect(self):
        self._actions.append(Reconnect(self._message))

    @_machine.output()
    def _send_denial(self):
        self._actions += [Send(wire.Auth(False)), Close()]

    @_machine.output()
    def _ask_commit(self):
        self._actions.append(Commit(self._message.sealed))

    @_machine.output()
    def _send_answer(self):
        self._actions.append(Send(self._answer))

    @_machine.output()
    def _send_error(self):
        self._actions += [Send(wire.Error(self._error.code)), Close()]

    @_machine.output()
    def _abandon(self):
        self._actions.append(Abandon(f"protocol error: {self._error.code}"))

    @_machine.output()
    def _abandon_unacknowledged(self):
        self._actions.append(Abandon("no acknowledgement before the connection ended"))

    @_machine.output()
    def _report_pipelined(self):
        self._error = wire.ProtocolError(
            wire.ERROR_PIPELINED, "a message arrived before the reply"
        )

    @_machine.output()
    def _ignore(self):
        "Nothing follows the end."

    idle.upon(_reconnect, enter=reconnecting, outputs=[_ask_reconnect])
    reconnecting.upon(_reconnected, enter=welcomed_back, outputs=[_send_answer])
    reconnecting.upon(_refused, enter=done, outputs=[_send_error])
    reconnecting.upon(_denied, enter=done, outputs=[_send_denial])
    for _early in (_rotate, _reconnect, _ack, _unexpected):
        reconnecting.upon(_early, enter=done, outputs=[_report_pipelined, _send_error])
    reconnecting.upon(_violation, enter=done, outputs=[_send_error])
    reconnecting.upon(_lost, enter=done, outputs=[])
    welcomed_back.upon(_rotate, enter=beginning, outputs=[_ask_begin])
    for _early in (_reconnect, _ack, _unexpected, _violation):
        welcomed_back.upon(_early, enter=done, outputs=[_send_error])
    welcomed_back.upon(_lost, enter=done, outputs=[])

    idle.upon(_rotate, enter=beginning, outputs=[_ask_begin])
    idle.upon(_ack, enter=done, outputs=[_send_error])
    idle.upon(_unexpected, enter=done, outputs=[_send_error])
    idle.upon(_violation, enter=done, outputs=[_send_error])
    idle.upon(_lost, enter=done, outputs=[])

    beginning.upon(_started, enter=awaiting_ack, outputs=[_send_answer])
    beginning.upon(_refused, enter=done, outputs=[_send_error])
    beginning.upon(_denied, enter=done, outputs=[_send_denial])
    for _early in (_rotate, _reconnect, _ack, _unexpected):
        beginning.upon(_early, enter=done, outputs=[_report_pipelined, _send_error])
    beginning.upon(_violation, enter=done, outputs=[_send_error])
    beginning.upon(_lost, enter=done, outputs=[])

    awaiting_ack.upon(_ack, enter=committing, outputs=[_ask_commit])
    awaiting_ack.upon(_rotate, enter=done, outputs=[_abandon, _send_error])
    awaiting_ack.upon(_reconnect, enter=done, outputs=[_abandon, _send_error])
    awaiting_ack.upon(_unexpected, enter=done, outputs=[_abandon, _send_error])
    awaiting_ack.upon(_violation, enter=done, outputs=[_abandon, _send_error])
    awaiting_ack.upon(_lost, enter=done, outputs=[_abandon_unacknowledged])

    committing.upon(_committed, enter=idle, outputs=[_send_answer])
    committing.upon(_rejected, enter=done, outputs=[_send_error])
    for _early in (_rotate, _reconnect, _ack, _unexpected):
        committing.upon(_early, enter=done, outputs=[_report_pipelined, _send_error])
    committing.upon(_violation, enter=done, outputs=[_send_error])
    committing.upon(_lost, enter=done, outputs=[])

    for _late in (
        _rotate,
        _reconnect,
        _reconnected,
        _denied,
        _ack,
        _started,
        _refused,
        _committed,
        _rejected,
        _unexpected,
        _violation,
        _lost,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _early, _late
