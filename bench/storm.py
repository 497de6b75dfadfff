"""
The storm scenario: a connected fleet loses its server, both sides mark
every profile offline, the server comes back on the same data folder, and
every endpoint reconnects with its offline key at once.

  1. The store is seeded (L{bench.fleet}) and the server started with a
     short rotation interval and grace (C{--rotation-interval},
     C{--rotation-grace}), so the offline marks come within seconds.
  2. The generators (L{bench.storm_client}, one per core) start every
     endpoint as the agent does, a L{ClientService} around the agent's
     L{RotationFactory}, and say when each has rotated once.
  3. The server is stopped (SIGTERM).  The endpoints lose their
     connections and retry with the agent's back-off; each marks itself
     offline once the junk due at its last rotation plus the interval
     and its jitter could not be delivered.  The server is restarted once
     the generators say every endpoint is offline and the server's own
     deadline (interval x 1.1 + grace since the last rotation) has passed,
     so its first sweep marks them all offline too (its status says how
     many it holds offline once it answers), or later if asked
     (C{downtime}).
  4. From the restart (the new process being spawned) the generators count
     the endpoints that reconnected (C{SUTO_C_RECONNECT_} accepted) and
     rotated, until all have or the storm timeout passes.
  5. Everything is stopped, then the store is read: blacklisted profiles,
     profiles still offline, and for every endpoint whether the key it
     holds is one the server holds for it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from bench.children import Child
from bench.cpu import CpuMeter
from bench.database import Database, DatabaseUse
from bench.descriptors import check_server, connecting, generator_shares
from bench.measurement import Measurement, add_counts
from bench.rotation import (
    AUTH_TIMEOUT,
    CLIENT_SLACK,
    START_TIMEOUT,
    connect_timeout,
    interval_options,
    raise_file_limit,
    report_lines,
    seed_fleet,
    start_generators,
)
from bench.server_group import ServerGroup
from bench.storm_client import DOWN, GO
from bench.suto_server_process import ServerSetup
from suto_server.core.timing import (
    longest_wait,
    silence_allowed,
)
from suto_server.datafolder import DATABASE_FILE
from suto_server.store.open import open_store

#: Seconds the generators may take for every endpoint to mark itself
#: offline after the server stopped, beyond the interval and its jitter:
#: an endpoint notices only when its back-off lets it try again.
OFFLINE_SLACK = 90.0

#: Seconds past the server's offline deadline before it is restarted.
DEADLINE_MARGIN = 1.0


@dataclass(frozen=True)
class StormResult:
    """
    @ivar endpoints: the endpoints seeded.
    @ivar connected: how many rotated once before the server stopped.
    @ivar interval: the rotation interval, server and agents, in seconds.
    @ivar grace: the server's rotation grace, in seconds.
    @ivar seeding_seconds: how long seeding the store took.
    @ivar connect_seconds: how long the fleet took to connect and rotate.
    @ivar down_seconds: from the server's stop to its restart.
    @ivar client_offline: endpoints that marked themselves offline.
    @ivar server_offline: profiles the restarted server had offline when
        its admin API first answered (L{None} if it did not say).
    @ivar start_seconds: from the restart to the admin API answering.
    @ivar storm: the storm phase, from the restart to the generators'
        reports (C{seconds}): C{count} endpoints reconnected and rotated,
        their times from the restart as C{latencies}, the rotations that
        failed meanwhile, the CPU of each side.
    @ivar all_back_seconds: from the restart until the last endpoint was
        back, or L{None} if some never were.
    @ivar conversations: seconds each reconnection's connection took,
        from its start to the rotation's commit.
    @ivar retries: connection attempts retried by the back-off, per phase.
    @ivar down_errors: rotations cut off when the server stopped.
    @ivar blacklisted: profiles blacklisted at the end.
    @ivar still_offline: profiles the server still had offline at the end.
    @ivar keys_current: endpoints holding the server's current key.
    @ivar keys_previous: endpoints holding the key the server still
        accepts as previous (a commit whose ROTATE_DONE was cut off).
    @ivar keys_lost: endpoints holding a key the server does not accept.
    @ivar processes: how many server processes served the fleet.
    @ivar database: what PostgreSQL did over the storm, or L{None} on
        SQLite.
    """

    endpoints: int
    connected: int
    interval: float
    grace: float
    seeding_seconds: float
    connect_seconds: float
    down_seconds: float
    client_offline: int
    server_offline: int | None
    start_seconds: float
    storm: Measurement
    all_back_seconds: float | None
    conversations: tuple[float, ...]
    retries: dict[str, int]
    down_errors: dict[str, int]
    blacklisted: int
    still_offline: int
    keys_current: int
    keys_previous: int
    keys_lost: int
    processes: int = 1
    database: DatabaseUse | None = None


def start_outage_generators(
    reactor, kind: str, directory: str, fleet_file: str, *, endpoints: int,
    interval: float, phases_seconds: float, file_limit: int, options=(),
) -> list[tuple[Child, str]]:
    """
    Start the generators of a scenario whose server goes away
    (C{bench.<kind>_client}, conversing as L{bench.storm_client.converse}
    says): one per core (more if the file limit asks for it), each with
    its share of the fleet and the options every such generator takes.

    @param phases_seconds: the longest its phases after connecting may
        take, which its lifetime adds to the connecting's.
    @param options: the rest of its command line, its scenario's own.
    @return: each generator with the file it writes its endpoints to.
    """
    connecting_for = connect_timeout(endpoints)
    lifetime = connecting_for + phases_seconds + CLIENT_SLACK
    parts = generator_shares(endpoints, os.cpu_count() or 1, file_limit)
    return start_generators(
        reactor,
        kind,
        fleet_file,
        parts,
        lambda index: os.path.join(directory, f"{kind}-{index}.jsonl"),
        lambda results: (
            "--interval", str(interval),
            "--connect-timeout", str(connecting_for),
            "--results", results,
            "--lifetime", str(lifetime),
            "--connecting", str(connecting(len(parts))),
            *options,
        ),
    )


def measured_phase(reports, latencies, seconds: float, cpu) -> Measurement:
    """
    @param reports: the generators' last reports, each with its phase's
        C{errors}, C{error_reasons} and C{cpu}
        (L{bench.storm_client.phase_errors}).
    @param latencies: each endpoint's time, in order, from the phase's
        start until it was served again.
    @param seconds: how long the phase lasted.
    @param cpu: the servers' and the machine's CPU over it (L{CpuMeter}).
    @return: the phase's L{Measurement}.
    """
    return Measurement(
        count=len(latencies),
        seconds=seconds,
        errors=sum(report["errors"] for report in reports),
        generator_cpu=sum(report["cpu"] for report in reports),
        server_cpu=cpu.server,
        machine_cpu=cpu.machine,
        latencies=tuple(latencies),
        error_reasons=add_counts(report["error_reasons"] for report in reports),
    )


def read_results(paths: list[str]) -> list[dict]:
    entries = []
    for path in paths:
        with open(path, encoding="ascii") as handle:
            entries.extend(json.loads(line) for line in handle)
    return entries


@dataclass(frozen=True)
class _StoreState:
    blacklisted: int
    offline: int
    keys: dict[str, tuple[str, str | None]]


def store_location(setup: ServerSetup) -> str:
    """
    @return: where the store of a server set up as C{setup} is.
    """
    return setup.store or os.path.join(setup.data, DATABASE_FILE)


def read_store(location: str) -> _StoreState:
    """
    Read the stopped servers' store: its blacklist, its offline profiles,
    and for each profile the key ids a client of it may present (the
    current one, and the previous while the current is unconfirmed).
    """
    store = open_store(location, read_only=True)
    try:
        keys = {
            profile.username: (
                profile.key_id,
                None if profile.current_confirmed else profile.previous_key_id,
            )
            for profile in store.list_profiles()
        }
        return _StoreState(
            len(store.list_blacklist()), len(store.offline_profiles()), keys
        )
    finally:
        store.close()


def compare_keys(entries: list[dict], keys) -> tuple[int, int, int]:
    """
    @return: how many endpoints hold the server's current key, its
        previous (still accepted) key, and neither.
    """
    current = previous = lost = 0
    for entry in entries:
        held = keys.get(entry["user"], (None, None))
        if entry["key_id"] == held[0]:
            current += 1
        elif held[1] is not None and entry["key_id"] == held[1]:
            previous += 1
        else:
            lost += 1
    return current, previous, lost


@inlineCallbacks
def run_storm(
    reactor,
    directory: str,
    *,
    endpoints: int,
    interval: float,
    grace: float,
    storm_timeout: float,
    downtime: float = 0.0,
    database: Database | None = None,
    processes: int = 1,
):
    """
    Run the storm over C{endpoints} seeded endpoints.

    @param directory: an empty folder for the server's data and the
        generators' files.
    @param interval: the rotation interval of the server and the agents.
    @param grace: the server's rotation grace.
    @param storm_timeout: the most seconds to wait, from the restart, for
        every endpoint to be back.
    @param downtime: the least seconds the server stays down (it stays
        down at least until both sides have marked the fleet offline).
    @param database: the PostgreSQL server to make the fleet's store on,
        or L{None} for SQLite.
    @param processes: server processes sharing the port, all stopped and
        restarted together (several only over PostgreSQL).
    @return: a L{Deferred} firing with the L{StormResult}.
    @raise ChildFailed: (through the L{Deferred}) the server or a
        generator exited too early.
    @raise LoadClientError: (through the L{Deferred}) a generator
        reported something malformed.
    """
    file_limit = raise_file_limit()
    check_server(endpoints, file_limit, processes)
    options = (*interval_options(interval), "--rotation-grace", str(grace))
    store = None if database is None else database.new_store()
    setups, fleet_file, seeding = yield seed_fleet(
        reactor, directory, endpoints, store=store, processes=processes
    )
    servers = ServerGroup.start(reactor, setups, AUTH_TIMEOUT, options)
    generators: list[tuple[Child, str]] = []
    try:
        yield servers.wait_until_serving(START_TIMEOUT)
        offline_timeout = longest_wait(interval) + OFFLINE_SLACK
        generators = start_outage_generators(
            reactor, "storm", directory, fleet_file, endpoints=endpoints,
            interval=interval,
            phases_seconds=offline_timeout + downtime + storm_timeout,
            file_limit=file_limit,
            options=(
                "--offline-timeout", str(offline_timeout),
                "--storm-timeout", str(storm_timeout),
            ),
        )
        children = [child for child, _ in generators]
        ready = yield report_lines(children, 0, ("connected", "seconds"), servers)
        # Told first, so the connections the stop cuts count as its own.
        for child in children:
            child.send_line(DOWN)
        yield servers.stop()
        stopped = reactor.seconds()
        offline = yield report_lines(children, 1, ("offline", "seconds"))
        # The server's deadline runs from each profile's last rotation,
        # which was before the stop.
        deadline = stopped + max(
            silence_allowed(interval, grace) + DEADLINE_MARGIN, downtime
        )
        if reactor.seconds() < deadline:
            yield deferLater(reactor, deadline - reactor.seconds())
        restarted = time.time()
        servers = ServerGroup.start(reactor, setups, AUTH_TIMEOUT, options)
        down = reactor.seconds() - stopped
        meter = CpuMeter(*servers.pids)
        used = None if store is None else database.use(store)
        for child in children:
            child.send_line(GO)
        yield servers.wait_until_serving(START_TIMEOUT)
        start_seconds = time.time() - restarted
        # The first sweep ran as the server started, before its listener;
        # the endpoints' back-off keeps them away a while longer.
        _, status = yield servers.admins[0].status()
        server_offline = status.get("offline")
        reports = yield report_lines(
            children, 2,
            ("reconnected", "errors", "error_reasons", "retries", "cpu"),
            servers,
        )
        cpu = meter.read()
        if used is not None:
            used = database.use(store) - used
        ended = time.time()
        yield gatherResults([child.when_ended() for child in children])
    finally:
        yield gatherResults([child.stop(reactor) for child, _ in generators])
        yield servers.stop()
    entries = read_results([path for _, path in generators])
    state = yield deferToThread(read_store, store_location(setups[0]))
    current, previous, lost = compare_keys(entries, state.keys)
    back = sorted(
        entry["back_at"] - restarted
        for entry in entries
        if entry["back_at"] is not None
    )
    return StormResult(
        endpoints=endpoints,
        connected=sum(report["connected"] for report in ready),
        interval=interval,
        grace=grace,
        seeding_seconds=seeding,
        connect_seconds=max(report["seconds"] for report in ready),
        down_seconds=down,
        client_offline=sum(report["offline"] for report in offline),
        server_offline=server_offline,
        start_seconds=start_seconds,
        storm=measured_phase(reports, back, ended - restarted, cpu),
        all_back_seconds=back[-1] if len(back) == endpoints else None,
        conversations=tuple(
            entry["conversation"]
            for entry in entries
            if entry["conversation"] is not None
        ),
        retries=add_counts(report["retries"] for report in reports),
        down_errors=add_counts(report["down_errors"] for report in reports),
        blacklisted=state.blacklisted,
        still_offline=state.offline,
        keys_current=current,
        keys_previous=previous,
        keys_lost=lost,
        processes=processes,
        database=used,
    )

