"""
The rotation and memory scenarios: a fleet of enrolled endpoints, each on
a TLS connection of its own, rolling its key forward on it.

The server runs as C{twistd -n suto} in its own process, on a data folder
whose store was seeded with the fleet's profiles before it started
(L{bench.fleet}); or several such processes share the port and one
PostgreSQL store (L{bench.server_group}, L{bench.database}): their CPU
and memory are added up, and each one's share is kept
(L{bench.holdings}).  The fleet is split between load generator processes,
one per core (L{bench.rotation_client}), which connect every endpoint
(each completes its first rotation on connecting) and say so; then the
server's resident memory is read, all generators are told to go together,
and they count the rotations completed over the measured phase.

  - rotation: every endpoint rotates again as soon as lockstep allows
    (or every C{interval} seconds); the figures are completed rotations
    per second, their latency from C{SUTO_C_ROTATE_} sent to
    C{SUTO_ROTATE_DONE_} received (the server sends it only once the new
    key is committed to disk), and the server's CPU per rotation;
  - memory: every endpoint idles after its first rotation; the figures
    are the server's resident memory before any connection and with all
    of them open, and the server's CPU while the fleet idles.
"""

from __future__ import annotations

import json
import math
import os
from array import array
from dataclasses import dataclass

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.threads import deferToThread

from bench import fleet
from bench.ceilings import LoadClientError
from bench.children import Child, python_argv, spawn
from bench.cpu import CpuMeter
from bench.database import POSTGRES, SQLITE, Database, DatabaseUse
from bench.descriptors import (
    check_server,
    connecting,
    generator_shares,
    raise_file_limit,
)
from bench.holdings import ServerShare, ShareMeter, summed
from bench.load_client import GO
from bench.measurement import Measurement, add_counts
from bench.memory import resident_bytes
from bench.metrics_page import scrape
from bench.server_group import (
    SHARED_PORT,
    ServerGroup,
    prepare_group,
    share_master_key,
)
from bench.suto_server_process import SERVER_ADDRESS, ServerSetup, free_port
from suto_server.core.timing import DEFAULT_OFFLINE_STEP, longest_wait

#: Seconds the server may take to start answering.
START_TIMEOUT = 30.0

#: Seconds the generators may take to connect the whole fleet, at least.
CONNECT_TIMEOUT = 300.0

#: Seconds each endpoint adds to that: connecting runs at a few hundred
#: handshakes a second on two cores, so 100 000 take minutes.
CONNECT_SECONDS_PER_ENDPOINT = 0.01

#: Seconds a generator may live beyond all its phases.
CLIENT_SLACK = 60.0

#: The wait between rotations in the memory scenario: longer than any
#: measurement, so every endpoint idles after its first rotation.
IDLE_INTERVAL = 3600.0

#: A fleet's server's auth timeout (the classic path is not used here).
AUTH_TIMEOUT = 5.0


