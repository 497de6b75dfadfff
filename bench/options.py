"""
The command line of C{bench/run.py}: every option written once in
L{OPTIONS}, and each scenario in L{SCENARIOS} as the options it takes,
with the defaults and words where it differs.

One table rather than a block of C{add_argument} calls per scenario: the
scenarios share most of their options (the fleet's size, the measured
phase's duration, the rotation interval and grace, the store), and a
bound or a help text changed in one place holds for every scenario.
"""

from __future__ import annotations

import argparse

from bench.database import POSTGRES, SQLITE, store_option
from bench.device import MAX_DEVICES
from bench.fleet import MAX_ENDPOINTS
from bench.idle_flood import MAX_CONNECTIONS, MAX_SOURCES
from bench.rotation import IDLE_INTERVAL

#: The largest --duration and --ceiling-duration accepted, in seconds.
MAX_DURATION = 600.0

#: The most server processes a run starts.
MAX_PROCESSES = 16


def bounded(kind, low, high):
    """
    @return: an argparse type reading a C{kind} from C{low} to C{high}.
    """

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    return parse


def checked(check):
    """
    @return: an argparse type calling C{check}, whose L{ValueError} says
        what is wrong.
    """

    def parse(text: str):
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _seconds(low: float, high: float = MAX_DURATION):
    return bounded(float, low, high)


#: Every option: its flag, then the keywords of C{add_argument}.  A help
#: text says its default with C{%(default)s} (C{%(default)g} for
#: seconds), so a scenario changing the default keeps it true.
OPTIONS = {
    "--devices": dict(
        type=bounded(int, 1, MAX_DEVICES), default=16,
        help="simulated devices, and TLS connections in flight "
        "(default %(default)s)",
    ),
    "--endpoints": dict(
        type=bounded(int, 1, MAX_ENDPOINTS), default=1000,
        help="enrolled endpoints, each on a TLS connection (default %(default)s)",
    ),
    "--ceiling-duration": dict(
        type=_seconds(0.1), default=3.0,
        help="seconds each ceiling is measured for (default %(default)g)",
    ),
    "--max-count": dict(
        type=bounded(int, 1, 10**7), default=10**6,
        help="the most operations of each ceiling (default %(default)s)",
    ),
    "--duration": dict(
        type=_seconds(0.1), default=10.0,
        help="seconds of measured rotations (default %(default)g)",
    ),
    "--max-rotations": dict(
        type=bounded(int, 1, 10**8), default=10**7,
        help="the most measured rotations (default %(default)s)",
    ),
    "--interval": dict(
        type=_seconds(1.0, IDLE_INTERVAL), default=10.0,
        help="the rotation interval of the server and the agents, in "
        "seconds (default %(default)g)",
    ),
    "--grace": dict(
        type=_seconds(1.0), default=5.0,
        help="the server's rotation grace, in seconds (default %(default)g)",
    ),
    "--auth-timeout": dict(
        type=_seconds(0.5, 60.0), default=5.0,
        help="seconds a device has to connect back and answer "
        "(default %(default)g)",
    ),
    "--store": dict(
        type=checked(store_option), default=SQLITE,
        help=f"{SQLITE} (the default), {POSTGRES} (a PostgreSQL server of the "
        "run's own, with pg_stat_statements) or the postgresql:// URI of an "
        "empty database",
    ),
    "--processes": dict(
        type=bounded(int, 1, MAX_PROCESSES), default=1,
        help="twistd suto processes sharing the port with reusePort=yes, one "
        "store and one master key (default %(default)s; several need "
        "PostgreSQL)",
    ),
    "--max-auth": dict(
        type=bounded(int, 1, 10**7), default=100000,
        help="the most measured authentications (default %(default)s)",
    ),
    "--server-profile": dict(
        metavar="FILE", default=None,
        help="write a cProfile of the server's reactor thread to FILE",
    ),
    "--max-enroll": dict(
        type=bounded(int, 1, 10**6), default=100000,
        help="the most measured enrollments (default %(default)s)",
    ),
    "--enroll-timeout": dict(
        type=_seconds(0.5, 60.0), default=30.0,
        help="seconds an enrollment may take (default %(default)g)",
    ),
    "--downtime": dict(
        type=_seconds(0.0), default=0.0,
        help="the least seconds the server stays down (default 0: until "
        "both sides have marked the fleet offline, interval x 1.1 + grace)",
    ),
    "--storm-timeout": dict(
        type=_seconds(1.0), default=180.0,
        help="the most seconds to wait, from the restart, for every "
        "endpoint to be back (default %(default)g)",
    ),
    "--kill-after": dict(
        type=_seconds(0.0), default=5.0,
        help="seconds of rotations between the fleet being connected and "
        "the kill (default %(default)g)",
    ),
    "--failover-timeout": dict(
        type=_seconds(1.0), default=120.0,
        help="the most seconds to wait, from the kill, for every endpoint "
        "to rotate again (default %(default)g)",
    ),
    "--idle": dict(
        type=_seconds(0.1), default=5.0,
        help="seconds the idle fleet's server load is measured "
        "(default %(default)g)",
    ),
    "--sources": dict(
        type=bounded(int, 1, MAX_SOURCES), default=40,
        help="loopback addresses the flood comes from (default %(default)s)",
    ),
    "--connections": dict(
        type=bounded(int, 1, MAX_CONNECTIONS), default=1000,
        help="idle connections the flood holds (default %(default)s)",
    ),
    "--logins": dict(
        type=bounded(int, 1, 10**5), default=120,
        help="the most logins measured (default %(default)s)",
    ),
    "--records": dict(
        type=bounded(int, 0, 1_000_000), default=20_000,
        help="audit records in the store (default %(default)s)",
    ),
    "--rounds": dict(
        type=bounded(int, 1, 100), default=5,
        help="requests of each page (default %(default)s)",
    ),
}

