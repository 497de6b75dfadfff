# -*- test-case-name: tests.core.test_throttle -*-
"""
Log throttling shared by the server and the agent: a repeated event (a
refused source, a dropped datagram) is logged once per interval with a
count of what was kept quiet, so a flood cannot turn either side into a
log amplifier.

L{OncePerInterval} decides when a key is due; L{PacedLog} is the one
formatter over it that both ends write their lines about the network
through: the server's connection gate and check service, the agent's
hello, check and answer listeners.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

#: The most keys one throttle remembers.
MAX_KEYS = 4096

DEFAULT_LOG_INTERVAL = 60.0
"""Seconds between two log lines about one source and reason."""

QUIET = " ({quiet} more alike since the last report)"
"""What a paced line adds to say how many alike were kept quiet."""


class OncePerInterval:
    """
    Says when a repeated event is due to be logged again: the first time
    for a key, then at most once per C{interval} seconds, with the number
    of times it was kept quiet meanwhile.  Remembers at most C{max_keys}
    keys (the oldest are forgotten first), so a flood from many sources
    cannot grow it.
    """

    def __init__(self, interval: float, max_keys: int = MAX_KEYS) -> None:
        self.interval = interval
        self._max_keys = max_keys
        # key -> [time of the last report, times kept quiet since]
        self._reported: dict = {}

    def due(self, key, now: float) -> int | None:
        """
        @return: L{None} to keep quiet, else the number of times C{key}
            was kept quiet since it was last reported.
        """
        entry = self._reported.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return None
        quiet = 0 if entry is None else entry[1]
        self._reported.pop(key, None)
        if len(self._reported) >= self._max_keys:
            del self._reported[next(iter(self._reported))]
        self._reported[key] = [now, 0]
        return quiet


class PacedLog:
    """
    Writes a line to a L{Logger} only when its key (a source and a
    reason) is due, with the number of lines kept quiet since the last
    one in the event's C{quiet} field and in its text.

    @param clock: the time the pacing reads.
    @param interval: the least seconds between two lines with one key.
    @param always_count: say the count in the text even when it is 0.
        The server's lines have always said it (log readers may match
        on it); the agent's say it only when lines were kept quiet.
    """

    def __init__(
        self,
        clock: IReactorTime,
        interval: float = DEFAULT_LOG_INTERVAL,
        always_count: bool = False,
    ) -> None:
        self._clock = clock
        self._reports = OncePerInterval(interval)
        self._always_count = always_count

    def due(self, key) -> int | None:
        """
        Whether a line with C{key} is due now, for a caller that words
        its count in its own way.

        @return: as L{OncePerInterval.due}.
        """
        return self._reports.due(key, self._clock.seconds())

    def emit(self, log: Logger, level: LogLevel, key, text: str, **fields) -> None:
        """
        Log C{text} with C{fields} through C{log} at C{level}, unless a
        line with C{key} was logged less than the interval ago.

        @param key: what makes two lines alike: the source the datagram
            or connection came from, and the reason for the line.
        """
        quiet = self.due(key)
        if quiet is None:
            return
        if quiet or self._always_count:
            text += QUIET
        log.emit(level, text, quiet=quiet, **fields)


def unpaced(log: Logger, level: LogLevel, host, reason: str, text: str, **fields):
    """
    Write every line: what a component given no pacing does (tests build
    them so; the server always gives its gate's L{PacedLog}).  Takes the
    arguments of the server's C{ConnectionGate.paced}.
    """
    log.emit(level, text, source=host, reason=reason, quiet=0, **fields)
