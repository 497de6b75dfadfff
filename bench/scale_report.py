"""
The figures of issue 18's runs: several server processes over one
PostgreSQL store, next to one over SQLite.

What a rotation costs the database (transactions, statements and CPU per
rotation, L{bench.database}) is shown under the rotation and storm
tables; the scaling run's ratios come with the bound the machine puts on
them.  On one machine the generators and PostgreSQL share the server's
cores, so a rotation costs the cores C{s + g + d} milliseconds (server,
generators, database, each measured in the run), and N server processes
can use at most N cores for their C{s}.  The rate a configuration can
reach here is therefore at most

    bound = min(cores / (s + g + d), processes / s)

and the ratio of two configurations at most the ratio of their bounds:
when one process already has the machine (C{s + g + d >= cores x s}),
a second adds no core for it to use.

The failover scenario's table is here too: the time until every
endpoint rotates again after a process's death, keys lost and alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.database import DatabaseUse
from bench.failover import FailoverResult
from bench.figures import (
    Row,
    counts_note,
    errors_note,
    met_or_missed,
    milliseconds,
    percent,
    ratio,
    rounded,
    text,
)
from bench.measurement import Measurement, percentile
from bench.report import SEEDING_NOTE, other_load

#: Issue 18's targets: two processes over PostgreSQL against one, one
#: over PostgreSQL against one over SQLite.
SCALING_TARGET = 1.6
POSTGRES_TARGET = 0.8


def database_json(
    measured: Measurement, database: DatabaseUse | None, per: str = "rotation"
) -> dict:
    """
    @param per: what C{measured} counts: C{rotation}, C{reconnection}.
    @return: what the database did per completed operation of
        C{measured}: transactions, statements, CPU (ms); empty on SQLite.
    """
    if database is None:
        return {}
    each = database.per(measured.count)
    return {
        "database_transactions": database.transactions,
        "database_statements": database.statements,
        f"database_transactions_per_{per}": rounded(
            None if each is None else each.transactions, 2
        ),
        f"database_statements_per_{per}": rounded(
            None if each is None else each.statements, 2
        ),
        f"database_cpu_ms_per_{per}": rounded(None if each is None else each.cpu, 3),
    }


def database_rows(
    measured: Measurement, database: DatabaseUse | None, cores: int,
    per: str = "rotation",
) -> list[Row]:
    """
    @param per: what C{measured} counts: C{rotation}, C{reconnection}.
    @return: the rows saying what the database did, and the other load
        once its CPU is set apart, or none on SQLite.
    """
    if database is None:
        return []
    figures = database_json(measured, database, per)
    load = other_load(measured, cores)
    if load is not None and database.cpu is not None:
        load = max(0.0, load - database.cpu / (measured.seconds * cores))
    return [
        (f"database transactions per {per}",
         text(figures[f"database_transactions_per_{per}"], 2), "",
         "pg_stat_database xact_commit + xact_rollback (each reading lags "
         "up to 1 s); each at least one round trip"),
        (f"database statements per {per}",
         text(figures[f"database_statements_per_{per}"], 2), "",
         "pg_stat_statements calls, BEGIN and COMMIT included; at most one "
         "round trip each (a rotation batch is pipelined)"
         if database.statements is not None else "pg_stat_statements absent"),
        (f"database CPU per {per}",
         text(figures[f"database_cpu_ms_per_{per}"], 3), "ms",
         "the PostgreSQL server's processes"),
        ("other load without the database", text(percent(load), 0), "%",
         "CPU outside servers, generators and PostgreSQL"),
    ]


#: What holds a configuration to its bound: all the cores, or its server
#: processes' reactors.
CORES = "the cores"
SERVERS = "its server processes"


def bounds(
    measured: Measurement, database: DatabaseUse | None, cores: int, processes: int
) -> dict[str, float] | None:
    """
    The two bounds the module's docstring gives, in rotations per second,
    for a configuration whose costs per rotation are those of
    C{measured}: C{{CORES: ..., SERVERS: ...}}, or L{None} when a cost
    is missing.
    """
    server = measured.cpu_ms_per_operation(measured.server_cpu)
    generators = measured.cpu_ms_per_operation(measured.generator_cpu)
    if not server or generators is None:
        return None
    base = 0.0
    if database is not None:
        per = database.per(measured.count)
        if per is None or per.cpu is None:
            return None
        base = per.cpu
    whole = server + generators + base
    return {CORES: 1000.0 * cores / whole, SERVERS: 1000.0 * processes / server}


def shared_core_bound(
    measured: Measurement, database: DatabaseUse | None, cores: int, processes: int
) -> float | None:
    """
    The most rotations per second this machine allows a configuration
    whose costs per rotation are those of C{measured}, the lower of its
    L{bounds}, or L{None} when a cost is missing.
    """
    found = bounds(measured, database, cores, processes)
    return None if found is None else min(found.values())


@dataclass(frozen=True)
class Configuration:
    """
    One measured configuration of the scaling run.

    @ivar name: how the table names it (C{"postgres x 2"}).
    @ivar processes: server processes.
    @ivar measured: its measured phase.
    @ivar database: what PostgreSQL did, or L{None} on SQLite.
    """

    name: str
    processes: int
    measured: Measurement
    database: DatabaseUse | None

    def bound(self, cores: int) -> float | None:
        return shared_core_bound(self.measured, self.database, cores, self.processes)

    def held_by(self, cores: int) -> str | None:
        """
        @return: L{CORES} or L{SERVERS}, whichever sets its bound.
        """
        found = bounds(self.measured, self.database, cores, self.processes)
        return None if found is None else min(found, key=found.get)


def ratio_json(better: Configuration, base: Configuration, cores: int) -> dict:
    """
    @return: the measured ratio of C{better}'s rate to C{base}'s, and the
        most this machine allows (the ratio of their bounds).
    """
    return {
        "measured": rounded(
            ratio(better.measured.per_second, base.measured.per_second), 3
        ),
        "reachable_here": rounded(ratio(better.bound(cores), base.bound(cores)), 3),
        "held_by": [better.held_by(cores), base.held_by(cores)],
    }


def configuration_json(configuration: Configuration, cores: int) -> dict:
    measured = configuration.measured
    return {
        "processes": configuration.processes,
        "rotations_per_second": rounded(measured.per_second),
        "rotations": measured.count,
        "errors": measured.errors,
        "latency_p99_ms": rounded(milliseconds(measured.latency(0.99))),
        "server_cpu_ms_per_rotation": rounded(
            measured.cpu_ms_per_operation(measured.server_cpu), 3
        ),
        "generator_cpu_ms_per_rotation": rounded(
            measured.cpu_ms_per_operation(measured.generator_cpu), 3
        ),
        "shared_core_bound": rounded(configuration.bound(cores)),
        "other_load": rounded(other_load(measured, cores), 3),
        **database_json(measured, configuration.database),
    }


def configuration_rows(
    configuration: Configuration, cores: int, ceiling: float
) -> list[Row]:
    """
    @param ceiling: the rotation ceiling of the run (its message
        ceiling: a primed rotation is one exchange), in rotations/s.
    @return: the rows of one configuration, named by it.
    """
    figures = configuration_json(configuration, cores)
    measured = configuration.measured
    name = configuration.name
    rows = [
        (f"{name}: rotations", text(figures["rotations_per_second"]), "rotations/s",
         f"{measured.count} in {measured.seconds:.1f} s, {measured.errors} "
         f"errors; {text(ratio(measured.per_second, ceiling), 2)} of the "
         f"rotation ceiling"),
        (f"{name}: latency p99", text(figures["latency_p99_ms"]), "ms", ""),
        (f"{name}: server CPU per rotation",
         text(figures["server_cpu_ms_per_rotation"], 3), "ms",
         f"{configuration.processes} process(es) added up; generators "
         f"{text(figures['generator_cpu_ms_per_rotation'], 3)} ms"),
    ]
    if configuration.database is not None:
        rows.append(
            (f"{name}: database per rotation",
             text(figures["database_transactions_per_rotation"], 2),
             "transactions",
             f"{text(figures['database_statements_per_rotation'], 2)} statements, "
             f"{text(figures['database_cpu_ms_per_rotation'], 3)} ms of CPU"),
        )
    rows.append(
        (f"{name}: shared-core bound", text(figures["shared_core_bound"]),
         "rotations/s",
         f"min(cores / CPU per rotation, processes / server CPU); other load "
         f"{text(percent(figures['other_load']), 0)}%"),
    )
    return rows


def ratio_rows(
    name: str, better: Configuration, base: Configuration, cores: int, target: float
) -> list[Row]:
    """
    @return: the row of one of issue 18's ratios, with the most this
        machine allows.
    """
    figures = ratio_json(better, base, cores)
    measured, reachable = figures["measured"], figures["reachable_here"]
    verdict = met_or_missed(measured is not None and measured >= target)
    note = (
        f"target {target:g}: {verdict}; at these CPU costs this machine allows "
        f"at most {text(reachable, 2)} ({better.name} held by "
        f"{better.held_by(cores)}, {base.name} by {base.held_by(cores)})"
    )
    if reachable is not None and reachable < target:
        note += ": out of reach here by arithmetic"
    return [(name, text(measured, 2), "", note)]


def scaling_rows(
    configurations: list[Configuration], cores: int, ceiling: float
) -> list[Row]:
    """
    @param configurations: SQLite x 1, PostgreSQL x 1 and PostgreSQL x N,
        in that order.
    @return: each configuration's rows, then issue 18's two ratios.
    """
    sqlite, postgres, several = configurations
    rows = [
        row
        for configuration in configurations
        for row in configuration_rows(configuration, cores, ceiling)
    ]
    return (
        rows
        + ratio_rows(
            f"{several.name} / {postgres.name}", several, postgres, cores,
            SCALING_TARGET,
        )
        + ratio_rows(
            f"{postgres.name} / {sqlite.name}", postgres, sqlite, cores,
            POSTGRES_TARGET,
        )
    )


def scaling_json(configurations: list[Configuration], cores: int) -> dict:
    """
    @return: the scaling run's figures: each configuration's, and the two
        ratios with their targets and the most this machine allows.
    """
    sqlite, postgres, several = configurations
    return {
        "configurations": {
            configuration.name: configuration_json(configuration, cores)
            for configuration in configurations
        },
        "scaling_ratio": {
            **ratio_json(several, postgres, cores), "target": SCALING_TARGET,
        },
        "postgres_ratio": {
            **ratio_json(postgres, sqlite, cores), "target": POSTGRES_TARGET,
        },
    }


#: The alerts a failover must not raise (issue 18: "no false
#: clone_suspected, reconnect_failed or blacklisting").
FALSE_ALERTS = ("clone_suspected", "reconnect_failed", "blacklisted")


def failover_json(result: FailoverResult) -> dict:
    """
    @return: the failover scenario's figures.
    """
    after = result.after
    false_alerts = sum(result.alerts.get(kind, 0) for kind in FALSE_ALERTS)
    return {
        "scenario": "failover",
        "endpoints": result.endpoints,
        "connected": result.connected,
        "interval": result.interval,
        "seeding_seconds": rounded(result.seeding_seconds),
        "connect_seconds": rounded(result.connect_seconds),
        "on_killed_server": result.cut,
        "rotated_again": after.count,
        "all_again_seconds": rounded(result.all_again_seconds),
        "again_p50_s": rounded(after.latency(0.50)),
        "again_p99_s": rounded(after.latency(0.99)),
        "moved_again_p50_s": rounded(percentile(list(result.cut_again), 0.50)),
        "moved_again_max_s": rounded(max(result.cut_again, default=None)),
        "errors": after.errors,
        "error_reasons": after.error_reasons,
        "retries": result.retries,
        "keys_current": result.keys_current,
        "keys_previous": result.keys_previous,
        "keys_lost": result.keys_lost,
        "blacklisted": result.blacklisted,
        "alerts": result.alerts,
        "false_alerts": false_alerts,
        "survivor_cpu_s": rounded(after.server_cpu),
    }


def failover_rows(result: FailoverResult, cores: int) -> list[Row]:
    """
    @return: the failover scenario's table rows.
    """
    figures = failover_json(result)
    after = result.after
    return [
        ("endpoints connected", f"{result.connected}/{result.endpoints}", "",
         f"{SEEDING_NOTE}, in {result.seeding_seconds:.1f} s; half first on "
         f"each server, each rotated once, in {result.connect_seconds:.1f} s; "
         f"interval {result.interval:g} s"),
        ("on the killed server", str(result.cut), "endpoints",
         "its connections cut by SIGKILL, whatever they were doing"),
        ("all rotated again", text(figures["all_again_seconds"]), "s",
         f"from the kill until the last of {after.count}/{result.endpoints} "
         f"endpoints stored a rotation (the survivor's own endpoints wait "
         f"their interval)"),
        ("rotated again p50 / p99",
         f"{text(figures['again_p50_s'])} / {text(figures['again_p99_s'])}", "s",
         "every endpoint, from the kill"),
        ("moved endpoints again p50 / last",
         f"{text(figures['moved_again_p50_s'])} / "
         f"{text(figures['moved_again_max_s'])}", "s",
         "the killed server's endpoints, rotating on the other"),
        ("errors after the kill", str(after.errors), "", errors_note(after)),
        ("retries", str(sum(result.retries.values())), "",
         counts_note(result.retries)),
        ("keys lost", str(result.keys_lost), "",
         f"target 0: {met_or_missed(result.keys_lost == 0)}; "
         f"{result.keys_current} hold "
         f"the store's current key, {result.keys_previous} its previous "
         f"(still accepted) one"),
        ("false alerts", str(figures["false_alerts"]), "",
         f"{', '.join(FALSE_ALERTS)}; target 0: "
         f"{met_or_missed(figures['false_alerts'] == 0)}; all alerts: "
         f"{counts_note(result.alerts) or 'none'}"),
        ("blacklisted", str(result.blacklisted), "", "profiles in the store's blacklist"),
        ("survivor CPU", text(figures["survivor_cpu_s"], 2), "s",
         f"from the kill to the generators' reports; other load "
         f"{text(percent(other_load(after, cores)), 0)}%"),
    ]