#: The options of a scenario that measures the machine's ceilings first.
_CEILINGS = ("--ceiling-duration", "--max-count")

#: The options choosing the store and how many server processes share it.
_STORE = ("--store", "--processes")

#: Each scenario: its one-line description, then its options, a flag
#: alone taking L{OPTIONS} as they are, a C{(flag, changes)} pair
#: replacing some of their keywords.
SCENARIOS = {
    "ceilings": ("only the machine's ceilings", ("--devices", *_CEILINGS)),
    "classic": (
        "ceilings, then classic salted-challenge authentications",
        (
            "--devices", *_CEILINGS,
            ("--duration", dict(
                help="seconds of measured authentications (default %(default)g)"
            )),
            "--max-auth", "--auth-timeout", "--server-profile",
        ),
    ),
    "enrollment": (
        "ceilings, then enrollments: window, conversation, first key",
        (
            "--devices", *_CEILINGS,
            ("--duration", dict(
                help="seconds of measured enrollments (default %(default)g)"
            )),
            "--max-enroll", "--enroll-timeout",
        ),
    ),
    "rotation": (
        "ceilings, then key rotations over a connected fleet",
        (
            "--endpoints", *_CEILINGS, "--duration",
            ("--interval", dict(
                type=_seconds(0.0, IDLE_INTERVAL), default=0.0,
                help="seconds between an endpoint's rotations, before jitter "
                "(default 0: as fast as lockstep allows)",
            )),
            "--max-rotations", *_STORE,
        ),
    ),
    "storm": (
        "ceilings, then a connected fleet reconnecting after a server restart",
        (
            "--endpoints", *_CEILINGS,
            ("--interval", dict(
                help="the rotation interval of the server and the agents, in "
                "seconds (default %(default)g, so the offline marks come in "
                "seconds)",
            )),
            "--grace", "--downtime", "--storm-timeout", *_STORE,
        ),
    ),
    "scaling": (
        "ceilings, then key rotations served by one process over SQLite, one "
        "over PostgreSQL and several over PostgreSQL",
        (
            "--endpoints", *_CEILINGS,
            ("--duration", dict(
                help="seconds of measured rotations of each configuration "
                "(default %(default)g)",
            )),
            ("--max-rotations", dict(
                help="the most measured rotations of each (default %(default)s)"
            )),
            ("--processes", dict(default=2)),
        ),
    ),
    "failover": (
        "a fleet rotating over two server processes on one PostgreSQL store, "
        "one killed with SIGKILL",
        (
            "--endpoints",
            ("--interval", dict(
                help="the rotation interval of the servers and the agents, "
                "in seconds (default %(default)g)",
            )),
            ("--grace", dict(
                help="the servers' rotation grace, in seconds "
                "(default %(default)g)",
            )),
            "--kill-after", "--failover-timeout",
        ),
    ),
    "flood": (
        "classic logins while idle connections from many addresses hold the "
        "server's starting cap",
        (
            "--sources", "--connections",
            ("--devices", dict(
                default=6,
                help="simulated devices logging in at once (default %(default)s)",
            )),
            "--logins",
            ("--duration", dict(
                default=60.0, help="the most seconds of logins (default %(default)g)"
            )),
            "--auth-timeout",
        ),
    ),
    "console": (
        "the time each web console page takes with a large fleet",
        (
            ("--endpoints", dict(
                type=bounded(int, 1, 100_000), default=10_000,
                help="enrolled profiles in the store (default %(default)s)",
            )),
            "--records", "--rounds",
        ),
    ),
    "memory": (
        "server memory and idle load with a connected fleet",
        ("--endpoints", "--idle"),
    ),
}


def add_scenarios(top: argparse.ArgumentParser) -> None:
    """
    Add one sub-command of C{top} for each scenario of L{SCENARIOS}, with
    its options, choosing the scenario as C{scenario}.
    """
    scenarios = top.add_subparsers(dest="scenario", required=True)
    for name, (text, flags) in SCENARIOS.items():
        scenario = scenarios.add_parser(name, help=text, description=text)
        for entry in flags:
            flag, changes = (entry, {}) if isinstance(entry, str) else entry
            scenario.add_argument(flag, **{**OPTIONS[flag], **changes})
