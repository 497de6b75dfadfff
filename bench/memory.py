"""
The resident memory of a process, so a scenario can say what each
connected endpoint costs the server.
"""

from __future__ import annotations

#: /proc/PID/status gives it in kibibytes.
_KIB = 1024


def resident_bytes(pid: int) -> int | None:
    """
    @return: the resident set size of the running process C{pid}
        (C{VmRSS}), or L{None} when it cannot be read (the process is
        gone, or this is not Linux).
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read(16384)
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) * _KIB
    return None
