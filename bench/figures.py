# -*- test-case-name: tests.bench.test_figures -*-
"""
How one figure is shown in the reports' tables and JSON lines: its unit,
its rounding, "-" where it was not measured, and the notes that count
what went wrong.  Every scenario's report uses these, so that the same
figure reads the same way in each.
"""

from __future__ import annotations

from bench.measurement import Measurement

#: One table row: what, the figure, its unit, a note.
Row = tuple[str, str, str, str]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds


def megabytes(size: int | None) -> float | None:
    return None if size is None else size / (1024 * 1024)


def percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


def ratio(part: float | None, whole: float | None) -> float | None:
    """
    @return: C{part / whole}, or L{None} when either is unknown or
        C{whole} is zero.
    """
    if part is None or not whole:
        return None
    return part / whole


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def text(value: float | None, digits: int = 1) -> str:
    """
    @return: C{value} for a table cell, "-" when it was not measured.
    """
    return "-" if value is None else f"{value:.{digits}f}"


def met_or_missed(met: bool) -> str:
    return "met" if met else "missed"


def counts_note(counts: dict[str, int]) -> str:
    """
    @return: each reason with its count ("3x timeout; 1x refused"), in
        the reasons' order.
    """
    return "; ".join(
        f"{count}x {reason}" for reason, count in sorted(counts.items())
    )


def errors_note(measurement: Measurement) -> str:
    """
    @return: the errors of C{measurement}, counted by reason.
    """
    return counts_note(measurement.error_reasons)