@dataclass(frozen=True)
class FleetResult:
    """
    @ivar endpoints: the endpoints seeded.
    @ivar connected: how many connected and completed their first rotation.
    @ivar interval: seconds between an endpoint's rotations, before jitter.
    @ivar seeding_seconds: how long seeding the store took.
    @ivar connect_seconds: how long connecting the fleet took (the
        slowest generator).
    @ivar warmup_rotations: rotations completed while connecting.
    @ivar warmup_errors: how rotations and connections failed meanwhile.
    @ivar rss_before: the server's resident bytes once serving, before
        any endpoint connected (L{None} if unread).
    @ivar rss_after: the same with the fleet connected.
    @ivar generator_rss: the generators' resident bytes together, with the
        fleet connected (L{None} if unread).
    @ivar generators: how many generator processes drove the fleet.
    @ivar file_limit: the open files each process could have.
    @ivar measured: the measured phase: completed rotations and their
        latencies, the generators' CPU together, the servers' CPU together.
    @ivar processes: how many server processes served the fleet.
    @ivar store: C{sqlite} or C{postgres}.
    @ivar database: what PostgreSQL did over the measured phase, or
        L{None} on SQLite.
    @ivar commits: the server's group commits of rotations (transactions)
        over the measured phase, from its metrics; L{None} for several
        processes (each has its metrics page: PostgreSQL's transactions,
        in C{database}, count them all).
    @ivar shares: each server process's connections, memory and CPU
        (L{bench.holdings.ServerShare}), in the order of their setups.
    @ivar generator_sizes: each generator's resident bytes with the fleet
        connected (L{None} where unread).
    @ivar database_memory: the bytes PostgreSQL's processes held together
        with the fleet connected (a server of the run's own only).
    @ivar database_connections: the connections open to the fleet's
        database then.
    """

    endpoints: int
    connected: int
    interval: float
    seeding_seconds: float
    connect_seconds: float
    warmup_rotations: int
    warmup_errors: dict[str, int]
    rss_before: int | None
    rss_after: int | None
    generator_rss: int | None
    generators: int
    file_limit: int
    measured: Measurement
    processes: int = 1
    store: str = SQLITE
    database: DatabaseUse | None = None
    commits: int | None = None
    shares: tuple[ServerShare, ...] = ()
    generator_sizes: tuple[int | None, ...] = ()
    database_memory: int | None = None
    database_connections: int | None = None

    @property
    def rss_per_endpoint(self) -> float | None:
        """
        The server's resident bytes per connected endpoint.
        """
        if self.rss_before is None or self.rss_after is None or not self.connected:
            return None
        return (self.rss_after - self.rss_before) / self.connected


def offline_step(interval: float) -> int:
    """
    The server's offline time step for a run at C{interval}: its default
    (30 s) unless the agents' offline deadline (their longest wait) is
    shorter, which C{twistd suto} refuses.
    """
    return max(1, min(DEFAULT_OFFLINE_STEP, int(longest_wait(interval))))


def interval_options(interval: float) -> tuple[str, ...]:
    """
    The server's options for agents rotating every C{interval} seconds, as
    an operator sets them for such a fleet: the server closes a rotation
    connection silent for longer than the interval allows (interval x 1.1
    + grace), so at its default 60 s it would drop every endpoint of a
    slower fleet after 96 s.  Lockstep (C{interval} 0) keeps the defaults.
    """
    if not interval:
        return ()
    return (
        "--rotation-interval", str(interval),
        "--offline-step", str(offline_step(interval)),
    )


def connect_timeout(endpoints: int) -> float:
    """
    @return: the seconds generators may take to connect C{endpoints}.
    """
    return max(CONNECT_TIMEOUT, endpoints * CONNECT_SECONDS_PER_ENDPOINT)


def prepare_fleet(
    directory: str, endpoints: int, store: str | None = None, processes: int = 1,
    ports: str = SHARED_PORT,
) -> tuple[list[ServerSetup], str]:
    """
    Make the servers' data folders, their certificate, the seeded store
    and the fleet file the generators read.

    @param store: the PostgreSQL URI the servers share, or L{None} for the
        first data folder's SQLite file (one process only).
    @param processes: how many server processes serve the fleet
        (L{bench.server_group}).
    @param ports: how they listen, L{SHARED_PORT} or L{OWN_PORTS}; the
        fleet file names the first one's port.
    @return: the servers' setups and the fleet file's path.
    """
    setups = prepare_group(directory, processes, store, ports)
    first = setups[0]
    members = fleet.seed(first.data, endpoints, first.port, first.identity.pin, store)
    share_master_key(setups)
    path = os.path.join(directory, "fleet.jsonl")
    fleet.write(path, members)
    return setups, path


@inlineCallbacks
def seed_fleet(reactor, directory: str, endpoints: int, **group):
    """
    L{prepare_fleet} off the reactor, timed.

    @param group: C{store}, C{processes} and C{ports}, as
        L{prepare_fleet} takes them.
    @return: a L{Deferred} firing with the servers' setups, the fleet
        file's path and the seconds seeding took.
    """
    started = reactor.seconds()
    setups, fleet_file = yield deferToThread(
        prepare_fleet, directory, endpoints, **group
    )
    return setups, fleet_file, reactor.seconds() - started


