"""
The classic scenario: salted-challenge authentications over TLS, a new
connection each, driven as an operator drives them.

The server runs as C{twistd -n suto} in its own process.  This process
plays both the operator (C{POST /v1/auth} on the admin socket, on a
connection of its own, as C{suto-admin auth} does) and the fleet: one
L{Device} per account, each on its own loopback address, answering the
server's hellos.  Each device
repeatedly has itself authenticated, one request at a time, so at most
C{devices} authentications are in flight.

First every device authenticates once with its password (the
C{SUTO_C_GET_SALTA} path), unmeasured, and keeps the salted hash as the
agent does; the measured phase then takes the cached-salt path a fleet
takes after its first login.  The latency of one authentication runs from
the admin request to the verdict in its answer.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from twisted.internet.defer import CancelledError, gatherResults, inlineCallbacks

from bench.admin_client import AdminClient
from bench.children import while_running
from bench.device import Device, device_address
from bench.loops import measure_workers
from bench.measurement import Measurement, Tally, add_counts
from bench.suto_server_process import (
    ServerSetup,
    prepare_server,
    start_server,
    wait_until_serving,
)
from suto_client.state import Account
from suto_client.tls import normalise_pin

#: Seconds the server may take to start answering.
START_TIMEOUT = 30.0

#: Seconds an admin request may take beyond the authentication timeout.
ADMIN_SLACK = 5.0


@dataclass(frozen=True)
class ClassicResult:
    """
    @ivar warmup: the unmeasured first authentication of every device.
    @ivar measured: the measured phase; C{count} is accepted
        authentications, C{latencies} their times.
    @ivar device_outcomes: how the devices saw their exchanges end, over
        both phases.
    """

    warmup: Measurement
    measured: Measurement
    device_outcomes: dict[str, int]


def _user(index: int) -> str:
    return f"bench{index:04d}"


def passwords_for(devices: int) -> dict[str, str]:
    """
    @return: a fresh random password for each of C{devices} accounts, by
        user name.
    """
    return {_user(index): secrets.token_urlsafe(16) for index in range(devices)}


def start_fleet(
    reactor, setup: ServerSetup, passwords: dict[str, str], timeout: float
) -> list[Device]:
    """
    Start one L{Device} per account of C{passwords}, each on its own
    loopback address, answering the hellos of the server of C{setup}.

    @param timeout: seconds each device has to connect back, and to
        complete its exchange.
    """
    pin = normalise_pin(setup.identity.pin)
    fleet = []
    for index, (user, password) in enumerate(passwords.items()):
        account = Account(
            user=user,
            server_host="127.0.0.1",
            server_port=setup.port,
            pin=pin,
            password=password,
        )
        device = Device(reactor, device_address(index), account, timeout)
        device.start()
        fleet.append(device)
    return fleet


#: Longest failure reason from the server kept in a report.
MAX_REASON = 100


def authenticator(
    reactor, admin: AdminClient, device: Device, tally: Tally, timeout: float
):
    """
    @return: a step that has C{device} authenticated once, records the
        outcome in C{tally}, and ends when the device is idle again (so
        the next hello is not ignored as arriving mid-exchange).
    """

    @inlineCallbacks
    def step():
        start = reactor.seconds()
        try:
            code, answer = yield admin.authenticate(
                device.account.user, device.target, timeout
            ).addTimeout(timeout + ADMIN_SLACK, reactor)
        except CancelledError:
            raise
        except Exception as error:
            tally.failed(f"admin request: {type(error).__name__}")
        else:
            verdict = answer.get("verdict")
            if code == 200 and verdict == "accepted":
                tally.succeeded(reactor.seconds() - start)
            elif code == 200:
                tally.failed(f"{verdict}: {answer.get('reason')}"[:MAX_REASON])
            else:
                tally.failed(f"HTTP {code}: {answer.get('error')}"[:MAX_REASON])
        yield device.idle()

    return step


def measure_authentications(
    reactor, server, admin: AdminClient, fleet: list[Device], timeout: float,
    *, duration: float, max_count: int,
):
    """
    Have every device of C{fleet} authenticate over and over, for
    C{duration} seconds or C{max_count} authentications, while C{server}
    runs.

    @return: a L{Deferred} firing with the L{Measurement}, as
        L{measure_workers}.
    """
    tally = Tally()
    return while_running(
        server,
        measure_workers(
            reactor,
            tally,
            [authenticator(reactor, admin, device, tally, timeout) for device in fleet],
            duration=duration,
            max_count=max_count,
            server_pid=server.pid,
        ),
    )


@inlineCallbacks
def run_classic(
    reactor,
    directory: str,
    *,
    devices: int,
    duration: float,
    max_auth: int,
    auth_timeout: float,
    profile: str | None = None,
):
    """
    Start a server, warm every device up, then authenticate for
    C{duration} seconds or C{max_auth} authentications, and stop the
    server.

    @param directory: an empty folder for the server's data.
    @param auth_timeout: seconds a device has to connect back, and to
        complete its exchange.
    @param profile: where the server writes a cProfile of its reactor
        thread, if anywhere.
    @return: a L{Deferred} firing with the L{ClassicResult}.
    """
    passwords = passwords_for(devices)
    setup = prepare_server(os.path.join(directory, "data"), passwords)
    server = start_server(reactor, setup, auth_timeout, profile)
    # A connection per request, as suto-admin makes (see AdminClient).
    admin = AdminClient(reactor, setup.admin_socket, devices, kept_alive=False)
    # Devices hash in the reactor's pool, as the agent does, with as many
    # threads as the server's hash pool has: neither side gets more of the
    # cores by having more threads.
    reactor.suggestThreadPoolSize(os.cpu_count() or 1)
    fleet: list[Device] = []
    try:
        yield wait_until_serving(reactor, admin, server, START_TIMEOUT)
        fleet.extend(start_fleet(reactor, setup, passwords, auth_timeout))
        warmup_tally = Tally()
        warmup_start = reactor.seconds()
        yield while_running(
            server,
            gatherResults(
                [
                    authenticator(reactor, admin, device, warmup_tally, auth_timeout)()
                    for device in fleet
                ],
                consumeErrors=True,
            ),
        )
        warmup = warmup_tally.measurement(reactor.seconds() - warmup_start)
        measured = yield measure_authentications(
            reactor, server, admin, fleet, auth_timeout,
            duration=duration, max_count=max_auth,
        )
    finally:
        yield gatherResults([device.stop() for device in fleet])
        yield admin.close()
        yield server.stop(reactor)
    return ClassicResult(
        warmup, measured, add_counts(device.outcomes for device in fleet)
    )
