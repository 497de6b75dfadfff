"""
The enrollment scenario: IT opens a window through the admin API, the
endpoint agent runs the real enrollment conversation over TLS, and the
server stores the profile with its fingerprint hash and first key.

The server runs as C{twistd -n suto} in its own process, with no
accounts: every enrollment is for a user of its own, enrolled once.  This
process plays IT (C{POST /v1/enroll} on the admin socket, as
C{suto-admin enroll} does, which answers with the one-time password) and
the endpoints (L{suto_client.enrollment.enroll}, the function the agent's
C{enroll} command runs, with a fingerprint source that reads fresh random
data for each endpoint).  Each worker enrolls one endpoint at a time, so
at most C{devices} enrollments are in flight.

An enrollment costs four sha512-crypts on this machine: the server hashes
the one-time password when the window opens and checks the response; the
endpoint computes C{crypt(password, salt)} (its keys are derived from it)
and the response.  The latency runs from the admin request to the
endpoint's check that the server confirmed the same first key.
"""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass

from twisted.internet.defer import CancelledError, inlineCallbacks
from zope.interface import implementer

from bench.admin_client import AdminClient
from bench.children import while_running
from bench.classic import ADMIN_SLACK, MAX_REASON, START_TIMEOUT
from bench.loops import Budget, measure_workers, run_workers
from bench.measurement import Measurement, Tally
from bench.suto_server_process import (
    prepare_server,
    start_server,
    wait_until_serving,
)
from suto_client.enrollment import enroll
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.fingerprint import IFingerprintSource
from suto_client.tls import normalise_pin

#: The location every window is opened at: the endpoints connect from it.
ENDPOINT_ADDRESS = "127.0.0.1"

#: Crypts one enrollment costs the machine (two on each side).
CRYPTS_PER_ENROLLMENT = 4

#: Crypts one enrollment costs the server.
SERVER_CRYPTS_PER_ENROLLMENT = 2


@implementer(IFingerprintSource)
class FreshMachineId:
    """
    A machine ID drawn once per endpoint, so every profile's fingerprint
    hash is different, as a fleet's are.
    """

    name = "machine-id"

    def __init__(self) -> None:
        self._value = secrets.token_hex(16)

    def read(self) -> str:
        return self._value


@dataclass(frozen=True)
class EnrollmentResult:
    """
    @ivar warmup: the unmeasured first enrollment of every worker.
    @ivar measured: the measured phase; C{count} is completed
        enrollments, C{latencies} their times.
    @ivar window_latencies: seconds the admin API took to open each
        measured window (it hashes the one-time password first).
    """

    warmup: Measurement
    measured: Measurement
    window_latencies: tuple[float, ...]


def _enroller(reactor, admin, port, pin, users, tally, windows, timeout):
    """
    @return: a step that opens a window for the next user and enrolls an
        endpoint in it, recording the outcome in C{tally} and the time the
        window took to open in C{windows}.
    """

    @inlineCallbacks
    def step():
        user = next(users)
        start = reactor.seconds()
        try:
            code, answer = yield admin.call(
                b"POST",
                b"/v1/enroll",
                {"user": user, "location": ENDPOINT_ADDRESS, "timeout": 120},
            ).addTimeout(timeout + ADMIN_SLACK, reactor)
        except CancelledError:
            raise
        except Exception as error:
            tally.failed(f"admin request: {type(error).__name__}")
            return
        if code != 200:
            tally.failed(f"HTTP {code}: {answer.get('error')}"[:MAX_REASON])
            return
        windows.append(reactor.seconds() - start)
        result = yield enroll(
            reactor,
            host="127.0.0.1",
            port=port,
            pin=pin,
            user=user,
            password=answer["password"],
            sources=[FreshMachineId()],
            timeout=timeout,
        )
        if result.outcome is EnrollOutcome.ENROLLED:
            tally.succeeded(reactor.seconds() - start)
        else:
            tally.failed(f"{result.outcome.value}: {result.reason}"[:MAX_REASON])

    return step


@inlineCallbacks
def run_enrollment(
    reactor,
    directory: str,
    *,
    devices: int,
    duration: float,
    max_enroll: int,
    timeout: float,
):
    """
    Start a server with no accounts, have every worker enroll one endpoint
    unmeasured, then enroll for C{duration} seconds or C{max_enroll}
    enrollments, and stop the server.

    @param directory: an empty folder for the server's data.
    @param devices: enrollments in flight at once.
    @param timeout: seconds an enrollment (admin request, then the
        conversation) may take.
    @return: a L{Deferred} firing with the L{EnrollmentResult}.
    """
    setup = prepare_server(os.path.join(directory, "data"), {})
    server = start_server(reactor, setup, timeout)
    admin = AdminClient(reactor, setup.admin_socket, devices)
    # The endpoints hash in the reactor's pool, as the agent does, with as
    # many threads as the server's hash pool has.
    reactor.suggestThreadPoolSize(os.cpu_count() or 1)
    users = (f"enroll{index:07d}" for index in itertools.count())
    try:
        yield wait_until_serving(reactor, admin, server, START_TIMEOUT)
        pin = normalise_pin(setup.identity.pin)

        def steps(tally, windows):
            return [
                _enroller(
                    reactor, admin, setup.port, pin, users, tally, windows, timeout
                )
                for _ in range(devices)
            ]

        warmup_tally = Tally()
        warmup_start = reactor.seconds()
        yield while_running(
            server,
            run_workers(
                Budget(reactor.seconds, duration + timeout, devices),
                steps(warmup_tally, []),
            ),
        )
        warmup = warmup_tally.measurement(reactor.seconds() - warmup_start)
        measured_tally = Tally()
        windows: list[float] = []
        measured = yield while_running(
            server,
            measure_workers(
                reactor,
                measured_tally,
                steps(measured_tally, windows),
                duration=duration,
                max_count=max_enroll,
                server_pid=server.pid,
            ),
        )
    finally:
        yield admin.close()
        yield server.stop(reactor)
    return EnrollmentResult(warmup, measured, tuple(windows))
