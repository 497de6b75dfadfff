"""
The flood scenario (issue 22): classic logins while idle connections from
many addresses hold the server's starting-connection cap.

The server runs as C{twistd -n suto} in its own process with its default
limits (C{--max-startups 100:30:1000}, C{--max-per-source 32}).  This
process plays the flood, the operator and the fleet:

  - The flood (L{bench.idle_flood.Flood}) holds C{connections} idle
    connections to the TLS listener from C{sources} loopback addresses,
    each under the per-source cap, never dropped for silence and never
    penalised, each replaced as soon as it ends: so the server has close
    to its full starting cap of them, as the issue's flood did.
  - The operator and the fleet are those of the classic scenario
    (L{bench.classic.authenticator}, L{bench.device.Device}): each login
    is a C{POST /v1/auth}, a hello, and the device's connect-back with
    the agent's own retry (L{suto_client.connectback.connect_back}).

Once the flood has been held for L{SETTLE} seconds, C{devices} devices
log in over and over until C{logins} logins have started or C{duration}
seconds have passed; the figure is the share of them accepted, against
the target L{TARGET}.  The server's metrics (on a loopback port) say how
many connections were starting and how many were refused, and the flood
counts how often the server turned it away: the chance an unexpected
connection had to get in.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall, deferLater

from bench.admin_client import AdminClient
from bench.children import while_running
from bench.classic import (
    START_TIMEOUT,
    measure_authentications,
    passwords_for,
    start_fleet,
)
from bench.device import Device
from bench.figures import Row, met_or_missed, milliseconds, percent, text
from bench.idle_flood import Flood
from bench.measurement import Measurement, add_counts
from bench.metrics_page import scrape
from bench.rotation import raise_file_limit
from bench.suto_server_process import (
    free_port,
    prepare_server,
    start_server,
    wait_until_serving,
)
from suto_server.rules.limits import MaxStartups

#: The share of logins that must succeed during the flood.
TARGET = 0.95

#: Seconds the flood is held before the logins start.
SETTLE = 8.0

#: Seconds between two readings of the server's starting connections.
SAMPLE_INTERVAL = 1.0


@dataclass(frozen=True)
class FloodResult:
    """
    @ivar logins: the measured logins; C{count} is those accepted.
    @ivar held: flood connections open when the logins started.
    @ivar attempts: flood connections started over the whole run.
    @ivar turned_away: of those, how many the server closed first.
    @ivar starting: the server's starting connections, read every
        L{SAMPLE_INTERVAL} while the logins ran.
    @ivar rejected: the server's refusals by reason at the end.
    @ivar connect_backs: connections the devices made to answer hellos.
    @ivar device_outcomes: how the devices saw their exchanges end.
    """

    logins: Measurement
    held: int
    attempts: int
    turned_away: int
    starting: tuple[float, ...]
    rejected: dict[str, float]
    connect_backs: int
    device_outcomes: dict[str, int]

    @property
    def mean_starting(self) -> float | None:
        if not self.starting:
            return None
        return sum(self.starting) / len(self.starting)

    @property
    def drop_chance(self) -> float | None:
        """
        The chance the server's default C{MaxStartups} refused an
        unexpected connection, at the mean starting count.
        """
        mean = self.mean_starting
        return None if mean is None else MaxStartups().drop_chance(round(mean))

    @property
    def success_ratio(self) -> float | None:
        total = self.logins.count + self.logins.errors
        return self.logins.count / total if total else None


def _rejected(samples: dict) -> dict[str, float]:
    return {
        labels.split('"')[1]: value
        for (name, labels), value in samples.items()
        if name == "suto_connections_rejected_total" and labels
    }


@inlineCallbacks
def run_flood(
    reactor,
    directory: str,
    *,
    sources: int,
    connections: int,
    devices: int,
    logins: int,
    duration: float,
    auth_timeout: float,
    progress=lambda text: None,
):
    """
    Start a server, flood it, run the logins, and stop everything.

    @param directory: an empty folder for the server's data.
    @return: a L{Deferred} firing with the L{FloodResult}.
    """
    raise_file_limit()
    passwords = passwords_for(devices)
    setup = prepare_server(os.path.join(directory, "data"), passwords)
    metrics_port = free_port()
    server = start_server(
        reactor,
        setup,
        auth_timeout,
        options=("--metrics-listen", f"tcp:{metrics_port}:interface=127.0.0.1"),
    )
    admin = AdminClient(reactor, setup.admin_socket, devices)
    reactor.suggestThreadPoolSize(os.cpu_count() or 1)
    flood = Flood(reactor, setup.port, sources, connections, random.Random())
    fleet: list[Device] = []
    try:
        yield wait_until_serving(reactor, admin, server, START_TIMEOUT)
        fleet.extend(start_fleet(reactor, setup, passwords, auth_timeout))
        progress(f"flood: {connections} connections from {sources} sources")
        flood.start()
        yield while_running(server, deferLater(reactor, SETTLE, lambda: None))
        held = flood.held
        progress(f"flood: {held} held; logging in")
        starting: list[float] = []

        @inlineCallbacks
        def sample():
            samples = yield scrape(reactor, metrics_port)
            starting.append(samples[("suto_connections_starting", "")])

        sampler = LoopingCall(sample)
        sampling = sampler.start(SAMPLE_INTERVAL)
        measured = yield measure_authentications(
            reactor, server, admin, fleet, auth_timeout,
            duration=duration, max_count=logins,
        )
        sampler.stop()
        yield sampling
        after = yield scrape(reactor, metrics_port)
    finally:
        yield flood.stop()
        for device in fleet:
            yield device.stop()
        yield admin.close()
        yield server.stop(reactor)
    return FloodResult(
        logins=measured,
        held=held,
        attempts=flood.attempts,
        turned_away=flood.turned_away,
        starting=tuple(starting),
        rejected=_rejected(after),
        connect_backs=sum(device.connections for device in fleet),
        device_outcomes=add_counts(device.outcomes for device in fleet),
    )


_UNEXPECTED = (
    "MaxStartups' chance at that mean: what a connect-back met without the reserve"
)


def flood_rows(result: FloodResult) -> list[Row]:
    """
    @return: the scenario's table rows.
    """
    ratio = result.success_ratio
    met = ratio is not None and ratio >= TARGET
    total = result.logins.count + result.logins.errors
    away = result.turned_away / result.attempts if result.attempts else None
    errors = ", ".join(
        f"{reason}: {count}"
        for reason, count in sorted(result.logins.error_reasons.items())
    )
    readings = (
        f"mean of {len(result.starting)} readings during the logins, from "
        f"{text(min(result.starting, default=None), 0)} to "
        f"{text(max(result.starting, default=None), 0)}"
    )
    refusals = ", ".join(f"{k}: {v:.0f}" for k, v in sorted(result.rejected.items()))
    latency = (
        f"{text(milliseconds(result.logins.latency(0.5)))} / "
        f"{text(milliseconds(result.logins.latency(0.99)))}"
    )
    return [
        ("flood connections held", str(result.held), "connections",
         "when the logins started"),
        ("server: starting", text(result.mean_starting), "connections", readings),
        ("unexpected refused", text(percent(result.drop_chance)), "%",
         _UNEXPECTED),
        ("flood turned away", text(percent(away)), "%",
         f"{result.turned_away} of {result.attempts} flood connections"),
        ("server: refused", text(sum(result.rejected.values())), "connections",
         refusals),
        ("logins accepted", f"{result.logins.count}/{total}", "",
         errors or "no errors"),
        ("success ratio", text(ratio, 3), "",
         f"target {TARGET}: {met_or_missed(met)}"),
        ("connect-backs", str(result.connect_backs), "connections",
         "made by the devices, retries included"),
        ("latency p50 / p99", latency, "ms", "POST /v1/auth to its verdict"),
    ]


def flood_json(result: FloodResult) -> dict:
    """
    @return: the scenario's figures for the JSON line.
    """
    return {
        "scenario": "flood",
        "success_ratio": result.success_ratio,
        "target": TARGET,
        "logins": result.logins.count + result.logins.errors,
        "accepted": result.logins.count,
        "errors": result.logins.error_reasons,
        "flood_held": result.held,
        "flood_attempts": result.attempts,
        "flood_turned_away": result.turned_away,
        "server_starting_mean": result.mean_starting,
        "unexpected_drop_chance": result.drop_chance,
        "server_rejected": result.rejected,
        "connect_backs": result.connect_backs,
        "device_outcomes": result.device_outcomes,
    }
