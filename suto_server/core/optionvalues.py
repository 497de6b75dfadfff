# -*- test-case-name: tests.core.test_optionvalues -*-
"""
Values that the options of both daemons take: durations in seconds and
local IP addresses.

Each is checked when the options are parsed, so a value the daemon cannot
use is a usage error naming its option, from the command line and from a
configuration file alike, rather than a traceback once the daemon runs.

A duration must be finite and within bounds the daemon can honour: a
timer of C{1e-300} seconds expires before any packet can arrive, and one
of C{1e300} pushes deadlines past any time the daemon can store.  Each
option names its own bounds; L{MIN_TIMER} is the shortest any timer takes.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

#: The shortest duration of any timer or timeout, in seconds: a
#: millisecond, about the finest a reactor's timers tell apart.
MIN_TIMER = 0.001


def seconds(least: float, most: float, *, off: bool = False) -> Callable:
    """
    The coerce function of an option in seconds.

    C{inf} and C{nan} are refused with the values out of bounds.

    @param least: the shortest duration taken, above zero.
    @param most: the longest duration taken.
    @param off: whether 0 is taken too, to turn the option off.
    """

    def coerce(value: str) -> float:
        number = float(value)
        if off and number == 0:
            return number
        if not number > 0:
            raise ValueError("must be zero or more" if off else "must be positive")
        if number < least:
            raise ValueError(f"must be at least {least:g}")
        if number > most:
            raise ValueError(f"must be at most {most:g}")
        return number

    coerce.coerceDoc = (
        f"Seconds, from {least:g} to {most:g}" + ("; 0 turns it off." if off else ".")
    )
    return coerce


def is_ip_address(text: str, version: int | None = None) -> bool:
    """
    Is C{text} an IP address literal (of C{version}, 4 or 6, if given)?
    A host name is not: the daemons bind these, and a name would be
    resolved, or fail, only once they run.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version
