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
    store_option,
)
from bench.descriptors import FleetTooLarge
from bench.device import MAX_DEVICES
from bench.enrollment import run_enrollment
from bench.failover import run_failover
from bench.fleet import MAX_ENDPOINTS
from bench.flood import flood_json, flood_rows, run_flood
from bench.idle_flood import MAX_CONNECTIONS, MAX_SOURCES
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

#: The largest --duration and --ceiling-duration accepted, in seconds.
MAX_DURATION = 600.0

#: The most server processes a run starts.
MAX_PROCESSES = 16

#: The most connections the ceilings of a rotation run keep in flight:
#: the message ceiling measures the cost of an exchange, which does not
#: grow with the count (11 200/s at 16, 11 900/s at 1000), while a
#: thousand handshakes at once overflow the echo server's listen backlog
#: and time out.
CEILING_CONNECTIONS = 64


def _bounded(kind, low, high):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """
    @return: the command line's parser.
    """
    top = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.split("\n\n")[0]
    )
    scenarios = top.add_subparsers(dest="scenario", required=True)
    for name, text in (
        ("ceilings", "only the machine's ceilings"),
        ("classic", "ceilings, then classic salted-challenge authentications"),
        ("enrollment", "ceilings, then enrollments: window, conversation, first key"),
        ("rotation", "ceilings, then key rotations over a connected fleet"),
        ("storm", "ceilings, then a connected fleet reconnecting after a "
         "server restart"),
        ("scaling", "ceilings, then key rotations served by one process over "
         "SQLite, one over PostgreSQL and several over PostgreSQL"),
    ):
        scenario = scenarios.add_parser(name, help=text, description=text)
        if name in ("rotation", "storm", "scaling"):
            _add_endpoints(scenario)
        else:
            scenario.add_argument(
                "--devices", type=_bounded(int, 1, MAX_DEVICES), default=16,
                help="simulated devices, and TLS connections in flight "
                "(default 16)",
            )
        scenario.add_argument(
            "--ceiling-duration", type=_bounded(float, 0.1, MAX_DURATION), default=3.0,
            help="seconds each ceiling is measured for (default 3)",
        )
        scenario.add_argument(
            "--max-count", type=_bounded(int, 1, 10**7), default=10**6,
            help="the most operations of each ceiling (default 1000000)",
        )
    classic = scenarios.choices["classic"]
    _add_phase(
        classic, "authentications", "--max-auth", 10**7,
        "--auth-timeout", 5.0, "seconds a device has to connect back and answer",
    )
    classic.add_argument(
        "--server-profile", metavar="FILE", default=None,
        help="write a cProfile of the server's reactor thread to FILE",
    )
    _add_phase(
        scenarios.choices["enrollment"], "enrollments", "--max-enroll", 10**6,
        "--enroll-timeout", 30.0, "seconds an enrollment may take",
    )
    rotation = scenarios.choices["rotation"]
    rotation.add_argument(
        "--duration", type=_bounded(float, 0.1, MAX_DURATION), default=10.0,
        help="seconds of measured rotations (default 10)",
    )
    rotation.add_argument(
        "--interval", type=_bounded(float, 0.0, IDLE_INTERVAL), default=0.0,
        help="seconds between an endpoint's rotations, before jitter "
        "(default 0: as fast as lockstep allows)",
    )
    rotation.add_argument(
        "--max-rotations", type=_bounded(int, 1, 10**8), default=10**7,
        help="the most measured rotations (default 10000000)",
    )
    storm = scenarios.choices["storm"]
    storm.add_argument(
        "--interval", type=_bounded(float, 1.0, IDLE_INTERVAL), default=10.0,
        help="the rotation interval of the server and the agents, in "
        "seconds (default 10, so the offline marks come in seconds)",
    )
    storm.add_argument(
        "--grace", type=_bounded(float, 1.0, MAX_DURATION), default=5.0,
        help="the server's rotation grace, in seconds (default 5)",
    )
    storm.add_argument(
        "--downtime", type=_bounded(float, 0.0, MAX_DURATION), default=0.0,
        help="the least seconds the server stays down (default 0: until "
        "both sides have marked the fleet offline, interval x 1.1 + grace)",
    )
    storm.add_argument(
        "--storm-timeout", type=_bounded(float, 1.0, MAX_DURATION), default=180.0,
        help="the most seconds to wait, from the restart, for every "
        "endpoint to be back (default 180)",
    )
    for scenario in (rotation, storm):
        _add_store(scenario)
    _add_scaling(scenarios.choices["scaling"])
    _add_failover(scenarios)
    _add_flood(scenarios)
    _add_console(scenarios)
    text = "server memory and idle load with a connected fleet"
    memory = scenarios.add_parser("memory", help=text, description=text)
    _add_endpoints(memory)
    memory.add_argument(
        "--idle", type=_bounded(float, 0.1, MAX_DURATION), default=5.0,
        help="seconds the idle fleet's server load is measured (default 5)",
    )
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


def _add_phase(
    scenario: argparse.ArgumentParser,
    noun: str,
    count: str,
    most: int,
    timeout: str,
    timeout_default: float,
    timeout_help: str,
) -> None:
    """
    The options bounding a measured phase of C{noun}: its duration, its
    count (option C{count}, at most C{most}) and each operation's time
    (option C{timeout}).
    """
    scenario.add_argument(
        "--duration", type=_bounded(float, 0.1, MAX_DURATION), default=10.0,
        help=f"seconds of measured {noun} (default 10)",
    )
    scenario.add_argument(
        count, type=_bounded(int, 1, most), default=100000,
        help=f"the most measured {noun} (default 100000)",
    )
    scenario.add_argument(
        timeout, type=_bounded(float, 0.5, 60.0), default=timeout_default,
        help=f"{timeout_help} (default {timeout_default:g})",
    )


