# -*- test-case-name: tests.console.test_listing -*-
"""
What the console shows of rotations: the server's rate per minute, and
each profile's rotations over the last day.

The rate comes from the server's running count of completed rotations,
which only grows: it is how much it grew over the last minute.  Each
reading keeps a sample (time, count) and forgets those older than
L{WINDOW}, so the rate needs no timer of its own: the overview and the
live view, which poll, take the samples.  Until a minute of samples is
kept, the rate is taken over what there is.

A profile's rotations are not in the store (a rotation leaves its new
key, not a record), so L{RotationHistory} counts them as the rotation
rules commit them, in memory, since the daemon started: one counter an
hour for the last L{HOURS} hours per profile, a few hundred bytes each,
so 10,000 profiles cost a few megabytes.
"""

from __future__ import annotations

from array import array
from collections import deque

#: Seconds the rate is taken over.
WINDOW = 60.0

#: Most samples kept (one a second at most is useful).
MOST_SAMPLES = 120

#: Hours of rotations kept per profile.
HOURS = 24

#: Most profiles whose rotations are kept; past it the profile counted
#: first is forgotten.
MOST_PROFILES = 100_000


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


class RotationHistory:
    """
    Each profile's committed rotations per hour, for its last L{HOURS}
    hours; a rotation rules observer (C{record}).
    """

    def __init__(self) -> None:
        # user -> (the hour of its latest slot, counts by hour modulo HOURS)
        self._profiles: dict[str, tuple[int, array]] = {}

    def record(self, user: str, now: float) -> None:
        """
        C{user}'s profile rotated at C{now}.
        """
        hour = int(now // 3600)
        kept = self._profiles.get(user)
        if kept is None:
            while len(self._profiles) >= MOST_PROFILES:
                del self._profiles[next(iter(self._profiles))]
            kept = (hour, array("I", [0] * HOURS))
        latest, counts = self._advance(kept, hour)
        counts[hour % HOURS] += 1
        self._profiles[user] = (latest, counts)

    @staticmethod
    def _advance(kept, hour: int):
        """
        @return: C{kept} moved on to C{hour}, the slots of the hours in
            between emptied.
        """
        latest, counts = kept
        for passed in range(latest + 1, min(hour, latest + HOURS) + 1):
            counts[passed % HOURS] = 0
        return max(latest, hour), counts

    def hourly(self, user: str, now: float) -> list[int] | None:
        """
        @return: C{user}'s rotations in each of the last L{HOURS} hours,
            oldest first (the last is the current hour), or L{None} when
            none was counted since the daemon started.
        """
        kept = self._profiles.get(user)
        if kept is None:
            return None
        hour = int(now // 3600)
        latest, counts = self._advance((kept[0], array("I", kept[1])), hour)
        return [counts[h % HOURS] for h in range(hour - HOURS + 1, hour + 1)]
