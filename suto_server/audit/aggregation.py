# -*- test-case-name: tests.audit.test_aggregation -*-
"""
Alerts any peer could raise at will, gathered per source, type and profile.

Some alerts follow nothing the peer proved: it named a public key id, sent
a wrong one-time password, forged an answer to a check.  Anyone can do that
as often as the server lets it connect, and an operator flooded with one
alert per attempt stops reading them.  So such an alert goes through an
L{AlertAggregator}: the first of a (source, type, profile) goes out at
once and opens an interval; the others from that source of that type
about that profile within the interval are only counted, and when it ends one alert standing for them
(L{suto_server.audit.alerts.Alert.joined}, with their C{count}) goes out.
The next one after that opens a new interval.  The audit log still records
every event; only what reaches the sinks is gathered.  The profile is part
of the key so that a peer cannot hide the profile an alert is about among
decoys naming others: every profile it names reaches the sinks by name.

At most C{capacity} intervals are open at once, so a peer spraying source
addresses or alert types cannot grow the table: opening one more ends the
oldest first, delivering what it gathered.  L{AlertAggregator.flush} ends
them all (the server stopping), so nothing counted is lost.
"""

from __future__ import annotations

from collections.abc import Callable

from suto_server.audit.alerts import Alert

#: Seconds an interval stays open.
DEFAULT_INTERVAL = 60.0
#: Intervals open at once, at most.
DEFAULT_CAPACITY = 4096


class _Interval:
    """
    An open interval: when it ends, and the alert gathering what came
    since its first (L{None} while nothing did).
    """

    def __init__(self, timer) -> None:
        self.timer = timer
        self.gathered: Alert | None = None


class AlertAggregator:
    """
    @param clock: the L{twisted.internet.interfaces.IReactorTime} that ends
        intervals.
    @param deliver: hands one alert to every sink.
    @param interval: seconds an interval stays open.
    @param capacity: intervals open at once, at most.
    """

    def __init__(
        self,
        clock,
        deliver: Callable[[Alert], None],
        interval: float = DEFAULT_INTERVAL,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self._clock = clock
        self._deliver = deliver
        self.interval = interval
        self._capacity = capacity
        # (source, type, profile) -> _Interval, oldest first (dicts keep
        # order).
        self._open: dict[tuple, _Interval] = {}

    def offer(self, alert: Alert) -> None:
        """
        Deliver C{alert} now if it opens an interval for its source, type
        and profile, else count it towards the alert that interval ends
        with.
        """
        key = (alert.source, alert.type, alert.profile)
        current = self._open.get(key)
        if current is not None:
            gathered = current.gathered
            current.gathered = alert if gathered is None else gathered.joined(alert)
            return
        if len(self._open) >= self._capacity:
            self._end(next(iter(self._open)))
        self._open[key] = _Interval(
            self._clock.callLater(self.interval, self._end, key)
        )
        self._deliver(alert)

    def flush(self) -> None:
        """
        End every open interval now, delivering what each gathered.
        """
        for key in list(self._open):
            self._end(key)

    def _end(self, key: tuple) -> None:
        ended = self._open.pop(key)
        if ended.timer.active():
            ended.timer.cancel()
        if ended.gathered is not None:
            self._deliver(ended.gathered)
