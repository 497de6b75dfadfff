# -*- test-case-name: tests.admin.test_formatting -*-
"""
How times appear to operators: UTC, ISO 8601, to the second.
"""

import datetime


def iso_utc(timestamp: float | None) -> str | None:
    """
    C{2026-11-22T07:23:41Z} for a POSIX time; L{None} stays L{None}.
    """
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
