"""
Open files: what bounds the size of a fleet on one host.

Every endpoint of the rotation, memory and storm scenarios holds one TLS
connection, so one socket in the server and one in a generator.  A
process may have at most C{RLIMIT_NOFILE} files open; past it the
server's listener can accept nothing (Twisted logs "Out of file
descriptors" and the connection waits in the backlog until its client
gives up), and a generator's connections fail with C{EMFILE}.  Raising
the soft limit up to the hard one is always allowed; raising the hard
one takes C{CAP_SYS_RESOURCE} (root outside a container, or
C{LimitNOFILE=} in the server's systemd unit), which a benchmark must
not assume.

So the fleet is checked against the limit before anything is seeded, and
split between as many generators as it takes for each to stay under it
(at least one per core, so the generators use every core).
"""

from __future__ import annotations

import math
import resource

from bench.ceilings import shares

#: Files a process of the benchmark holds besides its fleet's sockets:
#: the server's listeners, store, log, admin socket, epoll and waker
#: descriptors and its threads' files; a generator's standard streams,
#: fleet file and epoll: a few dozen at most, with room to spare.
RESERVE = 100

#: Standard deviations above the mean share that bound the busiest of
#: several server processes sharing a port: one process in a billion
#: would be handed more.
SPREAD_DEVIATIONS = 6

#: Connections all generators together open at once: under the server's
#: default C{--max-startups} start (100 connections before their first
#: exchange), past which it refuses some new connections.
STARTING = 96


class FleetTooLarge(ValueError):
    """
    The fleet needs more open files than one process may have here.
    """


def raise_file_limit() -> int:
    """
    Allow this process, and the processes it starts (the server, the
    generators), as many open files as the system lets this user have:
    every endpoint holds a socket at each end.

    @return: the limit now in force (the hard limit).
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def busiest_share(endpoints: int, processes: int) -> int:
    """
    The most connections one of C{processes} server processes sharing a
    port (C{SO_REUSEPORT}) may be handed out of C{endpoints}.

    The kernel picks each connection's listener from a hash of its
    addresses and ports, so each process's count is binomial, not
    C{endpoints / processes}: L{SPREAD_DEVIATIONS} standard deviations
    above the mean bound it (100 000 over six processes: 16 667 on
    average, 117.8 the deviation, at most 17 374).

    @return: C{endpoints} for one process.
    """
    if processes == 1:
        return endpoints
    share = 1 / processes
    deviation = math.sqrt(endpoints * share * (1 - share))
    return math.ceil(endpoints * share + SPREAD_DEVIATIONS * deviation)


def check_server(endpoints: int, limit: int, processes: int = 1) -> None:
    """
    @param limit: the open files one process may have (L{raise_file_limit}).
    @param processes: server processes sharing the fleet's port.
    @raise FleetTooLarge: the busiest of them (L{busiest_share}) could
        not hold its connections under C{limit}.
    """
    room = limit - RESERVE
    most = busiest_share(endpoints, processes)
    if most <= room:
        return
    if processes == 1:
        raise FleetTooLarge(
            f"{endpoints} endpoints need {endpoints + RESERVE} open files in the "
            f"server process, and this host lets a process have {limit} "
            f"(RLIMIT_NOFILE's hard limit; raising it takes CAP_SYS_RESOURCE, "
            f"e.g. `ulimit -Hn` as root or LimitNOFILE= in a systemd unit); "
            f"at most {max(0, room)} endpoints fit"
        )
    enough = processes
    while busiest_share(endpoints, enough) > room and enough < endpoints:
        enough += 1
    raise FleetTooLarge(
        f"{endpoints} endpoints over {processes} server processes may hand "
        f"one of them {most} connections (the port's hash spreads them "
        f"unevenly), and this host lets a process have {limit} open files: "
        f"give --processes {enough} or more"
    )


def generator_shares(endpoints: int, cores: int, limit: int) -> list[int]:
    """
    @return: how many endpoints each generator drives, in fleet order: one
        generator per core, or more if one per core would hold more
        connections than C{limit} allows a process.
    @raise FleetTooLarge: C{limit} leaves no room for a connection.
    """
    room = limit - RESERVE
    if room < 1:
        raise FleetTooLarge(f"a process may have only {limit} open files")
    return shares(endpoints, max(cores, math.ceil(endpoints / room)))


def connecting(generators: int) -> int:
    """
    @return: connections each of C{generators} generators opens at once, so
        that together they stay under L{STARTING}.
    """
    return max(1, STARTING // generators)
