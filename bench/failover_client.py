"""
One load generator process of the failover scenario: a share of the
seeded fleet, each endpoint run as the agent runs a profile with a
failover server (C{suto-client enroll --failover}): the agent's
L{ClientService} and L{RotationFactory} over the agent's
L{FailoverEndpoint} of both servers, moved on when a connection ends
unanswered, as L{suto_client.agent.Agent} does.

    python -m bench.failover_client --fleet FILE --first I --count N
        --interval S --second-port P --connect-timeout S
        --failover-timeout S --results FILE --lifetime S

Endpoint C{i} of the fleet tries the fleet file's server first when C{i}
is even, the second server (C{--second-port}) first when it is odd, so
each server holds half the fleet.  The conversation with the parent:

  1. it starts its endpoints (C{--connecting} at a time) and prints
     C{{"connected", "seconds", "errors"}} once each has rotated once;
  2. on C{down} (the parent killed the first server) it notes which
     endpoints were on that server, waits until every endpoint has
     stored a rotation since (or C{--failover-timeout}), stops them,
     writes one JSON line per endpoint to C{--results} (its user, the key
     id it holds, when it rotated again, whether it had to move) and
     prints C{{"again", "errors", "error_reasons", "retries", "cpu"}}.
"""

from __future__ import annotations

import sys
import time

from bench import fleet
from bench.rotation_client import run_generator
from bench.storm_client import (
    MeasuredFactory,
    Phases,
    StormEndpoint,
    converse,
    counts,
    outage_parser,
    phase_errors,
    until_all,
    write_results,
)
from bench.tls_loops import tls_endpoint
from suto_client.failover import FailoverEndpoint


def server_order(index: int, first_port: int, second_port: int) -> list[int]:
    """
    @return: the ports endpoint C{index} tries, in order: half the fleet
        starts on each server.
    """
    ports = [first_port, second_port]
    return ports if index % 2 == 0 else ports[::-1]


def server_name(port: int) -> str:
    """
    @return: how a failover endpoint names the server on C{port}.
    """
    return f"127.0.0.1:{port}"


class FailoverMember(StormEndpoint):
    """
    One endpoint with two servers.

    @ivar again_at: the POSIX time of its first rotation stored since
        L{killed}, or L{None}.
    @ivar cut: whether it was on the killed server.
    """

    def __init__(
        self, reactor, member: fleet.Member, address: str, interval: float,
        phases: Phases, ports: list[int],
    ) -> None:
        self.failover = FailoverEndpoint(
            [
                (server_name(port), tls_endpoint(reactor, port, member.profile.pin, address))
                for port in ports
            ]
        )
        super().__init__(reactor, member, address, interval, phases, self.failover)
        self.again_at: float | None = None
        self.cut = False
        self._since: float | None = None

    def killed(self, port: int) -> None:
        """
        The server on C{port} was killed: note whether this endpoint was
        on it, and count its rotations from now.
        """
        self.cut = self.failover.current == server_name(port)
        self._since = time.time()

    def _stored(self, old, new) -> None:
        super()._stored(old, new)
        if self._since is not None and self.again_at is None and new.key_id != old.key_id:
            self.again_at = time.time()

    def _reported(self, report) -> None:
        super()._reported(report)
        if not report.answered:
            self.failover.move_on(report.reason or report.outcome.value)


async def _run(reactor, options) -> None:
    phases = Phases()
    members = fleet.read(options.fleet, options.first, options.count)
    endpoints = [
        FailoverMember(
            reactor,
            member,
            fleet.source_address(options.first + index),
            options.interval,
            phases,
            server_order(
                options.first + index, member.profile.server_port, options.second_port
            ),
        )
        for index, member in enumerate(members)
    ]

    async def failover(control) -> None:
        phases.current = "failover"
        for endpoint in endpoints:
            endpoint.killed(members[0].profile.server_port)
        cpu = await until_all(
            reactor, endpoints, lambda e: e.again_at is not None,
            options.failover_timeout,
        )
        write_results(
            options.results,
            endpoints,
            lambda endpoint: {"again_at": endpoint.again_at, "cut": endpoint.cut},
        )
        control.report(
            {
                "again": sum(e.again_at is not None for e in endpoints),
                **phase_errors(phases, "failover"),
                "retries": counts(phases.retries),
                "cpu": cpu,
            }
        )

    await converse(reactor, endpoints, phases, options, failover)


def main(argv: list[str]) -> None:
    parser = outage_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--second-port", type=int, required=True)
    parser.add_argument("--failover-timeout", type=float, required=True)
    run_generator(parser.parse_args(argv), _run, MeasuredFactory)


if __name__ == "__main__":
    main(sys.argv[1:])