def start_generators(
    reactor, kind: str, fleet_file: str, parts: list[int], output, options,
) -> list[tuple[Child, str]]:
    """
    Start one C{bench.<kind>_client} generator per share of the fleet.

    @param parts: how many endpoints each generator drives, in fleet
        order (L{shares}).
    @param output: the path of the file a generator writes, of its index.
    @param options: the rest of a generator's command line, of that path.
    @return: each generator with the file it writes.
    """
    generators = []
    first = 0
    for index, count in enumerate(parts):
        path = output(index)
        child = spawn(
            reactor,
            f"{kind} generator {index + 1}",
            python_argv(
                "-m", f"bench.{kind}_client",
                "--fleet", fleet_file,
                "--first", str(first),
                "--count", str(count),
                *options(path),
            ),
        )
        generators.append((child, path))
        first += count
    return generators


def _start_generators(
    reactor, directory: str, fleet_file: str, *, endpoints: int,
    interval: float, duration: float, max_rotations: int, file_limit: int,
) -> list[tuple[Child, str]]:
    """
    Start one generator per core (more if the file limit asks for it,
    L{generator_shares}), each with its share of the fleet.

    @return: each generator with the file it writes its latencies to.
    """
    parts = generator_shares(endpoints, os.cpu_count() or 1, file_limit)
    each_count = math.ceil(max_rotations / len(parts))
    lifetime = connect_timeout(endpoints) + duration + CLIENT_SLACK
    return start_generators(
        reactor,
        "rotation",
        fleet_file,
        parts,
        lambda index: os.path.join(directory, f"latencies-{index}"),
        lambda latencies: (
            "--interval", str(interval),
            "--duration", str(duration),
            "--max-count", str(each_count),
            "--latencies", latencies,
            "--lifetime", str(lifetime),
            "--connecting", str(connecting(len(parts))),
        ),
    )


def _json_lines(lines: list[str], keys: tuple[str, ...]) -> list[dict]:
    """
    @raise LoadClientError: a line is not a JSON object with C{keys}.
    """
    try:
        reports = [json.loads(line) for line in lines]
        for report in reports:
            for key in keys:
                report[key]
    except (ValueError, KeyError, TypeError) as error:
        raise LoadClientError(
            f"a generator's report is malformed: {error}"
        ) from None
    return reports


def report_lines(
    children: list[Child], index: int, keys: tuple[str, ...], servers=None
):
    """
    Every generator's report number C{index}, parsed.

    @param servers: the L{ServerGroup}, to fail at once should one of its
        processes exit meanwhile, or L{None} while they are meant to be
        down.
    @return: a L{Deferred} firing with the reports, as L{_json_lines}.
    """
    waiting = gatherResults([child.line(index) for child in children], consumeErrors=True)
    if servers is not None:
        waiting = servers.watch(waiting)
    return waiting.addCallback(_json_lines, keys)


@inlineCallbacks
def _commits(reactor, port: int):
    """
    @return: (through a L{Deferred}) the group commits of rotations the
        server has made so far: the count of its commit-duration
        histogram.
    """
    samples = yield scrape(reactor, port)
    return int(samples[("suto_store_commit_duration_seconds_count", "")])


def _latencies(path: str) -> array:
    values = array("d")
    with open(path, "rb") as handle:
        values.frombytes(handle.read())
    return values


