"""
Simulated endpoints: each one answers the server's hellos for one account
as SUTO's agent does, from a loopback address of its own.

The server matches a connection to its pending request by the
connection's source address, and refuses two pending requests that would
accept the same address; so devices authenticating at the same time must
connect from different addresses.  Linux routes all of 127.0.0.0/8 to the
loopback interface, so device I{n} binds both its hello socket and its
outgoing connections to its own 127.x.y.z.

The hello filtering is the agent's own L{HelloListener}; the exchange is
the agent's own L{ClassicClientProtocol}, over an endpoint that binds the
device's address, connecting again as the agent does when the server turns
the connection away (L{connect_back}).  After its first accepted exchange a device keeps the
salted hash and forgets the password, as the agent does, so later
exchanges take the cached-salt (C{SUTO_C_GET_RSALT}) path: one crypt on
the device per authentication, with the server's fresh random salt.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import connectProtocol
from twisted.internet.threads import deferToThreadPool

from bench.tls_loops import tls_endpoint
from suto_client.classic_machine import Outcome
from suto_client.connectback import connect_back
from suto_client.hello import HelloListener
from suto_client.protocol import AuthResult, ClassicClientProtocol, derive_response
from suto_client.state import Account
from suto_server.core import wire

_LOOPBACK = ipaddress.IPv4Address("127.0.0.0")

#: Host addresses used in each /24 of the loopback range: .1 to .254.
_HOSTS_PER_BLOCK = 254

#: The most devices one run may simulate.
MAX_DEVICES = 4000


def device_address(index: int) -> str:
    """
    The loopback address of device C{index} (from 0): 127.0.0.2 onwards
    (127.0.0.1 is the server's), skipping addresses that end in .0 or
    .255.

    @raise ValueError: C{index} is out of range.
    """
    if not 0 <= index < MAX_DEVICES:
        raise ValueError(f"device index must be from 0 to {MAX_DEVICES - 1}")
    block, host = divmod(index + 1, _HOSTS_PER_BLOCK)
    return str(_LOOPBACK + block * 256 + host + 1)


class Device:
    """
    One simulated endpoint.

    @ivar account: the credentials it answers with; after the first
        accepted exchange, the salted hash instead of the password.
    @ivar outcomes: how many of its exchanges ended each way, from the
        device's side.
    @ivar connections: how many connections it made to answer hellos,
        those made again after a turn-away included.
    """

    def __init__(
        self, reactor, address: str, account: Account, timeout: float
    ) -> None:
        """
        @param reactor: provides UDP, TCP, time, and the thread pool the
            device's crypts run in (as the agent's do).
        @param address: the loopback address the device uses.
        @param account: a TLS account whose server is on 127.0.0.1.
        @param timeout: seconds allowed for connecting, and then for the
            exchange.
        """
        self.address = address
        self.account = account
        self.outcomes: dict[str, int] = {}
        self.connections = 0
        self._random = random.Random()
        self._reactor = reactor
        self._timeout = timeout
        self._endpoint = tls_endpoint(
            reactor, account.server_port, account.pin, address, timeout
        )
        self._port = None
        self._running: Deferred | None = None
        self._idle_waiters: list[Deferred] = []

    def start(self) -> None:
        """
        Listen for hellos on an ephemeral UDP port of the device's address.
        """
        listener = HelloListener(self._accounts, self._answer, clock=self._reactor)
        self._port = self._reactor.listenUDP(0, listener, interface=self.address)

    @property
    def target(self) -> str:
        """
        Where the server sends this device's hellos (C{address:port}).
        """
        return f"{self.address}:{self._port.getHost().port}"

    def stop(self) -> Deferred:
        """
        Stop listening for hellos.
        """
        port, self._port = self._port, None
        return succeed(None) if port is None else maybeDeferred(port.stopListening)

    def idle(self) -> Deferred:
        """
        @return: a L{Deferred} firing once no exchange is running (at once
            if none is).
        """
        if self._running is None:
            return succeed(None)
        waiter: Deferred = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _accounts(self) -> dict[str, Account]:
        return {self.account.user: self.account}

    def _answer(self, account: Account, hello: wire.Hello) -> Deferred:
        self._running = connect_back(
            lambda: self._exchange(account), self._reactor, self._timeout, self._random
        )
        return self._running.addCallback(self._ended)

    def _exchange(self, account: Account) -> Deferred:
        self.connections += 1
        return exchange(self._reactor, self._endpoint, account, self._timeout)

    def _ended(self, result: AuthResult) -> AuthResult:
        key = result.outcome.value
        if result.outcome is not Outcome.ACCEPTED:
            key = f"{key}: {result.reason}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if result.outcome is Outcome.ACCEPTED and result.salted_hash is not None:
            self.account = dataclasses.replace(
                self.account,
                password=None,
                salt=result.learned_salt,
                salted_hash=result.salted_hash,
            )
        self._running = None
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        return result


def exchange(reactor, endpoint, account: Account, timeout: float) -> Deferred:
    """
    Connect through C{endpoint} and answer the server's challenge for
    C{account}, computing the response in the reactor's thread pool.

    @return: a L{Deferred} firing with the L{AuthResult}; it never fails.
    """

    def derive(account, salt, rsalt):
        return deferToThreadPool(
            reactor, reactor.getThreadPool(), derive_response, account, salt, rsalt
        )

    protocol = ClassicClientProtocol(
        account, wire.Framing.FRAMED, reactor, timeout, derive
    )
    attempt = connectProtocol(endpoint, protocol)
    attempt.addErrback(protocol.connection_failed)
    return protocol.finished
