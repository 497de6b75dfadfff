# -*- test-case-name: tests.phases.test_classic_off_reactor,tests.phases.test_enrollment_off_reactor -*-
"""
A connection's phase while the rules decide whether it may start.

The classic challenge and the enrollment begin with a decision that
reads the store (the request a connection claims and its user's salt;
the enrollment window), which on PostgreSQL answers after a round trip
the reactor does not wait for.  Meanwhile the connection is in
L{Starting}.  The one message a device may send before the server's
first reply (a SUTO 1.3.2 device's request: on the legacy listener the
device speaks first) is held, and the phase reads it once it starts, as
it would have had the store answered at once; a second one breaks the
lockstep and is answered C{SUTO_ERROR_PIPELINED}.  A decoding error or
the exchange timeout ends the connection with its own code.  A driver
decided after its connection ended does not start.
"""

from __future__ import annotations

from suto_server.core import wire

#: Messages a device may send before the server's first reply.
MAY_HOLD = 1


class Starting:
    """
    The phase of a connection whose driver is being decided.

    @param connection: the connection (see L{suto_server.phases.driver}).
    @ivar held: the messages that arrived meanwhile, for the phase.
    """

    __slots__ = ("connection", "held")

    def __init__(self, connection) -> None:
        self.connection = connection
        self.held: list = []

    def receive(self, message) -> None:
        if len(self.held) >= MAY_HOLD:
            self.connection.refuse(wire.ERROR_PIPELINED)
        else:
            self.held.append(message)

    def protocol_error(self, error: wire.ProtocolError) -> None:
        self.connection.refuse(error.code)

    def connection_lost(self) -> None:
        """The driver being decided sees C{connection.ended} and stays out."""
