"""
Log throttling shared by the server and the agent: a repeated event (a
refused source, a dropped datagram) is logged once per interval with a
count of what was kept quiet, so a flood cannot turn either side into a
log amplifier.
"""

from __future__ import annotations

#: The most keys one throttle remembers.
MAX_KEYS = 4096


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
