"""
CPU time spent by this process, by a process it started, and by the whole
machine, so a report can say what each side cost per operation (on a
machine whose cores the load generator shares with the server, throughput
alone hides who used them) and how much other load the machine carried
meanwhile.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

# /proc/PID/stat fields 14 and 15 (utime, stime), counted from 1, after
# the command name in parentheses (which may itself hold spaces).
_UTIME_AFTER_NAME = 11


def own_cpu_seconds() -> float:
    """
    @return: user plus system CPU seconds of this process, all threads.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """
    @return: user plus system CPU seconds of the running process C{pid}
        (all its threads), or L{None} when it cannot be read (the process
        is gone, or this is not Linux).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read(4096)
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = fields[_UTIME_AFTER_NAME : _UTIME_AFTER_NAME + 2]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float | None:
    """
    @return: CPU seconds all cores have spent on anything but idling
        (every process, the kernel, and time the hypervisor took), or
        L{None} when it cannot be read (this is not Linux).
    """
    try:
        with open("/proc/stat", "rb") as handle:
            first = handle.readline()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already counted in user time.
    ticks = [int(field) for field in first.split()[1:9]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuUse:
    """
    CPU seconds spent over one measurement; L{None} where not read.

    @ivar generator: by this process.
    @ivar server: by the server under test.
    @ivar machine: by the whole machine.
    """

    generator: float
    server: float | None
    machine: float | None


def _since(now: float | None, then: float | None) -> float | None:
    return None if now is None or then is None else now - then


class CpuMeter:
    """
    CPU seconds used from now on by this process (the load generator), by
    other processes if given (the server under test: one process, or
    several serving together, summed), and by the whole machine.
    """

    def __init__(self, *server_pids: int | None) -> None:
        self._server_pids = [pid for pid in server_pids if pid is not None]
        self._start = self._reading()

    def _reading(self) -> CpuUse:
        server = None
        if self._server_pids:
            readings = [process_cpu_seconds(pid) for pid in self._server_pids]
            server = None if None in readings else sum(readings)
        return CpuUse(own_cpu_seconds(), server, machine_cpu_seconds())

    def read(self) -> CpuUse:
        """
        @return: the CPU seconds spent since the meter was made.
        """
        now = self._reading()
        return CpuUse(
            now.generator - self._start.generator,
            _since(now.server, self._start.server),
            _since(now.machine, self._start.machine),
        )