@inlineCallbacks
def run_fleet(
    reactor,
    directory: str,
    *,
    endpoints: int,
    interval: float,
    duration: float,
    max_rotations: int,
    database: Database | None = None,
    processes: int = 1,
):
    """
    Seed C{endpoints} profiles, start the servers, connect the fleet, read
    the servers' memory, then count the rotations completed over
    C{duration} seconds or C{max_rotations} rotations, and stop
    everything.

    @param directory: an empty folder for the servers' data and the
        generators' files.
    @param interval: seconds between an endpoint's rotations (0: as fast
        as lockstep allows; L{IDLE_INTERVAL}: once, then idle).
    @param database: the PostgreSQL server to make the fleet's store on,
        or L{None} for SQLite.
    @param processes: server processes sharing the port (several only
        over PostgreSQL).
    @return: a L{Deferred} firing with the L{FleetResult}.
    @raise ChildFailed: (through the L{Deferred}) a server or a
        generator exited too early.
    @raise LoadClientError: (through the L{Deferred}) a generator
        reported something malformed.
    """
    file_limit = raise_file_limit()
    check_server(endpoints, file_limit, processes)
    store = None if database is None else database.new_store()
    setups, fleet_file, seeding = yield seed_fleet(
        reactor, directory, endpoints, store=store, processes=processes
    )
    metrics_port = free_port() if processes == 1 else None
    metrics = (
        ()
        if metrics_port is None
        else ("--metrics-listen", f"tcp:{metrics_port}:interface=127.0.0.1")
    )
    servers = ServerGroup.start(
        reactor, setups, AUTH_TIMEOUT, options=interval_options(interval) + metrics
    )
    generators: list[tuple[Child, str]] = []
    try:
        yield servers.wait_until_serving(START_TIMEOUT)
        sizes_before = [resident_bytes(pid) for pid in servers.pids]
        generators = _start_generators(
            reactor, directory, fleet_file, endpoints=endpoints,
            interval=interval, duration=duration, max_rotations=max_rotations,
            file_limit=file_limit,
        )
        children = [child for child, _ in generators]
        ready = yield report_lines(
            children,
            0,
            ("connected", "seconds", "warmup_rotations", "warmup_errors"),
            servers,
        )
        share_meter = ShareMeter(
            servers.pids, SERVER_ADDRESS, setups[0].port, sizes_before
        )
        generator_sizes = tuple(resident_bytes(child.pid) for child in children)
        database_memory = database_connections = None
        if store is not None:
            database_memory = database.memory()
            database_connections = database.connections(store)
        meter = CpuMeter(*servers.pids)
        used = None if store is None else database.use(store)
        commits_before = (
            None if metrics_port is None else (yield _commits(reactor, metrics_port))
        )
        for child in children:
            child.send_line(GO)
        reports = yield report_lines(
            children, 1, ("count", "seconds", "errors", "error_reasons", "cpu"),
            servers,
        )
        cpu = meter.read()
        shares = share_meter.read()
        if used is not None:
            used = database.use(store) - used
        commits = (
            None
            if metrics_port is None
            else (yield _commits(reactor, metrics_port)) - commits_before
        )
        # Each generator wrote its latencies before its report.
        latencies = array("d")
        for _, path in generators:
            latencies.extend(_latencies(path))
    finally:
        yield gatherResults([child.stop(reactor) for child, _ in generators])
        yield servers.stop()
    return FleetResult(
        endpoints=endpoints,
        connected=sum(report["connected"] for report in ready),
        interval=interval,
        seeding_seconds=seeding,
        connect_seconds=max(report["seconds"] for report in ready),
        warmup_rotations=sum(report["warmup_rotations"] for report in ready),
        warmup_errors=add_counts(report["warmup_errors"] for report in ready),
        rss_before=summed(share.rss_before for share in shares),
        rss_after=summed(share.rss_after for share in shares),
        generator_rss=summed(generator_sizes),
        generators=len(generators),
        file_limit=file_limit,
        measured=Measurement.of_reports(reports, cpu, tuple(latencies)),
        processes=processes,
        store=SQLITE if store is None else POSTGRES,
        database=used,
        commits=commits,
        shares=shares,
        generator_sizes=generator_sizes,
        database_memory=database_memory,
        database_connections=database_connections,
    )
