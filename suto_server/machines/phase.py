# -*- test-case-name: tests.machines.test_classic,tests.machines.test_enrollment,tests.machines.test_rotation -*-
"""
What the server's phase machines (classic, enrollment, rotation) share
besides the machine base: the protocol error that will answer a
misbehaving peer, and the inputs and outputs by which a peer breaks a
phase the same way in every one of them.

Each phase keeps in C{_error} the error its next violation is answered
with: C{receive} sets the out-of-order one before it inspects a message,
so that a message with no place in the table is answered as out of order,
and the outputs below replace it when the peer got ahead of the rules.
"""

from __future__ import annotations

from suto_server.core import wire
from suto_server.core.machine import Machine

#: The input every phase has: the bytes were bad, the peer went silent, or
#: the server could not check what it sent.
VIOLATION = "violation"


class PhaseMachine(Machine):
    """
    The base of the server's phase machines.
    """

    __slots__ = ("_error",)

    def __init__(self) -> None:
        super().__init__()
        self._error: wire.ProtocolError | None = None

    def protocol_error(self, error: wire.ProtocolError) -> list:
        """
        The decoder (or a timeout) found the peer misbehaving.
        """
        self._error = error
        return self._input(VIOLATION)

    # Outputs every phase has.

    def _report_pipelined(self):
        self._error = wire.ProtocolError(
            wire.ERROR_PIPELINED, "a message arrived before the reply"
        )

    def _report_unasked(self):
        # The protocol brings the rules' answers only to the ask that is
        # waiting for them; another is the server's own fault.
        self._error = wire.ProtocolError(
            wire.ERROR_BUSY, "an answer came that nothing asked for"
        )
