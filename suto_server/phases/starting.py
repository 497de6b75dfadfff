# -*- test-case-name: tests.phases.test_connection,tests.phases.test_connection_enrollment -*-
"""
A connection's phase while the rules decide whether it may start.

The classic challenge and the enrollment begin with a decision that
reads the store (the request a connection claims and its user's salt;
the enrollment window), which on PostgreSQL answers after a round trip
the reactor does not wait for.  Meanwhile the connection is in
L{Starting}: the protocol is lockstep, so the device has nothing to say
before the server's first reply, and a message arriving now is answered
C{SUTO_ERROR_PIPELINED} as in every phase's waits; a decoding error or
the exchange timeout ends the connection with its own code.  The
phase's driver, once decided, sees that the connection ended and does
not start.

L{log_undecided} is how every driver logs a decision the rules could not
make: a store that could not answer is an outage the operator already
sees elsewhere, one warning line per connection, not a traceback.
"""

from __future__ import annotations

from suto_server.core import wire
from suto_server.store.errors import StoreError


class Starting:
    """
    The phase of a connection whose driver is being decided.

    @param connection: the connection (see L{suto_server.phases.driver}).
    """

    __slots__ = ("connection",)

    def __init__(self, connection) -> None:
        self.connection = connection

    def receive(self, message) -> None:
        self.connection.refuse(wire.ERROR_PIPELINED)

    def protocol_error(self, error: wire.ProtocolError) -> None:
        self.connection.refuse(error.code)

    def connection_lost(self) -> None:
        """The driver being decided sees C{connection.ended} and stays out."""


def log_undecided(log, error: Exception, what: str, **fields) -> None:
    """
    Log, in an C{except} block, that the rules could not decide C{what}
    (a format string over C{fields}): a L{StoreError} in one warning line
    with the store's reason, anything else with its traceback.  Nothing of
    what the device sent goes in.
    """
    if isinstance(error, StoreError):
        log.warn(
            what + ": the store could not answer ({error})", error=str(error), **fields
        )
    else:
        log.failure(what, **fields)
