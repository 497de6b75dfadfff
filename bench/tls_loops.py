"""
The client loops of the TLS and message ceilings: full TLS handshakes, and
request/response exchanges over open TLS connections, against the minimal
echo server of L{bench.echo_server}.  They run in the load client
processes of L{bench.load_client}.

The client side is configured as SUTO's agent is (pinned certificate,
TLS 1.2 or newer, a fresh OpenSSL connection each time, so every handshake
is a full one).  L{tls_endpoint} is also how simulated devices connect.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from bench.loops import measure_workers
from bench.measurement import Tally
from suto_client.tls import pinned_client_creator

#: Seconds one connection attempt, handshake or exchange may take.
STEP_TIMEOUT = 10.0

#: What each exchange sends: as long as SUTO's longest message, a
#: C{SUTO_CF_HASH_} line.
MESSAGE = b"SUTO_CF_HASH_" + b"x" * 106


def tls_endpoint(
    reactor,
    port: int,
    pin: str,
    bind_address: str | None = None,
    timeout: float = STEP_TIMEOUT,
):
    """
    @return: a client endpoint to C{127.0.0.1:port} over TLS that trusts
        only the certificate with fingerprint C{pin}, connecting from
        C{bind_address} if given, within C{timeout} seconds.
    """
    tcp = TCP4ClientEndpoint(
        reactor,
        "127.0.0.1",
        port,
        timeout=timeout,
        bindAddress=None if bind_address is None else (bind_address, 0),
    )
    return wrapClientTLS(pinned_client_creator(pin), tcp)


@implementer(IHandshakeListener)
class _Handshake(Protocol):
    """
    Closes the connection as soon as the TLS handshake has completed.

    @ivar closed: fires with whether the handshake completed, once the
        connection is closed.
    """

    def __init__(self) -> None:
        self.closed: Deferred = Deferred()
        self._completed = False

    def handshakeCompleted(self) -> None:
        self._completed = True
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        self.closed.callback(self._completed)


def measure_handshakes(
    reactor, port: int, pin: str, *, connections: int, duration: float, max_count: int
) -> Deferred:
    """
    Open, handshake and close TLS connections to the echo server, with
    C{connections} of them in flight at once.

    @return: a L{Deferred} firing with a L{Measurement} of completed
        handshakes.
    """
    endpoint = tls_endpoint(reactor, port, pin)
    tally = Tally()

    @inlineCallbacks
    def handshake():
        protocol = _Handshake()
        try:
            yield connectProtocol(endpoint, protocol).addTimeout(
                STEP_TIMEOUT, reactor
            )
            completed = yield protocol.closed.addTimeout(STEP_TIMEOUT, reactor)
        except Exception as error:
            if protocol.transport is not None:
                protocol.transport.abortConnection()
            if isinstance(error, CancelledError):
                raise
            tally.failed(type(error).__name__)
        else:
            if completed:
                tally.succeeded()
            else:
                tally.failed("closed before the handshake completed")

    return measure_workers(
        reactor,
        tally,
        [handshake] * connections,
        duration=duration,
        max_count=max_count,
        server_pid=None,
    )


class _Echoer(LineReceiver):
    """
    Sends one line at a time and waits for it to come back.
    """

    MAX_LENGTH = 1024

    def __init__(self) -> None:
        self._waiting: Deferred | None = None
        self._lost = False

    def exchange(self, line: bytes) -> Deferred:
        """
        @return: a L{Deferred} firing with the echoed line, or failing
            if the connection is or gets lost.
        """
        if self._lost:
            return fail(ConnectionDone("the connection was closed"))
        self._waiting = Deferred()
        self.sendLine(line)
        return self._waiting

    def lineReceived(self, line: bytes) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(line)

    def connectionLost(self, reason=None) -> None:
        self._lost = True
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.errback(reason)


@inlineCallbacks
def open_echoers(reactor, port: int, pin: str, connections: int):
    """
    Open C{connections} TLS connections to the echo server and complete
    one exchange on each (which completes its handshake).

    @return: a L{Deferred} firing with the connected L{_Echoer}s.
    """
    echoers = []
    try:
        for _ in range(connections):
            echoer = yield connectProtocol(
                tls_endpoint(reactor, port, pin), _Echoer()
            ).addTimeout(STEP_TIMEOUT, reactor)
            echoers.append(echoer)
            yield echoer.exchange(MESSAGE).addTimeout(STEP_TIMEOUT, reactor)
    except BaseException:
        close_echoers(echoers)
        raise
    return echoers


def close_echoers(echoers) -> None:
    """
    Close the connections of L{open_echoers}.
    """
    for echoer in echoers:
        echoer.transport.loseConnection()


def measure_messages(
    reactor, echoers, *, duration: float, max_count: int
) -> Deferred:
    """
    Exchange lines over all of C{echoers} at once, each waiting for its
    echo before sending again.

    @param echoers: from L{open_echoers}.
    @return: a L{Deferred} firing with a L{Measurement} of exchanges.
    """
    tally = Tally()

    def stepper(echoer):
        @inlineCallbacks
        def step():
            try:
                echoed = yield echoer.exchange(MESSAGE).addTimeout(
                    STEP_TIMEOUT, reactor
                )
            except Exception as error:
                echoer.transport.abortConnection()
                if isinstance(error, CancelledError):
                    raise
                tally.failed(type(error).__name__)
            else:
                if echoed == MESSAGE:
                    tally.succeeded()
                else:
                    tally.failed("echo differs")

        return step

    return measure_workers(
        reactor,
        tally,
        [stepper(echoer) for echoer in echoers],
        duration=duration,
        max_count=max_count,
        server_pid=None,
    )
