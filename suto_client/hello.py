# -*- test-case-name: tests.client.test_hello -*-
"""
The agent's UDP listener for server hellos and check packets.

A hello asks the agent to connect back and prove it knows the user's
password, so it is answered only when it comes from where that user's
server is: an agent that answered any hello would hand its final hash, and
with it an offline guessing target, to whoever on the network asked.  A
hello is acted on only if it is well formed, names a configured account,
and comes from that account's server address; while an authentication for
an account is running, further hellos for it are ignored.  Check packets
arrive on the same port and go to whoever decides how to answer them
(L{suto_client.checks.CheckResponder}).  Everything else is dropped
without a reply.  Every line logged about a datagram is paced per source
and reason (L{suto_server.core.throttle.PacedLog}): whoever can send datagrams must not
be able to fill the endpoint's log.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel

from suto_client.state import Account
from suto_server.core import wire
from suto_server.core.throttle import DEFAULT_LOG_INTERVAL, PacedLog


def same_host(source: str, configured: str) -> bool:
    """
    Is C{source}, a datagram's source address, the C{configured} server
    address?  An IPv4 address seen through an IPv6 socket
    (C{::ffff:192.0.2.1}) is its IPv4 self.
    """
    try:
        seen = ipaddress.ip_address(source)
        expected = ipaddress.ip_address(configured)
    except ValueError:
        return False
    if seen.version == 6 and seen.ipv4_mapped is not None:
        seen = seen.ipv4_mapped
    return seen == expected


class HelloListener(DatagramProtocol):
    """
    Filters hellos and starts authentications for the ones to answer, and
    sends the answers to check packets.
    """

    log = Logger()

    def __init__(
        self,
        accounts_provider: Callable[[], dict[str, Account]],
        on_hello: Callable[[Account, wire.Hello], Deferred | None],
        on_check: Callable[[wire.Check, str], bytes | None] | None = None,
        *,
        clock,
        log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """
        @param accounts_provider: returns the configured accounts, keyed
            by user; called for each hello, so changes to the accounts
            apply at once.
        @param on_hello: starts an authentication for an accepted hello.
            If it returns a L{Deferred}, the account counts as busy until
            that fires, and its hellos are ignored meanwhile.
        @param on_check: called with each well-formed check packet and
            its source address; returns the datagram to answer with, or
            L{None} to drop it.  Without it, checks are dropped.
        @param clock: the L{IReactorTime} that paces the log lines about
            datagrams.
        @param log_interval: the least seconds between two log lines
            about datagrams from one source for one reason: a hello is a
            datagram, anyone can send it from any address, and must not
            fill the endpoint's log.
        """
        self._accounts_provider = accounts_provider
        self._on_hello = on_hello
        self._on_check = on_check
        self._running: set[str] = set()
        self._paced = PacedLog(clock, log_interval)

    def datagramReceived(self, datagram: bytes, addr) -> None:
        source = addr[0]
        try:
            message = wire.parse_datagram(datagram)
        except wire.ProtocolError as e:
            self._paced.emit(
                self.log,
                LogLevel.debug,
                (source, "malformed", e.code),
                "dropped a malformed datagram from {source}: {code}",
                source=source,
                code=e.code,
            )
            return
        if isinstance(message, wire.Hello):
            self._hello_received(message, source)
        elif isinstance(message, wire.Check) and self._on_check is not None:
            answer = self._on_check(message, source)
            if answer is not None:
                self.transport.write(answer, addr)
        else:
            kind = type(message).__name__
            self._paced.emit(
                self.log,
                LogLevel.debug,
                (source, "unexpected", kind),
                "dropped a {kind} from {source}",
                kind=kind,
                source=source,
            )

    def _hello_received(self, hello: wire.Hello, source: str) -> None:
        account = self._accounts_provider().get(hello.user)
        if account is None:
            self._paced.emit(
                self.log,
                LogLevel.debug,
                (source, "unknown"),
                "dropped a hello for unknown user {user} from {source}",
                user=hello.user,
                source=source,
            )
        elif not same_host(source, account.server_host):
            self._paced.emit(
                self.log,
                LogLevel.info,
                (source, "elsewhere"),
                "dropped a hello for {user} from {source}, which is not "
                "its server {server}",
                user=hello.user,
                source=source,
                server=account.server_host,
            )
        elif hello.user in self._running:
            self._paced.emit(
                self.log,
                LogLevel.debug,
                (source, "busy"),
                "ignored a hello for {user}: an authentication is running",
                user=hello.user,
                source=source,
            )
        else:
            self._start(account, hello, source)

    def _start(self, account: Account, hello: wire.Hello, source: str) -> None:
        # The source is the account's server, but a datagram's source
        # address can be forged: the line is paced all the same.
        self._paced.emit(
            self.log,
            LogLevel.info,
            (source, "accepted", hello.user),
            "hello for {user} from {server} ({host})",
            user=hello.user,
            server=account.server_host,
            host=hello.host,
        )
        running = self._on_hello(account, hello)
        if running is None:
            return
        user = hello.user
        self._running.add(user)

        def done(result):
            self._running.discard(user)
            return result

        running.addBoth(done)
