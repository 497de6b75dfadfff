"""
Run a SUTO benchmark scenario and print a table, then one JSON line.

    python bench/run.py ceilings [--devices N]
    python bench/run.py classic [--devices N] [--duration S] [--max-auth N]
    python bench/run.py enrollment [--devices N] [--duration S] [--max-enroll N]
    python bench/run.py rotation [--endpoints N] [--duration S] [--interval S]
                                 [--store STORE] [--processes N]
    python bench/run.py memory [--endpoints N] [--idle S]
    python bench/run.py storm [--endpoints N] [--interval S] [--grace S]
                              [--downtime S] [--storm-timeout S]
                              [--store STORE] [--processes N]
    python bench/run.py scaling [--endpoints N] [--duration S] [--processes N]
    python bench/run.py failover [--endpoints N] [--interval S] [--grace S]
                                 [--kill-after S] [--failover-timeout S]
    python bench/run.py flood [--sources N] [--connections N] [--devices N]
                              [--logins N] [--duration S] [--auth-timeout S]
    python bench/run.py console [--endpoints N] [--records N] [--rounds N]

Every scenario but memory, flood and console measures the machine's ceilings first,
in the same run;
see bench/README.md for what each figure means.  Everything runs on
127.0.0.1 (and, for simulated devices, other 127.x.y.z addresses), and
every process this starts is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.defer import CancelledError, Deferred, FirstError
from twisted.internet.task import react
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from bench import report
from bench.ceilings import LoadClientError, measure_ceilings
from bench.children import ChildFailed
from bench.classic import run_classic
from bench.console_render import console_json, console_rows, run_console_render
from bench.database import (
    POSTGRES,
    SQLITE,
    DatabaseUnavailable,
    open_database,
)
from bench.descriptors import FleetTooLarge
from bench.enrollment import run_enrollment
from bench.failover import PROCESSES as FAILOVER_PROCESSES
from bench.failover import run_failover
from bench.flood import flood_json, flood_rows, run_flood
from bench.host_report import host_json, host_rows
from bench.options import add_scenarios
from bench.rotation import IDLE_INTERVAL, run_fleet
from bench.scale_report import (
    database_json,
    database_rows,
    failover_json,
    failover_rows,
    scaling_json,
    scaling_rows,
)
from bench.scaling import run_scaling
from bench.storm import run_storm

#: The most connections the ceilings of a rotation run keep in flight:
#: the message ceiling measures the cost of an exchange, which does not
#: grow with the count (11 200/s at 16, 11 900/s at 1000), while a
#: thousand handshakes at once overflow the echo server's listen backlog
#: and time out.
CEILING_CONNECTIONS = 64


def parser() -> argparse.ArgumentParser:
    """
    @return: the command line's parser.
    """
    top = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.split("\n\n")[0]
    )
    add_scenarios(top)
    return top


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """
    @return: the options of C{argv}.
    @raise SystemExit: they are wrong, after saying why (several server
        processes over SQLite among them).
    """
    command = parser()
    options = command.parse_args(argv)
    if getattr(options, "store", None) == SQLITE and options.processes > 1:
        command.error(
            "several --processes need one shared store: give --store postgres "
            "or a postgresql:// URI"
        )
    return options


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


async def _run(reactor, options) -> None:
    # A short path: the server's admin socket lives under it, and a UNIX
    # socket path must fit in 108 bytes.
    directory = tempfile.mkdtemp(prefix="suto-bench-", dir="/tmp")
    # Removed however the run ends, Ctrl-C included: by then the children
    # that used it have been stopped (they stop before shutdown).
    reactor.addSystemEventTrigger(
        "after", "shutdown", shutil.rmtree, directory, True
    )
    try:
        title, rows, figures = await _SCENARIOS[options.scenario](
            reactor, directory, options
        )
    except Exception as error:
        cause = _first_cause(error)
        if isinstance(cause, CancelledError):
            raise SystemExit("bench: interrupted") from None
        if isinstance(
            cause, (ChildFailed, LoadClientError, FleetTooLarge, DatabaseUnavailable)
        ):
            raise SystemExit(f"bench: {cause}") from None
        raise
    print(report.render_table(f"SUTO benchmark: {title}", rows))
    print(report.json_line(figures), flush=True)


async def _ceilings(reactor, directory: str, options, connections: int):
    _progress(f"measuring the ceilings ({options.ceiling_duration:g} s each)")
    return await measure_ceilings(
        reactor,
        directory,
        connections=connections,
        duration=options.ceiling_duration,
        max_count=options.max_count,
    )


def _devices_title(options, ceilings) -> str:
    return (
        f"{options.scenario} ({ceilings.threads} cores, "
        f"{options.devices} devices/connections)"
    )


async def _run_ceilings(reactor, directory: str, options):
    ceilings = await _ceilings(reactor, directory, options, options.devices)
    figures = {"scenario": "ceilings", **report.ceilings_json(ceilings)}
    return _devices_title(options, ceilings), report.ceiling_rows(ceilings), figures


async def _after_ceilings(
    reactor, directory: str, options, *, connections: int, title, progress: str,
    run, rows, figures,
):
    """
    The shape of every scenario measured against the machine's ceilings:
    measure them with C{connections} in flight, say C{progress}, call
    C{run} and await it, and put the rows C{rows} makes of its result
    after the ceilings' rows.

    @param title: makes the title of the options and the ceilings.
    @param rows: makes the scenario's rows of its result and the ceilings.
    @param figures: makes the JSON figures of the same.
    """
    ceilings = await _ceilings(reactor, directory, options, connections)
    _progress(progress)
    result = await run()
    return (
        title(options, ceilings),
        report.ceiling_rows(ceilings) + rows(result, ceilings),
        figures(result, ceilings),
    )


async def _run_classic(reactor, directory: str, options):
    return await _after_ceilings(
        reactor, directory, options,
        connections=options.devices,
        title=_devices_title,
        progress=f"classic: {options.devices} devices, {options.duration:g} s",
        run=lambda: run_classic(
            reactor,
            directory,
            devices=options.devices,
            duration=options.duration,
            max_auth=options.max_auth,
            auth_timeout=options.auth_timeout,
            profile=(
                None
                if options.server_profile is None
                else os.path.abspath(options.server_profile)
            ),
        ),
        rows=report.classic_rows,
        figures=report.classic_json,
    )


async def _run_enrollment(reactor, directory: str, options):
    return await _after_ceilings(
        reactor, directory, options,
        connections=options.devices,
        title=_devices_title,
        progress=f"enrollment: {options.devices} in flight, {options.duration:g} s",
        run=lambda: run_enrollment(
            reactor,
            directory,
            devices=options.devices,
            duration=options.duration,
            max_enroll=options.max_enroll,
            timeout=options.enroll_timeout,
        ),
        rows=report.enrollment_rows,
        figures=report.enrollment_json,
    )


def _database(reactor, store: str, processes: int):
    """
    @param store: a checked C{--store}.
    @param processes: the server processes a fleet on it will have.
    @return: the PostgreSQL server C{store} names, closed when the
        reactor shuts down, or L{None} for SQLite.
    @raise DatabaseUnavailable: it cannot be had.
    """
    database = open_database(store, processes)
    if database is not None:
        reactor.addSystemEventTrigger("after", "shutdown", database.close)
    return database


def _store_title(options, ceilings) -> str:
    store = POSTGRES if options.store != SQLITE else SQLITE
    return (
        f"{options.scenario} ({ceilings.threads} cores, "
        f"{options.endpoints} endpoints, {store} x {options.processes})"
    )


async def _run_rotation(reactor, directory: str, options):
    database = _database(reactor, options.store, options.processes)
    return await _after_ceilings(
        reactor, directory, options,
        connections=min(options.endpoints, CEILING_CONNECTIONS),
        title=_store_title,
        progress=(
            f"rotation: {options.endpoints} endpoints, interval "
            f"{options.interval:g} s, {options.duration:g} s, "
            f"{options.store} x {options.processes}"
        ),
        run=lambda: run_fleet(
            reactor,
            os.path.join(directory, "fleet"),
            endpoints=options.endpoints,
            interval=options.interval,
            duration=options.duration,
            max_rotations=options.max_rotations,
            database=database,
            processes=options.processes,
        ),
        rows=lambda result, ceilings: (
            report.rotation_rows(result, ceilings)
            + host_rows(result)
            + database_rows(result.measured, result.database, ceilings.threads)
        ),
        figures=lambda result, ceilings: {
            **report.rotation_json(result, ceilings),
            **_store_json(result),
            **host_json(result),
        },
    )


def _store_json(result) -> dict:
    return {
        "store": result.store,
        "processes": result.processes,
        **database_json(result.measured, result.database),
    }


async def _run_storm(reactor, directory: str, options):
    database = _database(reactor, options.store, options.processes)
    return await _after_ceilings(
        reactor, directory, options,
        connections=min(options.endpoints, CEILING_CONNECTIONS),
        title=_store_title,
        progress=(
            f"storm: {options.endpoints} endpoints, interval {options.interval:g} s, "
            f"grace {options.grace:g} s, {options.store} x {options.processes}"
        ),
        run=lambda: run_storm(
            reactor,
            os.path.join(directory, "storm"),
            endpoints=options.endpoints,
            interval=options.interval,
            grace=options.grace,
            storm_timeout=options.storm_timeout,
            downtime=options.downtime,
            database=database,
            processes=options.processes,
        ),
        rows=lambda result, ceilings: (
            report.storm_rows(result, ceilings)
            + database_rows(
                result.storm, result.database, ceilings.threads, "reconnection"
            )
        ),
        figures=lambda result, ceilings: {
            **report.storm_json(result, ceilings),
            "processes": result.processes,
            **database_json(result.storm, result.database, "reconnection"),
        },
    )


async def _run_scaling(reactor, directory: str, options):
    database = _database(reactor, POSTGRES, options.processes)
    return await _after_ceilings(
        reactor, directory, options,
        connections=min(options.endpoints, CEILING_CONNECTIONS),
        title=lambda options, ceilings: (
            f"scaling ({ceilings.threads} cores, {options.endpoints} endpoints, "
            f"sqlite x 1, postgres x 1, postgres x {options.processes})"
        ),
        progress="scaling: three fleets, one after the other",
        run=lambda: Deferred.fromCoroutine(
            run_scaling(
                reactor,
                directory,
                database,
                endpoints=options.endpoints,
                duration=options.duration,
                max_rotations=options.max_rotations,
                processes=options.processes,
                progress=_progress,
            )
        ),
        rows=lambda configurations, ceilings: scaling_rows(
            configurations, ceilings.threads,
            ceilings.messages.per_second / report.EXCHANGES_PER_ROTATION,
        ),
        figures=lambda configurations, ceilings: {
            "scenario": "scaling",
            **report.ceilings_json(ceilings),
            **scaling_json(configurations, ceilings.threads),
        },
    )


async def _run_memory(reactor, directory: str, options):
    cores = os.cpu_count() or 1
    _progress(f"memory: {options.endpoints} endpoints, idle {options.idle:g} s")
    result = await run_fleet(
        reactor,
        os.path.join(directory, "fleet"),
        endpoints=options.endpoints,
        interval=IDLE_INTERVAL,
        duration=options.idle,
        max_rotations=options.endpoints,
    )
    title = f"memory ({cores} cores, {options.endpoints} endpoints)"
    return (
        title,
        report.memory_rows(result, cores),
        report.memory_scenario_json(result, cores),
    )


async def _run_flood(reactor, directory: str, options):
    _progress(
        f"flood: {options.connections} connections from {options.sources} "
        f"sources, {options.devices} devices"
    )
    result = await run_flood(
        reactor,
        directory,
        sources=options.sources,
        connections=options.connections,
        devices=options.devices,
        logins=options.logins,
        duration=options.duration,
        auth_timeout=options.auth_timeout,
        progress=_progress,
    )
    title = (
        f"flood ({options.connections} idle connections from "
        f"{options.sources} sources, {options.devices} devices)"
    )
    return title, flood_rows(result), flood_json(result)


async def _run_console(reactor, directory: str, options):
    rows = await run_console_render(
        reactor,
        directory,
        endpoints=options.endpoints,
        records=options.records,
        rounds=options.rounds,
        progress=_progress,
    )
    title = (
        f"console ({options.endpoints} endpoints, {options.records} audit "
        f"records, {options.rounds} rounds)"
    )
    return title, console_rows(rows), console_json(rows)


async def _run_failover(reactor, directory: str, options):
    database = _database(reactor, POSTGRES, FAILOVER_PROCESSES)
    _progress(
        f"failover: {options.endpoints} endpoints over two processes, "
        f"interval {options.interval:g} s, kill after {options.kill_after:g} s"
    )
    result = await run_failover(
        reactor,
        os.path.join(directory, "failover"),
        database,
        endpoints=options.endpoints,
        interval=options.interval,
        grace=options.grace,
        kill_after=options.kill_after,
        failover_timeout=options.failover_timeout,
    )
    cores = os.cpu_count() or 1
    title = (
        f"failover ({cores} cores, {options.endpoints} endpoints, two "
        f"processes over PostgreSQL, one killed)"
    )
    return title, failover_rows(result, cores), failover_json(result)


#: What each scenario runs: an async function of the reactor, the run's
#: folder and the options, returning the title, the rows and the figures.
_SCENARIOS = {
    "ceilings": _run_ceilings,
    "classic": _run_classic,
    "enrollment": _run_enrollment,
    "rotation": _run_rotation,
    "memory": _run_memory,
    "storm": _run_storm,
    "scaling": _run_scaling,
    "failover": _run_failover,
    "flood": _run_flood,
    "console": _run_console,
}


def _first_cause(error: Exception) -> BaseException:
    """
    @return: C{error}, or what it wraps if it is the first failure of a
        L{gatherResults}.
    """
    while isinstance(error, FirstError):
        error = error.subFailure.value
    return error


def main(argv: list[str] | None = None) -> None:
    """
    Parse C{argv} and run the scenario; warnings and errors from Twisted
    go to standard error.
    """
    options = parse(argv)
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(LogLevel.warn)],
            )
        ],
        redirectStandardIO=False,
    )
    react(_main, (options,))


def _main(reactor, options) -> Deferred:
    """
    Run the scenario; if the reactor is asked to stop first (Ctrl-C,
    SIGTERM), cancel it and let it unwind, so every process it started is
    stopped and every socket closed before the reactor stops.
    """
    task = Deferred.fromCoroutine(_run(reactor, options))

    def interrupt():
        if task.called:
            return None
        unwound: Deferred = Deferred()
        task.addBoth(lambda result: unwound.callback(None) or result)
        task.cancel()
        return unwound

    reactor.addSystemEventTrigger("before", "shutdown", interrupt)
    return task


if __name__ == "__main__":
    main()
