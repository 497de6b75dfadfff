"""
The rotation table's rows on what the host held: each server process's
share of the fleet (connections, memory, CPU), the processes together
against issue 21's target for one host, PostgreSQL's own CPU and memory,
and the generators' memory.

Issue 21's target: "100,000 connected and rotating (interval 600 s for
the run, so the generators fit on the same two cores), server under 25%
of a core, RSS under 2.5 GB".  The server's CPU and RSS are those of
every C{twistd suto} process added up: several processes over one
PostgreSQL store serve the fleet when one process may not have enough
open files (L{bench.descriptors}).  PostgreSQL is reported beside them,
not in them: it is the database the deployment runs on, as the SQLite
file is in a single process's own.
"""

from __future__ import annotations

from bench.descriptors import busiest_share
from bench.figures import (
    Row,
    megabytes,
    met_or_missed,
    percent,
    ratio,
    rounded,
    text,
)
from bench.measurement import Measurement
from bench.rotation import FleetResult

#: Issue 21's fleet on one host, and what its servers may cost.
HOST_ENDPOINTS_TARGET = 100_000
HOST_LOAD_TARGET = 0.25
HOST_RSS_TARGET_BYTES = int(2.5 * 1024**3)


def _load(cpu: float | None, measured: Measurement) -> float | None:
    return ratio(cpu, measured.seconds)


def host_json(result: FleetResult) -> dict:
    """
    @return: each server process's figures, the processes together
        against issue 21's host target, PostgreSQL's and the generators'.
    """
    measured = result.measured
    load = _load(measured.server_cpu, measured)
    held = [share.connections for share in result.shares]
    database_cpu = None if result.database is None else result.database.cpu
    met = (
        result.connected >= HOST_ENDPOINTS_TARGET
        and measured.errors == 0
        and load is not None
        and load < HOST_LOAD_TARGET
        and result.rss_after is not None
        and result.rss_after < HOST_RSS_TARGET_BYTES
    )
    return {
        "server_processes": [
            {
                "connections": share.connections,
                "rss_before_mb": rounded(megabytes(share.rss_before)),
                "rss_after_mb": rounded(megabytes(share.rss_after)),
                "load": rounded(_load(share.cpu, measured), 4),
            }
            for share in result.shares
        ],
        "connections_held": None if None in held else sum(held),
        "busiest_share_bound": busiest_share(result.endpoints, result.processes),
        "host_target_met": met,
        "database_load": rounded(_load(database_cpu, measured), 4),
        "database_memory_mb": rounded(megabytes(result.database_memory)),
        "database_connections": result.database_connections,
        "generator_rss_each_mb": [
            rounded(megabytes(size)) for size in result.generator_sizes
        ],
    }


def _share_rows(result: FleetResult, figures: dict) -> list[Row]:
    rows = []
    for number, process in enumerate(figures["server_processes"], 1):
        rows.append(
            (f"server process {number}", str(process["connections"]), "connections",
             (f"RSS {text(process['rss_before_mb'])} -> "
              f"{text(process['rss_after_mb'])} MB with the fleet; load "
              f"{text(percent(process['load']), 2)}% of a core"))
        )
    if result.processes > 1:
        rows.append(
            ("connections held", str(figures["connections_held"]), "",
             (f"by the {result.processes} processes together, counted in each "
              f"one's descriptors; {result.endpoints / result.processes:.0f} each "
              f"on average, the file check's bound for the busiest "
              f"{figures['busiest_share_bound']}"))
        )
    return rows


def host_rows(result: FleetResult) -> list[Row]:
    """
    @return: the rows of L{host_json}'s figures.
    """
    figures = host_json(result)
    measured = result.measured
    load = _load(measured.server_cpu, measured)
    rows = _share_rows(result, figures)
    rss = result.rss_after
    rows.append(
        ("host target", met_or_missed(figures["host_target_met"]), "",
         (f"{HOST_ENDPOINTS_TARGET} connected and rotating: "
          f"{result.connected} here, {measured.errors} errors; server load "
          f"{text(percent(load), 1)}% of a core (under "
          f"{percent(HOST_LOAD_TARGET):.0f}%: "
          f"{met_or_missed(load is not None and load < HOST_LOAD_TARGET)}); server RSS "
          f"{text(megabytes(rss))} MB (under "
          f"{HOST_RSS_TARGET_BYTES // 1024**2} MB: "
          f"{met_or_missed(rss is not None and rss < HOST_RSS_TARGET_BYTES)})"))
    )
    if result.database is not None:
        rows.append(
            ("PostgreSQL load", text(percent(figures["database_load"]), 1),
             "% of a core",
             (f"its processes over the measured phase; memory "
              f"{text(figures['database_memory_mb'])} MB (proportional set "
              f"sizes added up); {figures['database_connections']} connections "
              f"to the fleet's database"))
        )
    sizes = figures["generator_rss_each_mb"]
    per_endpoint = ratio(result.generator_rss, result.connected)
    rows.append(
        ("generators' RSS each", ", ".join(text(size) for size in sizes), "MB",
         (f"{text(None if per_endpoint is None else per_endpoint / 1024)} KB "
          f"per connected endpoint"))
    )
    return rows
