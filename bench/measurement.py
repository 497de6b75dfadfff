"""
What one measurement found: how many operations succeeded in how long,
how many failed and why, how long each took, and the CPU each side spent.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from bench.cpu import CpuUse

#: Distinct failure reasons kept; more are counted under one heading.
MAX_REASONS = 20

_OTHER_REASONS = "other reasons"


def percentile(values: list[float], fraction: float) -> float | None:
    """
    The nearest-rank percentile.

    @param values: the observations, in any order.
    @param fraction: from 0 (exclusive) to 1, e.g. 0.99.
    @return: the smallest observation at least C{fraction} of all are not
        above, or L{None} for no observations.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Measurement:
    """
    @ivar count: operations that succeeded.
    @ivar seconds: wall-clock time of the measurement.
    @ivar errors: operations that failed.
    @ivar generator_cpu: CPU seconds of the load-generating process, or
        L{None} when not measured.
    @ivar server_cpu: CPU seconds of the server's process, or L{None}.
    @ivar machine_cpu: CPU seconds of the whole machine, all processes,
        or L{None}.
    @ivar latencies: seconds each successful operation took, when timed.
    @ivar error_reasons: how many failures had each reason.
    """

    count: int
    seconds: float
    errors: int = 0
    generator_cpu: float | None = None
    server_cpu: float | None = None
    machine_cpu: float | None = None
    latencies: tuple[float, ...] = field(default=(), repr=False)
    error_reasons: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of_reports(
        cls, reports: list[dict], cpu: CpuUse, latencies: tuple[float, ...] = ()
    ) -> Measurement:
        """
        What load generators measured together, from the reports they
        printed (each with C{count}, C{seconds}, C{errors},
        C{error_reasons} and C{cpu}) and the CPU the server and the
        machine spent meanwhile.

        @raise KeyError: a report lacks one of those.
        """
        reasons = add_counts(report["error_reasons"] for report in reports)
        return cls(
            count=sum(report["count"] for report in reports),
            seconds=max(report["seconds"] for report in reports),
            errors=sum(report["errors"] for report in reports),
            generator_cpu=sum(report["cpu"] for report in reports),
            server_cpu=cpu.server,
            machine_cpu=cpu.machine,
            latencies=latencies,
            error_reasons=reasons,
        )

    @property
    def per_second(self) -> float:
        """
        Successful operations per second.
        """
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def latency(self, fraction: float) -> float | None:
        """
        @return: the C{fraction} percentile of the latencies in seconds,
            or L{None} when none were timed.
        """
        return percentile(list(self.latencies), fraction)

    def cpu_ms_per_operation(self, cpu: float | None) -> float | None:
        """
        @param cpu: one of this measurement's CPU figures.
        @return: that CPU time in milliseconds per successful operation,
            or L{None} when there is none to divide.
        """
        if cpu is None or self.count == 0:
            return None
        return 1000.0 * cpu / self.count


def add_counts(mappings) -> dict[str, int]:
    """
    Add up the failure reasons several processes reported.

    @param mappings: C{reason: count} mappings.
    @return: their sum, reason by reason.
    """
    total: dict[str, int] = {}
    for mapping in mappings:
        for reason, count in mapping.items():
            total[reason] = total.get(reason, 0) + count
    return total


class Tally:
    """
    Collects the outcomes of one measurement's operations as they end.
    """

    def __init__(self) -> None:
        self.count = 0
        self._latencies: list[float] = []
        self._reasons: Counter[str] = Counter()

    def succeeded(self, latency: float | None = None) -> None:
        """
        One operation succeeded, in C{latency} seconds if timed.
        """
        self.count += 1
        if latency is not None:
            self._latencies.append(latency)

    def failed(self, reason: str) -> None:
        """
        One operation failed; C{reason} says why, in a few words.
        """
        if reason not in self._reasons and len(self._reasons) >= MAX_REASONS:
            reason = _OTHER_REASONS
        self._reasons[reason] += 1

    def measurement(self, seconds: float, cpu: CpuUse | None = None) -> Measurement:
        """
        @return: what was collected, over C{seconds} of wall-clock time,
            with the CPU spent meanwhile if measured.
        """
        return Measurement(
            count=self.count,
            seconds=seconds,
            errors=sum(self._reasons.values()),
            generator_cpu=None if cpu is None else cpu.generator,
            server_cpu=None if cpu is None else cpu.server,
            machine_cpu=None if cpu is None else cpu.machine,
            latencies=tuple(self._latencies),
            error_reasons=dict(self._reasons),
        )
