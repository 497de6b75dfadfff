# -*- test-case-name: tests.api.test_callers -*-
"""
How much one calling host may ask of the devices through the
verification API, so that one compromised host cannot hammer them: at
most so many verifications in flight at once, and so many a minute.

A host is its certificate's subject, not its address: the subject is what
the CA vouched for, a host behind a NAT shares its address with others,
and a host cannot change its subject without another certificate from
the CA.  The rules are the connection limits' own pieces
(L{suto_server.rules.limits}): L{Limits} counts what a key holds at once,
L{OwnAddressAllowance} counts what a key did within a window, both with
bounded tables.
"""

from __future__ import annotations

from suto_server.rules.limits import OwnAddressAllowance, holding, take

#: The most hosts whose minute is remembered.
MAX_CALLERS = 65536

#: What the per-minute count is kept under, in the allowance's table.
_VERIFY = "verify"


class CallerLimits:
    """
    The two limits per calling host, without a clock: L{admit} takes
    C{now}.

    @param in_flight: verifications one host may have in flight at once.
    @param per_minute: verifications one host may start per minute.
    """

    def __init__(self, in_flight: int, per_minute: int) -> None:
        self._held = holding(in_flight)
        self._minute = OwnAddressAllowance(
            allowance=per_minute, window=60.0, max_entries=MAX_CALLERS
        )

    def admit(self, caller: str, now: float) -> str | None:
        """
        A host asks for a verification.

        @return: L{None} if it may go on, and then it holds one in flight
            until L{done}; else why not, for the answer's reason.
        """
        if self._held.connections(caller) >= self._held.max_per_source:
            return (
                f"more than {self._held.max_per_source} verifications in "
                f"flight from this host"
            )
        if not self._minute.forgive(_VERIFY, caller, now):
            return (
                f"more than {self._minute.allowance} verifications a minute "
                f"from this host"
            )
        take(self._held, caller, now)
        return None

    def done(self, caller: str) -> None:
        """
        A verification L{admit} let through has its answer.
        """
        self._held.closed(caller, settled=True)

    def in_flight(self, caller: str) -> int:
        """
        @return: the verifications C{caller} has in flight.
        """
        return self._held.connections(caller)
