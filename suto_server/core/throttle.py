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

Pacing per source alone does not hold against datagrams, whose source
address can be forged: every new forged source is due.  So L{PacedLog}
also caps the lines of one kind (one format and one C{reason} field),
whatever their sources, at L{MAX_LINES} an interval.  Past the cap a
line of that kind is only counted, without touching the per-source
table (a flood does not push the real sources out of it); the first line
paced after the interval, of any kind, is preceded by one summary saying
how many were kept quiet across sources.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

#: The most keys one throttle remembers.
MAX_KEYS = 4096

#: The most lines of one kind, from all sources, one interval logs.
MAX_LINES = 100

DEFAULT_LOG_INTERVAL = 60.0
"""Seconds between two log lines about one source and reason."""

QUIET = " ({quiet} more alike since the last report)"
"""What a paced line adds to say how many alike were kept quiet."""

SUMMARY = (
    "kept quiet {quiet} lines from all sources like {line!r}: more than "
    "{cap} came within {interval} seconds"
)
"""The line that says how many lines of one kind the cap kept quiet."""


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


class _Window:
    """
    The lines of one kind written in the current interval, and those the
    cap kept quiet in it.
    """

    def __init__(self, start: float, log: Logger, level: LogLevel, text: str) -> None:
        self.start = start
        self._log = log
        self._level = level
        self._text = text
        self.written = 0
        self.quiet = 0

    def summarise(self, cap: int, interval: float) -> None:
        """
        Say how many lines the cap kept quiet, if it kept any.
        """
        if self.quiet:
            self._log.emit(
                self._level,
                SUMMARY,
                quiet=self.quiet,
                line=self._text,
                cap=cap,
                interval=interval,
            )


class PacedLog:
    """
    Writes a line to a L{Logger} only when its key (a source and a
    reason) is due, with the number of lines kept quiet since the last
    one in the event's C{quiet} field and in its text; and at most
    C{max_lines} lines of one kind an interval, whatever their keys.

    @param clock: the time the pacing reads.
    @param interval: the least seconds between two lines with one key.
    @param always_count: say the count in the text even when it is 0.
        The server's lines have always said it (log readers may match
        on it); the agent's say it only when lines were kept quiet.
    @param max_lines: the most lines of one kind (one format and one
        C{reason} field) written an interval, from all sources.
    """

    def __init__(
        self,
        clock: IReactorTime,
        interval: float = DEFAULT_LOG_INTERVAL,
        always_count: bool = False,
        max_lines: int = MAX_LINES,
    ) -> None:
        self._clock = clock
        self._reports = OncePerInterval(interval)
        self._always_count = always_count
        self._max_lines = max_lines
        # (format, reason) -> _Window, for the kinds logged within the
        # last interval: at most as many as the callers have formats.
        self._windows: dict = {}

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
        window = self._window(log, level, text, fields.get("reason"))
        if window.written >= self._max_lines:
            window.quiet += 1
            return
        quiet = self.due(key)
        if quiet is None:
            return
        window.written += 1
        if quiet or self._always_count:
            text += QUIET
        log.emit(level, text, quiet=quiet, **fields)

    def _window(self, log: Logger, level: LogLevel, text: str, reason) -> _Window:
        """
        The current window of the lines of one kind, a new one once the
        interval is over; first, the summaries of the windows of every
        kind whose interval is over and whose cap kept lines quiet.
        """
        now = self._clock.seconds()
        for kind, window in list(self._windows.items()):
            if now - window.start >= self._reports.interval:
                del self._windows[kind]
                window.summarise(self._max_lines, self._reports.interval)
        kind = (text, reason)
        if kind not in self._windows:
            self._windows[kind] = _Window(now, log, level, text)
        return self._windows[kind]


def unpaced(log: Logger, level: LogLevel, host, reason: str, text: str, **fields):
    """
    Write every line: what a component given no pacing does (tests build
    them so; the server always gives its gate's L{PacedLog}).  Takes the
    arguments of the server's C{ConnectionGate.paced}.
    """
    log.emit(level, text, source=host, reason=reason, quiet=0, **fields)
