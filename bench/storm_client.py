"""
One load generator process of the storm scenario: a share of the seeded
fleet, each endpoint kept connected by the agent's own L{ClientService}
and L{RotationFactory}, so the back-off between attempts, the offline
mark and the reconnection with the offline key are the agent's.

    python -m bench.storm_client --fleet FILE --first I --count N
        --interval S --connect-timeout S --offline-timeout S
        --storm-timeout S --results FILE --lifetime S

The conversation with the parent, one line each way at a time:

  1. it starts its endpoints' services (C{--connecting} at a time) and
     prints C{{"connected", "seconds", "errors"}} once each has rotated
     once (or C{--connect-timeout} passed);
  2. on C{down} (the parent stopped the server) it waits until every
     endpoint marked itself offline (or C{--offline-timeout}) and prints
     C{{"offline", "seconds"}};
  3. on C{go} (the parent restarted the server) it waits until every
     endpoint reconnected with its offline key and rotated (or
     C{--storm-timeout}), writes one JSON line per endpoint to
     C{--results} (its user, the key id it holds, when it was back, how
     long its last conversation took), and prints
     C{{"reconnected", "errors", "error_reasons", "retries", "cpu"}}.

It stops its services and exits when its standard input closes, and after
C{--lifetime} seconds whatever happens.  Every wait is bounded; times it
reports are POSIX times (C{time.time()}), which the parent shares.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

from twisted.application.internet import ClientService
from twisted.internet import stdio
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.protocol import connectionDone
from twisted.internet.task import deferLater
from twisted.protocols.basic import LineReceiver

from bench import fleet
from bench.cpu import own_cpu_seconds
from bench.rotation_client import generator_parser, run_generator
from bench.tls_loops import STEP_TIMEOUT, tls_endpoint
from suto_client.rotation import RotationFactory
from suto_client.rotation_outcome import RotationOutcome

#: Seconds between two looks at whether every endpoint is offline or back.
POLL_INTERVAL = 0.25

#: The lines the parent sends.
DOWN = "down"
GO = "go"


class StormControl(LineReceiver):
    """
    The conversation with the parent on standard input and output.

    @ivar down: fires on C{down}; @ivar go: fires on C{go}; both fail if
        the parent hangs up first.
    @ivar closed: fires once the connection is closed.
    """

    delimiter = b"\n"

    def __init__(self) -> None:
        self.down: Deferred = Deferred()
        self.go: Deferred = Deferred()
        self.closed: Deferred = Deferred()

    def lineReceived(self, line: bytes) -> None:
        word = line.strip().decode("ascii", "replace")
        waiting = {DOWN: self.down, GO: self.go}.get(word)
        if waiting is not None and not waiting.called:
            waiting.callback(None)

    def report(self, figures: dict) -> None:
        """
        Send the parent C{figures}, one JSON line.
        """
        self.sendLine(json.dumps(figures).encode("utf-8"))

    def connectionLost(self, reason=connectionDone) -> None:
        for waiting in (self.down, self.go):
            if not waiting.called:
                waiting.errback(reason)
        self.closed.callback(None)


class Phases:
    """
    Which part of the run it is (C{connect}, C{down}, C{storm}), and what
    went wrong in each: rotations that did not end C{ROTATED}, by
    outcome and reason, and connection attempts retried.
    """

    def __init__(self) -> None:
        self.current = "connect"
        self.errors: dict[str, Counter] = {}
        self.retries: Counter = Counter()

    def failed(self, reason: str) -> None:
        self.errors.setdefault(self.current, Counter())[reason] += 1

    def retried(self) -> None:
        self.retries[self.current] += 1


class MeasuredFactory(RotationFactory):
    """
    The agent's L{RotationFactory}, noting when each connection's
    conversation starts.
    """

    conversation_started: float | None = None

    def buildProtocol(self, addr):
        self.conversation_started = self._clock.seconds()
        return super().buildProtocol(addr)


class StormEndpoint:
    """
    One endpoint: the agent's factory under the agent's L{ClientService}.

    @ivar first: fires once its first rotation is committed.
    @ivar back_at: the POSIX time its reconnection's rotation was stored
        in the storm phase (after the restart), or L{None}.
    @ivar conversation: seconds from its last connection's start to that
        rotation's commit, or L{None}.
    """

    def __init__(
        self, reactor, member: fleet.Member, address: str, interval: float,
        phases: Phases, endpoint=None,
    ) -> None:
        """
        @param address: the loopback address it connects from.
        @param endpoint: where it connects, if not to the port of its
            profile from C{address} (L{tls_endpoint}).
        """
        self._reactor = reactor
        self._phases = phases
        self.first: Deferred = Deferred()
        self.back_at: float | None = None
        self.conversation: float | None = None
        self.factory = MeasuredFactory(
            member.profile,
            clock=reactor,
            interval=interval,
            timeout=STEP_TIMEOUT,
            store=self._stored,
            report=self._reported,
            fingerprint=lambda: member.fingerprint_hash,
        )
        if endpoint is None:
            endpoint = tls_endpoint(
                reactor, member.profile.server_port, member.profile.pin, address
            )
        self.service = ClientService(
            endpoint,
            self.factory,
            retryPolicy=self._retry_delay,
            clock=reactor,
        )

    @property
    def offline(self) -> bool:
        return self.factory.profile.offline_since is not None

    def start(self) -> Deferred:
        """
        Start the service.

        @return: L{first}.
        """
        self.service.startService()
        return self.first

    def _retry_delay(self, attempt: int) -> float:
        self._phases.retried()
        return self.factory.retry_delay(attempt)

    def _stored(self, old, new) -> None:
        # The factory stores a profile twice: when it marks itself offline
        # (a new offline_since, the same key), and after each rotation (a
        # new key, offline_since cleared).  A rotation stored from an
        # offline profile is a reconnection that went through.  Only the
        # storm's count: the fleet is seeded as enrolled at seeding time,
        # so when the server and the generators take longer to start than
        # the interval and its jitter (2 s on a busy machine), each agent
        # starts offline and its first connection is a reconnection, long
        # before the restart; counted, it made "all back" negative and
        # ended the storm's wait before anyone reconnected.
        if (
            self._phases.current == "storm"
            and old.offline_since is not None
            and new.key_id != old.key_id
        ):
            self.back_at = time.time()
            started = self.factory.conversation_started
            if started is not None:
                self.conversation = self._reactor.seconds() - started

    def _reported(self, report) -> None:
        if report.outcome is RotationOutcome.ROTATED:
            if not self.first.called:
                self.first.callback(True)
        else:
            self._phases.failed(f"{report.outcome.value}: {report.reason}")


async def until(reactor, done, timeout: float) -> float:
    """
    Wait until C{done()} is true, or C{timeout} seconds.

    @return: the seconds waited.
    """
    start = reactor.seconds()
    while not done() and reactor.seconds() - start < timeout:
        await deferLater(reactor, POLL_INTERVAL)
    return reactor.seconds() - start


async def stop_all(endpoints: list[StormEndpoint]) -> None:
    """
    Stop every endpoint's service still running, and wait until its
    connection is closed.
    """
    await gatherResults(
        [
            endpoint.service.stopService()
            for endpoint in endpoints
            if endpoint.service.running
        ]
    )


async def start_all(reactor, endpoints: list[StormEndpoint], phases, options) -> dict:
    """
    Start the endpoints' services, C{options.connecting} at a time, and
    wait until each has rotated once or C{options.connect_timeout}
    passed.

    @return: the report saying so: C{{"connected", "seconds", "errors"}}.
    """
    start = reactor.seconds()
    gate = DeferredSemaphore(options.connecting)
    connecting = gatherResults([gate.run(endpoint.start) for endpoint in endpoints])
    await until(reactor, lambda: connecting.called, options.connect_timeout)
    return {
        "connected": sum(e.first.called for e in endpoints),
        "seconds": reactor.seconds() - start,
        "errors": counts(phases.errors.get("connect")),
    }


def write_results(path: str, endpoints, figures) -> None:
    """
    Write one JSON line per endpoint to C{path}, which the parent reads
    once the generator is done: the user and the key id it holds (what
    the parent compares with the store's) and C{figures(endpoint)}.
    """
    with open(path, "w", encoding="ascii") as handle:
        for endpoint in endpoints:
            profile = endpoint.factory.profile
            entry = {"user": profile.user, "key_id": profile.key_id}
            handle.write(json.dumps({**entry, **figures(endpoint)}) + "\n")


def counts(counter: Counter | None) -> dict[str, int]:
    return dict(counter or {})


async def converse(reactor, endpoints, phases: Phases, options, after_down) -> None:
    """
    The conversation of a generator whose server goes away (the storm's
    stop, the failover's kill): start C{endpoints} and report once they
    are connected, then, on C{down}, C{await after_down(control)}, which
    reports the rest.  However it ends, every endpoint is stopped and the
    parent's connection closed.
    """
    control = StormControl()
    stdio.StandardIO(control, reactor=reactor)
    try:
        control.report(await start_all(reactor, endpoints, phases, options))
        await control.down
        await after_down(control)
    finally:
        await stop_all(endpoints)
    control.transport.loseConnection()
    await control.closed


async def until_all(reactor, endpoints, done, timeout: float) -> float:
    """
    Wait until C{done(endpoint)} holds for every endpoint, or C{timeout}
    seconds, then stop them all: the key each holds once its connection
    is closed is the one it keeps (a rotation the server committed whose
    C{ROTATE_DONE} did not arrive leaves it the previous key, which the
    server still accepts).

    @return: this generator's CPU seconds over the wait.
    """
    cpu = own_cpu_seconds()
    await until(reactor, lambda: all(done(e) for e in endpoints), timeout)
    cpu = own_cpu_seconds() - cpu
    await stop_all(endpoints)
    return cpu


def phase_errors(phases: Phases, name: str) -> dict:
    """
    @return: the report's C{errors} (how many rotations failed in phase
        C{name}) and C{error_reasons} (how many for each reason).
    """
    reasons = counts(phases.errors.get(name))
    return {"errors": sum(reasons.values()), "error_reasons": reasons}


def outage_parser(description: str):
    """
    @return: the parser of every generator's options
        (L{generator_parser}), with the connecting phase's timeout and the
        results file of a generator conversing as L{converse} does.
    """
    parser = generator_parser(description)
    parser.add_argument("--connect-timeout", type=float, required=True)
    parser.add_argument("--results", required=True)
    return parser


async def _run(reactor, options) -> None:
    phases = Phases()
    members = fleet.read(options.fleet, options.first, options.count)
    endpoints = [
        StormEndpoint(
            reactor,
            member,
            fleet.source_address(options.first + index),
            options.interval,
            phases,
        )
        for index, member in enumerate(members)
    ]

    async def storm(control) -> None:
        phases.current = "down"
        waited = await until(
            reactor,
            lambda: all(e.offline for e in endpoints),
            options.offline_timeout,
        )
        control.report(
            {"offline": sum(e.offline for e in endpoints), "seconds": waited}
        )
        await control.go
        phases.current = "storm"
        cpu = await until_all(
            reactor, endpoints, lambda e: e.back_at is not None,
            options.storm_timeout,
        )
        write_results(
            options.results,
            endpoints,
            lambda endpoint: {
                "offline": endpoint.offline,
                "back_at": endpoint.back_at,
                "conversation": endpoint.conversation,
            },
        )
        control.report(
            {
                "reconnected": sum(e.back_at is not None for e in endpoints),
                **phase_errors(phases, "storm"),
                "down_errors": counts(phases.errors.get("down")),
                "retries": counts(phases.retries),
                "cpu": cpu,
            }
        )

    await converse(reactor, endpoints, phases, options, storm)


def main(argv: list[str]) -> None:
    parser = outage_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--offline-timeout", type=float, required=True)
    parser.add_argument("--storm-timeout", type=float, required=True)
    run_generator(parser.parse_args(argv), _run, MeasuredFactory)


if __name__ == "__main__":
    main(sys.argv[1:])
