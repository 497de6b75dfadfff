"""
The machine's own ceilings, measured in the same run as the server so the
ratio between them holds even though absolute figures move between runs.

  - password: sha512-crypt verifications per second, one thread and one
    thread per core (L{bench.password_ceiling});
  - TLS: full handshakes per second against a minimal echo server in a
    separate process (L{bench.echo_server}), from one load client process
    per core (L{bench.load_client}), so that the machine, not one Python
    process, is what runs out;
  - message: line exchanges per second over as many open TLS connections
    as the scenario has devices, from the same load clients.

An authentication costs at least one verification and one handshake, so
the most the server could sustain is the I{combined} ceiling
C{1 / (1/password + 1/tls)}.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.threads import deferToThread

from bench.children import Child, python_argv, spawn
from bench.cpu import CpuMeter
from bench.load_client import GO, READY
from bench.measurement import Measurement
from bench.password_ceiling import measure_crypt_rate
from bench.suto_server_process import Identity, make_identity

#: Seconds the echo server may live beyond the two measurements it
#: serves, whatever happens to the benchmark.
ECHO_SLACK = 60.0


@dataclass(frozen=True)
class Ceilings:
    """
    @ivar crypt_one: verifications on one thread.
    @ivar crypt_all: verifications on one thread per core.
    @ivar threads: how many threads that was.
    @ivar handshakes: full TLS handshakes.
    @ivar messages: exchanges over open TLS connections.
    @ivar connections: how many connections were in flight at once.
    """

    crypt_one: Measurement
    crypt_all: Measurement
    threads: int
    handshakes: Measurement
    messages: Measurement
    connections: int

    @property
    def password(self) -> float:
        """
        Verifications per second on all cores.
        """
        return self.crypt_all.per_second

    @property
    def scaling(self) -> float:
        """
        How many times one thread's rate all cores reach.
        """
        one = self.crypt_one.per_second
        return self.crypt_all.per_second / one if one else 0.0

    @property
    def tls(self) -> float:
        """
        Full handshakes per second.
        """
        return self.handshakes.per_second

    @property
    def combined(self) -> float:
        """
        C{1 / (1/password + 1/tls)}: authentications per second if each
        cost one verification and one handshake of the machine's time.
        """
        return harmonic(self.password, self.tls)


def harmonic(*rates: float) -> float:
    """
    The rate of doing one of each operation in turn: C{1 / sum(1/rate)}.

    @return: 0 if any rate is 0.
    """
    if not rates or any(rate <= 0 for rate in rates):
        return 0.0
    return 1.0 / sum(1.0 / rate for rate in rates)


def start_echo_server(reactor, identity: Identity, lifetime: float) -> Child:
    """
    Start the echo server in its own process, with C{identity}'s key and
    certificate; its first line is its port.

    @param lifetime: seconds after which it exits by itself.
    """
    return spawn(
        reactor,
        "the echo server",
        python_argv(
            "-m", "bench.echo_server",
            "--key", identity.key,
            "--cert", identity.cert,
            "--lifetime", str(lifetime),
        ),
    )


def shares(total: int, parts: int) -> list[int]:
    """
    Split C{total} into at most C{parts} positive shares, as even as can be.
    """
    parts = max(1, min(parts, total))
    return [
        total // parts + (1 if index < total % parts else 0) for index in range(parts)
    ]


class LoadClientError(Exception):
    """
    A load client answered something other than what it should.
    """


@inlineCallbacks
def measure_in_clients(
    reactor,
    kind: str,
    echo: Child,
    port: int,
    pin: str,
    *,
    processes: int,
    connections: int,
    duration: float,
    max_count: int,
):
    """
    Run one C{kind} loop (C{handshakes} or C{messages}) from C{processes}
    load client processes at once, C{connections} in flight in all, and
    add their results up.  The clients start together: each says it is
    ready, then all are told to go.

    @param echo: the echo server, whose CPU time is read meanwhile.
    @return: a L{Deferred} firing with the combined L{Measurement}; its
        C{generator_cpu} is the clients' CPU together.
    @raise LoadClientError: (through the L{Deferred}) a client's answers
        were not as expected.
    """
    parts = shares(connections, processes)
    each_count = math.ceil(max_count / len(parts))
    clients = [
        spawn(
            reactor,
            f"load client {index + 1}",
            python_argv(
                "-m", "bench.load_client", kind,
                "--port", str(port),
                "--pin", pin,
                "--connections", str(share),
                "--duration", str(duration),
                "--max-count", str(each_count),
            ),
        )
        for index, share in enumerate(parts)
    ]
    try:
        ready = yield gatherResults(
            [client.line(0) for client in clients], consumeErrors=True
        )
        if any(line != READY for line in ready):
            raise LoadClientError(f"a load client was not ready: {ready!r}")
        meter = CpuMeter(echo.pid)
        for client in clients:
            client.send_line(GO)
        lines = yield gatherResults(
            [client.line(1) for client in clients], consumeErrors=True
        )
        cpu = meter.read()
    finally:
        yield gatherResults([client.stop(reactor) for client in clients])
    try:
        return Measurement.of_reports([json.loads(line) for line in lines], cpu)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise LoadClientError(f"a load client's report is malformed: {error}") from None


@inlineCallbacks
def measure_ceilings(
    reactor, directory: str, *, connections: int, duration: float, max_count: int
):
    """
    Measure every ceiling, one after the other, each for C{duration}
    seconds or C{max_count} operations.

    @param directory: where the echo server's certificate is made.
    @param connections: TLS connections in flight at once.
    @return: a L{Deferred} firing with the L{Ceilings}.
    """
    threads = os.cpu_count() or 1
    crypt_one = yield deferToThread(measure_crypt_rate, 1, duration, max_count)
    crypt_all = yield deferToThread(measure_crypt_rate, threads, duration, max_count)
    identity = make_identity(directory)
    echo = start_echo_server(reactor, identity, 2 * duration + ECHO_SLACK)
    try:
        announced = yield echo.line(0)
        if not announced.isdigit():
            raise echo.failure(f"announced {announced[:40]!r} instead of its port")
        port = int(announced)
        measurements = {}
        for kind in ("handshakes", "messages"):
            measurements[kind] = yield measure_in_clients(
                reactor,
                kind,
                echo,
                port,
                identity.pin,
                processes=threads,
                connections=connections,
                duration=duration,
                max_count=max_count,
            )
    finally:
        yield echo.stop(reactor)
    return Ceilings(
        crypt_one,
        crypt_all,
        threads,
        measurements["handshakes"],
        measurements["messages"],
        connections,
    )
