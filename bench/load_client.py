"""
One load client process of the TLS and message ceilings.

A single Python process cannot drive TLS handshakes as fast as the machine
can (its one reactor thread is saturated first), so the ceilings run one
of these per core, side by side, each against the same echo server.

    python -m bench.load_client handshakes|messages --port P --pin PIN
        --connections N --duration S --max-count N

It prepares (for C{messages}, opens its connections), prints C{ready},
waits for a line C{go} on its standard input, measures, prints one line of
JSON (count, seconds, errors, error reasons, its own CPU seconds) and
exits.  It exits too if its standard input closes before C{go}.
"""

from __future__ import annotations

import argparse
import json
import sys

from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver

from bench.tls_loops import (
    close_echoers,
    measure_handshakes,
    measure_messages,
    open_echoers,
)

READY = "ready"
GO = "go"


class Control(LineReceiver):
    """
    The conversation with the parent on standard input and output.

    @ivar go: fires when the parent says C{go}; fails if it hangs up.
    @ivar closed: fires once the connection is closed (and all written).
    """

    delimiter = b"\n"

    def __init__(self) -> None:
        self.go: Deferred = Deferred()
        self.closed: Deferred = Deferred()

    def lineReceived(self, line: bytes) -> None:
        if line.strip() == GO.encode("ascii") and not self.go.called:
            self.go.callback(None)

    def connectionLost(self, reason=None) -> None:
        if not self.go.called:
            self.go.errback(ConnectionDone("the benchmark hung up"))
        self.closed.callback(None)


async def _run(reactor, options) -> None:
    control = Control()
    stdio.StandardIO(control, reactor=reactor)
    limits = dict(duration=options.duration, max_count=options.max_count)
    echoers = []
    try:
        if options.kind == "messages":
            echoers = await open_echoers(
                reactor, options.port, options.pin, options.connections
            )
        control.sendLine(READY.encode("ascii"))
        await control.go
        if options.kind == "messages":
            measurement = await measure_messages(reactor, echoers, **limits)
        else:
            measurement = await measure_handshakes(
                reactor, options.port, options.pin,
                connections=options.connections, **limits,
            )
    finally:
        close_echoers(echoers)
    report = {
        "count": measurement.count,
        "seconds": measurement.seconds,
        "errors": measurement.errors,
        "error_reasons": measurement.error_reasons,
        "cpu": measurement.generator_cpu,
    }
    control.sendLine(json.dumps(report).encode("utf-8"))
    control.transport.loseConnection()
    await control.closed


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["handshakes", "messages"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pin", required=True, help="the certificate's SHA-256")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--max-count", type=int, required=True)
    options = parser.parse_args(argv)
    react(lambda reactor: Deferred.fromCoroutine(_run(reactor, options)))


if __name__ == "__main__":
    main(sys.argv[1:])
