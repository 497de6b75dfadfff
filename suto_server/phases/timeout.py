# -*- test-case-name: tests.phases.test_timeout -*-
"""
A connection's timeout that stays cheap with many connections.

Twisted's L{TimeoutMixin} changes the period with C{DelayedCall.reset}.
The reactor keeps its timers in a heap: a reset to a later time only
records the delay (the call is moved when it comes due), but a reset to an
earlier time finds the call in the heap with C{list.index}, a scan of every
pending timer.  A rotation connection shortens its timeout on every
rotation (from the idle period between rotations to the exchange timeout),
so with ten thousand connections every rotation scanned ten thousand
timers.

L{RearmingTimeoutMixin} keeps L{TimeoutMixin}'s interface and behaviour;
when the deadline moves earlier it cancels the call (the reactor forgets
cancelled calls lazily) and schedules a new one (a push onto the heap),
and when it moves later it resets the call as before.
"""

from __future__ import annotations

from twisted.protocols.policies import TimeoutMixin


class RearmingTimeoutMixin(TimeoutMixin):
    """
    L{TimeoutMixin} whose L{setTimeout} and L{resetTimeout} never move a
    delayed call earlier.  Like L{TimeoutMixin}, it schedules through
    C{self.callLater}; a protocol makes that its clock's C{callLater}.
    """

    _timeout_call = None

    def resetTimeout(self) -> None:
        """
        See L{TimeoutMixin.resetTimeout}.
        """
        if self._timeout_call is not None and self.timeOut is not None:
            self._arm(self.timeOut)

    def setTimeout(self, period):
        """
        See L{TimeoutMixin.setTimeout}.
        """
        previous, self.timeOut = self.timeOut, period
        if period is not None:
            self._arm(period)
        elif self._timeout_call is not None:
            if self._timeout_call.active():
                self._timeout_call.cancel()
            self._timeout_call = None
        return previous

    def _arm(self, period: float) -> None:
        """
        Make the timeout fall C{period} seconds from now.
        """
        call = self._timeout_call
        if call is not None:
            # DelayedCall.seconds is the clock the call was scheduled on.
            if call.seconds() + period >= call.getTime():
                call.reset(period)
                return
            call.cancel()
        self._timeout_call = self.callLater(period, self._timed_out)

    def _timed_out(self) -> None:
        self._timeout_call = None
        self.timeoutConnection()
