# -*- test-case-name: tests.console.test_listing -*-
"""
Rotations per minute, from the server's running count of completed
rotations.

The count only grows; the rate is how much it grew over the last minute.
Each reading keeps a sample (time, count) and forgets those older than
L{WINDOW}, so the rate needs no timer of its own: the overview and the
live view, which poll, take the samples.  Until a minute of samples is
kept, the rate is extrapolated from what there is.
"""

from __future__ import annotations

from collections import deque

#: Seconds the rate is taken over.
WINDOW = 60.0

#: Most samples kept (one a second at most is useful).
MOST_SAMPLES = 120


class RotationRate:
    """
    @param clock: the L{IReactorTime} samples are timed by.
    @param total: returns the count of completed rotations so far.
    """

    def __init__(self, clock, total) -> None:
        self._clock = clock
        self._total = total
        self._samples: deque = deque(maxlen=MOST_SAMPLES)

    def per_minute(self) -> float:
        """
        @return: rotations per minute over the last L{WINDOW} seconds.
        """
        now, count = self._clock.seconds(), self._total()
        while self._samples and now - self._samples[0][0] > WINDOW:
            self._samples.popleft()
        self._samples.append((now, count))
        first_time, first_count = self._samples[0]
        if now <= first_time:
            return 0.0
        return (count - first_count) * 60.0 / (now - first_time)
