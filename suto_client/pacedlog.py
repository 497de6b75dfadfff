"""
The agent's log lines about what anyone on the network can make it do.

A hello or a check packet is a datagram that anyone can send, from any
source address, as often as they like; each one the agent logged would
make it a log amplifier for whoever sends them.  So every line the agent
writes in response to a datagram, or to an authentication a hello caused,
goes through a L{PacedLog}: one line per source and reason per interval
(C{--limit-log-interval}), the first at once, the next saying how many
alike were kept quiet meanwhile.  The pacing itself is the one the server
uses for its refusals (L{suto_server.core.throttle.OncePerInterval}).
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

from suto_server.core.throttle import OncePerInterval

DEFAULT_LOG_INTERVAL = 60.0
"""Seconds between two log lines about one source and reason."""

_QUIET = " ({quiet} more alike since the last report)"


class PacedLog:
    """
    Writes a line to a L{Logger} only when its key (a source and a reason)
    is due, with the number of lines kept quiet since the last one.
    """

    def __init__(
        self,
        log: Logger,
        clock: IReactorTime,
        interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """
        @param log: where the lines go.
        @param clock: the time the pacing reads.
        @param interval: the least seconds between two lines with one key.
        """
        self._log = log
        self._clock = clock
        self._reports = OncePerInterval(interval)

    def emit(self, level: LogLevel, key, text: str, **fields) -> None:
        """
        Log C{text} with C{fields} at C{level}, unless a line with C{key}
        was logged less than the interval ago.  The event's C{quiet} field
        holds the number of lines with C{key} kept quiet since the last
        one, and the text says it when there were any.

        @param key: what makes two lines alike: the source the datagram
            or connection came from, and the reason for the line.
        """
        quiet = self._reports.due(key, self._clock.seconds())
        if quiet is None:
            return
        if quiet:
            text += _QUIET
        self._log.emit(level, text, quiet=quiet, **fields)
