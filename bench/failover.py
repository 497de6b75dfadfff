"""
The failover scenario (issue 18): a fleet rotating over two server
processes that share one PostgreSQL store, each on a port of its own as
two hosts would be, its agents told both addresses; one process is killed
with SIGKILL in the middle of the run.

  1. The store is seeded and both servers started with a short rotation
     interval and grace, as the storm scenario does, so the fleet rotates
     every few seconds.
  2. The generators (L{bench.failover_client}) start every endpoint as the
     agent runs a profile with a failover server, half of them on each
     server first, and say when each has rotated once.
  3. C{kill_after} seconds later the first server is killed (SIGKILL):
     its connections die mid-conversation, whatever they were doing.  Its
     endpoints fail over to the second; the others go on there.
  4. The generators count, for every endpoint, its first rotation stored
     after the kill, until all have rotated again or the timeout passes;
     then they close and write the key each holds.
  5. The second server is stopped and the store read: the key each
     endpoint holds against the server's current and previous keys, the
     blacklist, and the alerts the audit log holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from bench.children import Child
from bench.cpu import CpuMeter
from bench.database import Database
from bench.descriptors import check_server
from bench.measurement import Measurement, add_counts
from bench.rotation import (
    AUTH_TIMEOUT,
    START_TIMEOUT,
    interval_options,
    raise_file_limit,
    report_lines,
    seed_fleet,
)
from bench.server_group import OWN_PORTS, ServerGroup
from bench.storm import (
    compare_keys,
    measured_phase,
    read_results,
    read_store,
    start_outage_generators,
)
from bench.storm_client import DOWN
from suto_server.audit.alerts import ALERT_TYPES
from suto_server.store.open import open_store

#: The server processes a failover runs: the one killed and the one its
#: endpoints fail over to.  Neither restarts.
PROCESSES = 2


@dataclass(frozen=True)
class FailoverResult:
    """
    @ivar endpoints: the endpoints seeded.
    @ivar connected: how many rotated once before the kill.
    @ivar interval: the rotation interval, servers and agents, in seconds.
    @ivar seeding_seconds: how long seeding the store took.
    @ivar connect_seconds: how long the fleet took to connect and rotate.
    @ivar cut: endpoints that were on the killed server.
    @ivar after: the phase from the kill to the generators' reports
        (C{seconds}): C{count} endpoints rotated again, their times from
        the kill as C{latencies}, the rotations that failed meanwhile,
        the CPU of the generators and of the surviving server.
    @ivar cut_again: seconds from the kill until each endpoint of the
        killed server rotated again (on the other).
    @ivar all_again_seconds: from the kill until the last endpoint
        rotated again, or L{None} if some never did.
    @ivar retries: connection attempts retried by the back-off, by phase.
    @ivar blacklisted: profiles blacklisted at the end.
    @ivar keys_current: endpoints holding the store's current key.
    @ivar keys_previous: endpoints holding the previous key, still
        accepted (a commit whose ROTATE_DONE died with the server).
    @ivar keys_lost: endpoints holding a key the store does not accept.
    @ivar alerts: the alerts in the audit log at the end, by type.
    """

    endpoints: int
    connected: int
    interval: float
    seeding_seconds: float
    connect_seconds: float
    cut: int
    after: Measurement
    cut_again: tuple[float, ...]
    all_again_seconds: float | None
    retries: dict[str, int]
    blacklisted: int
    keys_current: int
    keys_previous: int
    keys_lost: int
    alerts: dict[str, int]


def count_alerts(location: str) -> dict[str, int]:
    """
    @return: how many audit records of each alert type the store at
        C{location} holds, for the types it holds any of.
    """
    store = open_store(location, read_only=True)
    try:
        found = {kind: store.count_audit_events(event=kind) for kind in ALERT_TYPES}
    finally:
        store.close()
    return {kind: count for kind, count in sorted(found.items()) if count}


@inlineCallbacks
def run_failover(
    reactor,
    directory: str,
    database: Database,
    *,
    endpoints: int,
    interval: float,
    grace: float,
    kill_after: float,
    failover_timeout: float,
):
    """
    Run the failover over C{endpoints} seeded endpoints.

    @param directory: an empty folder for the servers' data and the
        generators' files.
    @param database: the PostgreSQL server the store is made on.
    @param interval: the rotation interval of the servers and the agents.
    @param grace: the servers' rotation grace.
    @param kill_after: seconds of rotation between the fleet being
        connected and the kill.
    @param failover_timeout: the most seconds to wait, from the kill, for
        every endpoint to rotate again.
    @return: a L{Deferred} firing with the L{FailoverResult}.
    """
    file_limit = raise_file_limit()
    check_server(endpoints, file_limit)
    options = (*interval_options(interval), "--rotation-grace", str(grace))
    store = database.new_store()
    setups, fleet_file, seeding = yield seed_fleet(
        reactor, directory, endpoints, store=store, processes=PROCESSES,
        ports=OWN_PORTS,
    )
    servers = ServerGroup.start(reactor, setups, AUTH_TIMEOUT, options)
    generators: list[tuple[Child, str]] = []
    try:
        yield servers.wait_until_serving(START_TIMEOUT)
        generators = start_outage_generators(
            reactor, "failover", directory, fleet_file, endpoints=endpoints,
            interval=interval, phases_seconds=failover_timeout + interval,
            file_limit=file_limit,
            options=(
                "--second-port", str(setups[1].port),
                "--failover-timeout", str(failover_timeout),
            ),
        )
        children = [child for child, _ in generators]
        ready = yield report_lines(children, 0, ("connected", "seconds"), servers)
        yield deferLater(reactor, kill_after)
        survivor = servers.children[1].pid
        servers.kill(0)
        killed = time.time()
        for child in children:
            child.send_line(DOWN)
        meter = CpuMeter(survivor)
        yield servers.children[0].when_ended()
        reports = yield report_lines(
            children, 1, ("again", "errors", "error_reasons", "retries", "cpu"),
            servers,
        )
        cpu = meter.read()
        ended = time.time()
        yield gatherResults([child.when_ended() for child in children])
    finally:
        yield gatherResults([child.stop(reactor) for child, _ in generators])
        yield servers.stop()
    entries = read_results([path for _, path in generators])
    state = yield deferToThread(read_store, store)
    alerts = yield deferToThread(count_alerts, store)
    current, previous, lost = compare_keys(entries, state.keys)
    again = sorted(
        entry["again_at"] - killed for entry in entries if entry["again_at"] is not None
    )
    return FailoverResult(
        endpoints=endpoints,
        connected=sum(report["connected"] for report in ready),
        interval=interval,
        seeding_seconds=seeding,
        connect_seconds=max(report["seconds"] for report in ready),
        cut=sum(entry["cut"] for entry in entries),
        after=measured_phase(reports, again, ended - killed, cpu),
        cut_again=tuple(
            sorted(
                entry["again_at"] - killed
                for entry in entries
                if entry["cut"] and entry["again_at"] is not None
            )
        ),
        all_again_seconds=again[-1] if len(again) == endpoints else None,
        retries=add_counts(report["retries"] for report in reports),
        blacklisted=state.blacklisted,
        keys_current=current,
        keys_previous=previous,
        keys_lost=lost,
        alerts=alerts,
    )
