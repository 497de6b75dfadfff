"""
The scaling run of issue 18: in one run, under the same neighbours, the
rotation scenario's lockstep fleet served by one process over SQLite, by
one over PostgreSQL, and by several sharing the port over PostgreSQL,
each on a fleet and a database of its own, one after the other, after the
ceilings of the run.  Its report (L{bench.scale_report}) gives the two
ratios the issue asks for, with the most this machine allows them.
"""

from __future__ import annotations

import os

from bench.database import Database
from bench.rotation import run_fleet
from bench.scale_report import Configuration


async def run_scaling(
    reactor,
    directory: str,
    database: Database,
    *,
    endpoints: int,
    duration: float,
    max_rotations: int,
    processes: int,
    progress,
) -> list[Configuration]:
    """
    Measure SQLite x 1, PostgreSQL x 1 and PostgreSQL x C{processes}.

    @param directory: an empty folder; each fleet gets one inside it.
    @param database: the PostgreSQL server, which makes each fleet a
        database of its own.
    @param progress: called with a line of text before each fleet.
    @return: the three configurations, in that order.
    """
    configurations = []
    for index, (name, over, count) in enumerate(
        (
            ("sqlite x 1", None, 1),
            ("postgres x 1", database, 1),
            (f"postgres x {processes}", database, processes),
        )
    ):
        progress(f"{name}: {endpoints} endpoints, {duration:g} s")
        result = await run_fleet(
            reactor,
            os.path.join(directory, f"fleet-{index}"),
            endpoints=endpoints,
            interval=0.0,
            duration=duration,
            max_rotations=max_rotations,
            database=over,
            processes=count,
        )
        configurations.append(
            Configuration(name, count, result.measured, result.database)
        )
    return configurations
