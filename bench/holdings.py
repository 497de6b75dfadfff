"""
What each process of a fleet run holds: the server processes' share of
the fleet's connections, memory and CPU, and the memory of processes
that share pages (PostgreSQL's).

Several server processes sharing a port (C{SO_REUSEPORT}) are each
handed the connections the kernel's hash picks for them, so what one
holds is counted, not assumed: a connection is one of a process's
descriptors (C{/proc/PID/fd} links to C{socket:[INODE]}) whose socket
C{/proc/net/tcp} lists as established with the listener's address and
port as its local end (the generators' ends have them as their remote
end).

Resident memory (C{VmRSS}, L{bench.memory}) counts a shared page in
every process mapping it, so PostgreSQL's backends, which all map its
shared buffers, would be counted many times over; their proportional set
size (C{Pss} in C{/proc/PID/smaps_rollup}: each shared page divided
between the processes mapping it) adds up to what they hold together.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from bench.cpu import process_cpu_seconds
from bench.memory import kibibytes_field, resident_bytes

#: Where the kernel lists the IPv4 TCP sockets of this network namespace.
_TCP_TABLE = "/proc/net/tcp"

#: C{/proc/net/tcp}'s code for an established connection.
_ESTABLISHED = "01"


@dataclass(frozen=True)
class ServerShare:
    """
    One server process's part of a fleet run; L{None} where unread.

    @ivar connections: the fleet's connections it held once every
        endpoint had connected.
    @ivar rss_before: its resident bytes once serving, before the fleet.
    @ivar rss_after: the same with the fleet connected.
    @ivar cpu: its CPU seconds over the measured phase.
    """

    connections: int | None
    rss_before: int | None
    rss_after: int | None
    cpu: float | None = None


def established_on(
    address: str, port: int, table: str = _TCP_TABLE
) -> set[int]:
    """
    @param address: an IPv4 address the server listens on.
    @return: the inodes of the established TCP sockets whose local end is
        C{address}:C{port}: the server's accepted connections on that
        listener (a generator's socket may have the same local port on
        its own address).
    """
    # The kernel writes an address as its 32 bits in host order (so
    # reversed on a little-endian machine), then the port, both in hex.
    packed = int.from_bytes(socket.inet_aton(address), "big")
    local = f"{socket.ntohl(packed):08X}:{port:04X}"
    inodes = set()
    try:
        with open(table, encoding="ascii") as handle:
            next(handle, None)
            for line in handle:
                fields = line.split()
                if fields[1] == local and fields[3] == _ESTABLISHED:
                    inodes.add(int(fields[9]))
    except OSError:
        return inodes
    return inodes


def held_sockets(pid: int, inodes: set[int]) -> int | None:
    """
    @return: how many of process C{pid}'s descriptors are sockets among
        C{inodes}, or L{None} if its descriptors cannot be read.
    """
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    held = 0
    for name in names:
        try:
            target = os.readlink(os.path.join(folder, name))
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            held += 1
    return held


def proportional_bytes(pid: int) -> int | None:
    """
    @return: the proportional set size of process C{pid} (C{Pss}: its
        private pages, and each shared page divided by the processes
        mapping it), or L{None} if it cannot be read.
    """
    return kibibytes_field(f"/proc/{pid}/smaps_rollup", b"Pss:", 8192)


class ShareMeter:
    """
    Each server process's share of a fleet run: its connections and
    memory now, its CPU from now on.
    """

    def __init__(
        self, pids: list[int], address: str, port: int,
        rss_before: list[int | None],
    ) -> None:
        """
        @param pids: the server processes, in the order of their setups.
        @param address: the address their listener shares, C{port} its
            port.
        @param rss_before: each one's resident bytes before the fleet.
        """
        inodes = established_on(address, port)
        self._pids = pids
        self._rss_before = rss_before
        self._held = [held_sockets(pid, inodes) for pid in pids]
        self._rss_after = [resident_bytes(pid) for pid in pids]
        self._cpu = [process_cpu_seconds(pid) for pid in pids]

    def read(self) -> tuple[ServerShare, ...]:
        """
        @return: each process's L{ServerShare}, its CPU since the meter
            was made.
        """
        spent = [process_cpu_seconds(pid) for pid in self._pids]
        return tuple(
            ServerShare(
                held, before, after, None if None in (now, then) else now - then
            )
            for held, before, after, now, then in zip(
                self._held, self._rss_before, self._rss_after, spent, self._cpu
            )
        )


def summed(values) -> int | float | None:
    """
    @return: the sum of C{values}, or L{None} if one is L{None} or there
        are none.
    """
    values = list(values)
    if not values or None in values:
        return None
    return sum(values)
