"""
The resident memory of a process, so a scenario can say what each
connected endpoint costs the server; and the other sizes C{/proc} gives
in kibibytes (L{bench.holdings} reads a proportional set size with it).
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
    return kibibytes_field(f"/proc/{pid}/status", b"VmRSS:", 16384)


def kibibytes_field(path: str, label: bytes, most: int) -> int | None:
    """
    @param path: a C{/proc} file of C{label: N kB} lines, of at most
        C{most} bytes.
    @return: the bytes of its line starting with C{label}, or L{None}
        when the file cannot be read or has no such line.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read(most)
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(label):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) * _KIB
    return None
