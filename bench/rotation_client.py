"""
One load generator process of the rotation and memory scenarios: a share
of the seeded fleet, each endpoint on a TLS connection of its own running
the agent's rotation protocol.

    python -m bench.rotation_client --fleet FILE --first I --count N
        --interval S --duration S --max-count N --latencies FILE
        --lifetime S [--connecting N]

Each endpoint is the agent's own L{RotationFactory} (so its
L{RotationProtocol} and L{ClientRotation}), connected from the endpoint's
own loopback address with the agent's TLS configuration, with a
fingerprint callable returning the hash seeded for it and a store that
keeps the new key in memory.  Rotations follow each other in lockstep,
C{--interval} seconds apart (0: as fast as lockstep allows).

The process connects its endpoints (each one's first rotation completes
on connecting), prints one JSON line saying how that went, waits for a
line C{go} on its standard input, counts the rotations completed over
C{--duration} seconds or C{--max-count} rotations, writes their latencies
to C{--latencies} (native doubles), prints one JSON line with the counts
and its own CPU seconds, closes its connections and exits.  It exits too
if its standard input closes, and after C{--lifetime} seconds whatever
happens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from array import array

from twisted.internet import stdio
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.task import react
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from bench import fleet
from bench.cpu import own_cpu_seconds
from bench.load_client import Control
from bench.measurement import Tally
from bench.rotation import raise_file_limit
from bench.tls_loops import STEP_TIMEOUT, tls_endpoint
from suto_client.rotation import RotationFactory
from suto_client.rotation_outcome import RotationOutcome

#: Connections being opened at once, per generator, unless
#: C{--connecting} says otherwise: enough to keep both ends busy, few
#: enough that a handshake is not starved by the rotations of the
#: endpoints already connected, and two generators together stay under
#: the server's default MaxStartups start (100 connections before their
#: first exchange), past which it refuses some new connections
#: (L{bench.descriptors.connecting} divides that start between more).
CONNECTING = 48


class MeasuredWindow:
    """
    The measured phase: which rotations count, and when it ends.

    @ivar tally: the rotations completed in it, with their latencies.
    @ivar warmup: the rotations completed before it (connecting).
    @ivar ended: fires once it is over.
    """

    def __init__(self, reactor) -> None:
        self.tally = Tally()
        self.warmup = Tally()
        self.ended: Deferred = Deferred()
        self._reactor = reactor
        self._open = False
        self._max_count = 0
        self._timer = None

    def start(self, duration: float, max_count: int) -> None:
        """
        Count from now, for C{duration} seconds or C{max_count} rotations.
        """
        self._open = True
        self._max_count = max_count
        self._timer = self._reactor.callLater(duration, self._end)

    def record(self, outcome: RotationOutcome, reason: str, latency: float) -> None:
        """
        One rotation ended, C{latency} seconds after its C{SUTO_C_ROTATE_}.
        """
        if self.ended.called:
            return
        tally = self.tally if self._open else self.warmup
        if outcome is RotationOutcome.ROTATED:
            tally.succeeded(latency)
        else:
            tally.failed(f"{outcome.value}: {reason}")
        if self._open and self.tally.count >= self._max_count:
            self._end()

    def _end(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if not self.ended.called:
            self.ended.callback(None)


class _Endpoint:
    """
    One simulated endpoint of the fleet.
    """

    def __init__(
        self, reactor, member: fleet.Member, address: str, window: MeasuredWindow,
        interval: float,
    ) -> None:
        """
        @param address: the loopback address it connects from.
        @param interval: seconds between its rotations, before jitter.
        """
        self._reactor = reactor
        self._window = window
        self._started: float | None = None
        self._first: Deferred | None = None
        self.protocol = None
        self._tls = tls_endpoint(
            reactor, member.profile.server_port, member.profile.pin, address
        )
        self._factory = RotationFactory(
            member.profile,
            clock=reactor,
            interval=interval,
            timeout=STEP_TIMEOUT,
            store=lambda old, new: None,
            report=self._reported,
            fingerprint=lambda: member.fingerprint_hash,
            random_bytes=self._draw,
        )

    def connect(self) -> Deferred:
        """
        Connect; the connection's first rotation starts at once.

        @return: a L{Deferred} firing with whether that rotation completed,
            once it ended or the connection failed; it never fails.
        """
        self._first = Deferred()
        attempt = self._tls.connect(self._factory)

        def connected(protocol):
            self.protocol = protocol

        def failed(failure):
            self._window.warmup.failed(
                f"connecting: {failure.type.__name__}"
            )
            self._first_ended(False)

        attempt.addCallbacks(connected, failed)
        return self._first

    def close(self) -> None:
        """
        Drop the connection at once, wherever its rotation is.
        """
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.abortConnection()

    def _draw(self, size: int) -> bytes:
        # ClientRotation draws a rotation's fresh junk and X25519 key as it
        # sends SUTO_C_ROTATE_, and nothing else: the first draw since the
        # last report is when the rotation started.
        if self._started is None:
            self._started = self._reactor.seconds()
        return os.urandom(size)

    def _reported(self, report) -> None:
        started, self._started = self._started, None
        latency = 0.0 if started is None else self._reactor.seconds() - started
        self._window.record(report.outcome, report.reason, latency)
        self._first_ended(report.outcome is RotationOutcome.ROTATED)

    def _first_ended(self, rotated: bool) -> None:
        first, self._first = self._first, None
        if first is not None:
            first.callback(rotated)


async def _run(reactor, options) -> None:
    control = Control()
    stdio.StandardIO(control, reactor=reactor)
    window = MeasuredWindow(reactor)
    members = fleet.read(options.fleet, options.first, options.count)
    endpoints = [
        _Endpoint(
            reactor,
            member,
            fleet.source_address(options.first + index),
            window,
            options.interval,
        )
        for index, member in enumerate(members)
    ]
    try:
        start = reactor.seconds()
        gate = DeferredSemaphore(options.connecting)
        firsts = await gatherResults(
            [gate.run(endpoint.connect) for endpoint in endpoints]
        )
        control.sendLine(
            json.dumps(
                {
                    "connected": sum(firsts),
                    "seconds": reactor.seconds() - start,
                    "warmup_rotations": window.warmup.count,
                    "warmup_errors": window.warmup.measurement(0.0).error_reasons,
                }
            ).encode("utf-8")
        )
        await control.go
        cpu = own_cpu_seconds()
        start = reactor.seconds()
        window.start(options.duration, options.max_count)
        await window.ended
        measured = window.tally.measurement(reactor.seconds() - start)
        cpu = own_cpu_seconds() - cpu
    finally:
        for endpoint in endpoints:
            endpoint.close()
    with open(options.latencies, "wb") as handle:
        array("d", measured.latencies).tofile(handle)
    report = {
        "count": measured.count,
        "seconds": measured.seconds,
        "errors": measured.errors,
        "error_reasons": measured.error_reasons,
        "cpu": cpu,
    }
    control.sendLine(json.dumps(report).encode("utf-8"))
    control.transport.loseConnection()
    await control.closed


def generator_parser(description: str) -> argparse.ArgumentParser:
    """
    @return: a parser of the options every fleet generator takes: its
        share of the fleet file, the rotation interval and its lifetime.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--fleet", required=True, help="the seeded fleet's file")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--lifetime", type=float, required=True)
    parser.add_argument(
        "--connecting", type=int, default=CONNECTING,
        help=f"connections opened at once (default {CONNECTING})",
    )
    return parser


def run_generator(options, run, quiet: type) -> None:
    """
    Run the coroutine function C{run(reactor, options)} in the reactor for
    at most C{options.lifetime} seconds, with the file limit raised and
    only warnings logged, none from the factory class C{quiet}: every
    failure is counted in the report, and the agent's own log line per
    rotation (and per connection closed at the end) would only flood it.
    """
    raise_file_limit()
    levels = LogLevelFilterPredicate(LogLevel.warn)
    levels.setLogLevelForNamespace(
        f"{quiet.__module__}.{quiet.__name__}", LogLevel.critical
    )
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [levels])],
        redirectStandardIO=False,
    )

    def start(reactor):
        reactor.callLater(options.lifetime, reactor.stop)
        return Deferred.fromCoroutine(run(reactor, options))

    react(start)


def main(argv: list[str]) -> None:
    parser = generator_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--max-count", type=int, required=True)
    parser.add_argument("--latencies", required=True)
    run_generator(parser.parse_args(argv), _run, RotationFactory)


if __name__ == "__main__":
    main(sys.argv[1:])