def _add_store(scenario: argparse.ArgumentParser) -> None:
    """
    The options choosing the store and how many server processes share it.
    """
    scenario.add_argument(
        "--store", type=_checked(store_option), default=SQLITE,
        help=f"{SQLITE} (the default), {POSTGRES} (a PostgreSQL server of the "
        "run's own, with pg_stat_statements) or the postgresql:// URI of an "
        "empty database",
    )
    _add_processes(scenario, 1)


def _add_processes(scenario: argparse.ArgumentParser, default: int) -> None:
    scenario.add_argument(
        "--processes", type=_bounded(int, 1, MAX_PROCESSES), default=default,
        help="twistd suto processes sharing the port with reusePort=yes, one "
        f"store and one master key (default {default}; several need "
        "PostgreSQL)",
    )


def _add_scaling(scaling: argparse.ArgumentParser) -> None:
    scaling.add_argument(
        "--duration", type=_bounded(float, 0.1, MAX_DURATION), default=10.0,
        help="seconds of measured rotations of each configuration (default 10)",
    )
    scaling.add_argument(
        "--max-rotations", type=_bounded(int, 1, 10**8), default=10**7,
        help="the most measured rotations of each (default 10000000)",
    )
    _add_processes(scaling, 2)


def _add_failover(scenarios) -> None:
    text = (
        "a fleet rotating over two server processes on one PostgreSQL "
        "store, one killed with SIGKILL"
    )
    failover = scenarios.add_parser("failover", help=text, description=text)
    _add_endpoints(failover)
    failover.add_argument(
        "--interval", type=_bounded(float, 1.0, IDLE_INTERVAL), default=10.0,
        help="the rotation interval of the servers and the agents, in "
        "seconds (default 10)",
    )
    failover.add_argument(
        "--grace", type=_bounded(float, 1.0, MAX_DURATION), default=5.0,
        help="the servers' rotation grace, in seconds (default 5)",
    )
    failover.add_argument(
        "--kill-after", type=_bounded(float, 0.0, MAX_DURATION), default=5.0,
        help="seconds of rotations between the fleet being connected and "
        "the kill (default 5)",
    )
    failover.add_argument(
        "--failover-timeout", type=_bounded(float, 1.0, MAX_DURATION),
        default=120.0,
        help="the most seconds to wait, from the kill, for every endpoint "
        "to rotate again (default 120)",
    )


def _checked(check):
    def parse(text: str):
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _add_flood(scenarios) -> None:
    text = (
        "classic logins while idle connections from many addresses hold "
        "the server's starting cap"
    )
    flood = scenarios.add_parser("flood", help=text, description=text)
    flood.add_argument(
        "--sources", type=_bounded(int, 1, MAX_SOURCES), default=40,
        help="loopback addresses the flood comes from (default 40)",
    )
    flood.add_argument(
        "--connections", type=_bounded(int, 1, MAX_CONNECTIONS), default=1000,
        help="idle connections the flood holds (default 1000)",
    )
    flood.add_argument(
        "--devices", type=_bounded(int, 1, MAX_DEVICES), default=6,
        help="simulated devices logging in at once (default 6)",
    )
    flood.add_argument(
        "--logins", type=_bounded(int, 1, 10**5), default=120,
        help="the most logins measured (default 120)",
    )
    flood.add_argument(
        "--duration", type=_bounded(float, 0.1, MAX_DURATION), default=60.0,
        help="the most seconds of logins (default 60)",
    )
    flood.add_argument(
        "--auth-timeout", type=_bounded(float, 0.5, 60.0), default=5.0,
        help="seconds a device has to connect back and answer (default 5)",
    )


def _add_console(scenarios) -> None:
    text = "the time each web console page takes with a large fleet"
    console = scenarios.add_parser("console", help=text, description=text)
    console.add_argument(
        "--endpoints", type=_bounded(int, 1, 100_000), default=10_000,
        help="enrolled profiles in the store (default 10000)",
    )
    console.add_argument(
        "--records", type=_bounded(int, 0, 1_000_000), default=20_000,
        help="audit records in the store (default 20000)",
    )
    console.add_argument(
        "--rounds", type=_bounded(int, 1, 100), default=5,
        help="requests of each page (default 5)",
    )


def _add_endpoints(scenario: argparse.ArgumentParser) -> None:
    scenario.add_argument(
        "--endpoints", type=_bounded(int, 1, MAX_ENDPOINTS), default=1000,
        help="enrolled endpoints, each on a TLS connection (default 1000)",
    )


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


def _fleet_title(options, ceilings) -> str:
    return (
        f"{options.scenario} ({ceilings.threads} cores, "
        f"{options.endpoints} endpoints)"
    )


def _database(reactor, options):
    """
    @return: the PostgreSQL server C{options.store} names, closed when
        the reactor shuts down, or L{None} for SQLite.
    @raise DatabaseUnavailable: it cannot be had.
    """
    database = open_database(options.store)
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
    database = _database(reactor, options)
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
            + database_rows(result.measured, result.database, ceilings.threads)
        ),
        figures=lambda result, ceilings: {
            **report.rotation_json(result, ceilings),
            **_store_json(result),
        },
    )


def _store_json(result) -> dict:
    return {
        "store": result.store,
        "processes": result.processes,
        **database_json(result.measured, result.database),
    }


async def _run_storm(reactor, directory: str, options):
    database = _database(reactor, options)
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
    options.store = POSTGRES
    database = _database(reactor, options)
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
    options.store = POSTGRES
    database = _database(reactor, options)
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
