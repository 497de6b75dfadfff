# -*- test-case-name: tests.phases.test_timeout -*-
"""
Connections' timeouts on one timer: a deadline wheel.

Twisted's L{TimeoutMixin} gives each connection a C{DelayedCall} and
moves it on every message: a reset to a later time records the delay and
re-inserts the call into the reactor's heap when it comes due, a reset to
an earlier time scans the heap.  A rotation connection moves its timeout
four times per rotation (each message it receives, then the exchange
timeout when the rotation begins and the idle period when it commits),
so a fleet of ten thousand kept ten thousand calls in the reactor's heap,
each costing Python-level comparisons on every push and a wake-up of its
own whenever a moved call came due.

L{DeadlineWheel} holds every connection's deadline instead, in slots of
C{resolution} seconds (a set of timers per slot, keyed by the slot's end),
and keeps one C{DelayedCall} for the earliest slot.  A deadline moved
later stays in its slot and is filed again when the slot comes due (most
deadlines move later, and most never come due); a deadline moved earlier
than its slot moves to its new slot, two set operations.  So a message
costs an assignment and a comparison, a rotation no reactor timer at
all, and the reactor wakes at most once per slot for all connections.

A timeout falls when its slot ends: never before its deadline, at most
C{resolution} seconds after it.  Periods that are whole multiples of the
resolution on a clock at a whole multiple fall exactly on time, as
L{TimeoutMixin}'s do.

L{WheelTimeoutMixin} keeps L{TimeoutMixin}'s interface (C{setTimeout},
C{resetTimeout}, C{timeoutConnection}) on a wheel.
"""

from __future__ import annotations

import heapq
import math

from twisted.internet.interfaces import IReactorTime

#: The server's slot width: its timeouts are the exchange timeout (10 s by
#: default) and the idle period between rotations (96 s), so a second
#: late is a tenth of the shortest.
DEFAULT_RESOLUTION = 1.0


class DeadlineWheel:
    """
    The deadlines of many timers on one clock, with one delayed call.

    A timer is any object with C{_deadline} (when it falls, or L{None}),
    C{_slot} (the slot it is filed in, or L{None}) and
    C{_deadline_passed()}; L{WheelTimeoutMixin} is one.
    """

    def __init__(
        self, clock: IReactorTime, resolution: float = DEFAULT_RESOLUTION
    ) -> None:
        if not resolution > 0:
            raise ValueError("resolution must be positive")
        self._clock = clock
        self._resolution = resolution
        # Slot key -> the timers filed there (never an empty set); key *
        # resolution is when the slot comes due.
        self._slots: dict[int, set] = {}
        # Keys of slots, smallest first, each once (_queued); a key whose
        # slot emptied stays until it reaches the top.
        self._keys: list[int] = []
        self._queued: set[int] = set()
        self._call = None
        self._call_key: int | None = None

    def __len__(self) -> int:
        """
        How many timers are filed, armed or not (a cancelled one leaves at
        once; one moved later leaves when its slot comes due).
        """
        return sum(len(slot) for slot in self._slots.values())

    def slot_of(self, deadline: float) -> int:
        """
        @return: the key of the slot a deadline falls in: the first slot
            ending at or after it.
        """
        return math.ceil(deadline / self._resolution)

    def file(self, timer, key: int) -> None:
        """
        File C{timer} in slot C{key}, and make sure the wheel wakes when
        that slot comes due.
        """
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = set()
            if key not in self._queued:
                self._queued.add(key)
                heapq.heappush(self._keys, key)
            if self._call_key is None or key < self._call_key:
                self._schedule(key)
        slot.add(timer)
        timer._slot = key

    def unfile(self, timer) -> None:
        """
        Take C{timer} out of its slot.  A slot left empty goes, and the
        wheel's call with it if it was for that slot, so an idle wheel
        keeps nothing on the clock.
        """
        key = timer._slot
        timer._slot = None
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.discard(timer)
        if not slot:
            del self._slots[key]
            if key == self._call_key:
                self._schedule_next()

    def _schedule_next(self) -> None:
        """
        Schedule the wheel's call for the earliest slot, or none if no
        timer is filed.
        """
        keys = self._keys
        while keys and keys[0] not in self._slots:
            self._queued.discard(heapq.heappop(keys))
        if keys:
            self._schedule(keys[0])
        elif self._call is not None:
            self._call.cancel()
            self._call = None
            self._call_key = None

    def _schedule(self, key: int) -> None:
        if self._call is not None:
            self._call.cancel()
        self._call_key = key
        delay = max(0.0, key * self._resolution - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        """
        Every slot that has come due: timers whose deadline has passed
        fall, the others (moved later meanwhile) are filed again.
        """
        self._call = None
        self._call_key = None
        now = self._clock.seconds()
        due = []
        keys = self._keys
        while keys and keys[0] * self._resolution <= now:
            key = heapq.heappop(keys)
            self._queued.discard(key)
            slot = self._slots.pop(key, None)
            if slot is not None:
                due.append((key, slot))
        for key, slot in due:
            for timer in slot:
                # A timer moved to another slot (by a timer that fell
                # before it in this tick) is that slot's now.
                if timer._slot != key:
                    continue
                timer._slot = None
                deadline = timer._deadline
                if deadline is None:
                    continue
                if deadline <= now:
                    timer._deadline_passed()
                else:
                    self.file(timer, self.slot_of(deadline))
        if self._call is None:
            self._schedule_next()


class WheelTimeoutMixin:
    """
    L{TimeoutMixin}'s interface on a L{DeadlineWheel}: C{setTimeout(period)}
    (L{None} cancels) returns the previous period, C{resetTimeout()}
    starts the current period again if one is armed, and
    C{timeoutConnection()} is called when it passes.

    The class using it provides C{clock} (an L{IReactorTime}) and
    C{deadlines} (the L{DeadlineWheel} on that clock).
    """

    timeOut: float | None = None
    _deadline: float | None = None
    _slot: int | None = None

    def setTimeout(self, period: float | None) -> float | None:
        previous, self.timeOut = self.timeOut, period
        if period is not None:
            self._arm(period)
        elif self._deadline is not None or self._slot is not None:
            self._deadline = None
            self.deadlines.unfile(self)
        return previous

    def resetTimeout(self) -> None:
        if self._deadline is not None and self.timeOut is not None:
            self._arm(self.timeOut)

    def timeoutConnection(self) -> None:
        """
        The period passed with no reset; override.
        """

    def _arm(self, period: float) -> None:
        deadline = self.clock.seconds() + period
        self._deadline = deadline
        wheel = self.deadlines
        key = wheel.slot_of(deadline)
        slot = self._slot
        if slot is not None:
            if slot <= key:
                # Later (or the same slot): filed again when the slot
                # comes due.
                return
            wheel.unfile(self)
        wheel.file(self, key)

    def _deadline_passed(self) -> None:
        self._deadline = None
        self.timeoutConnection()
