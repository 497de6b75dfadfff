# -*- test-case-name: tests.net.test_discovery -*-
"""
The UDP hello: how the server tells a device "connect back to me now".

A hello target names where the datagram goes and, implicitly, which
source addresses may answer it:

  - C{192.0.2.7} or C{192.0.2.7:2020} or C{[2001:db8::7]:2020}: one host;
    only that address may connect back.
  - C{192.0.2.0/24}: the subnet's directed broadcast address; any host in
    the subnet may connect back.
  - C{255.255.255.255} (SUTO 1.3.2's limited broadcast) needs an explicit
    C{accept} network, since the server cannot know which hosts it reached.

Several targets may be joined with commas.  Only subnet and broadcast
targets turn on C{SO_BROADCAST}.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.defer import gatherResults, maybeDeferred
from twisted.internet.protocol import DatagramProtocol

from suto_server.core import wire

DEFAULT_HELLO_PORT = 2020

_PORT = re.compile(r"[0-9]{1,5}")

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@dataclass(frozen=True)
class HelloTarget:
    """
    Where one hello goes and who may answer it.
    """

    address: str
    port: int
    accept_from: tuple
    broadcast: bool = False

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_targets(
    text: str, default_port: int = DEFAULT_HELLO_PORT, accept: str | None = None
) -> tuple[HelloTarget, ...]:
    """
    Parse a comma-separated target list (see the module docstring).

    @param accept: networks allowed to answer a limited broadcast,
        comma-separated.
    @raise ValueError: with a message naming the bad item.
    """
    targets = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError("empty hello target")
        targets.append(_parse_target(item, default_port, accept))
    return tuple(targets)


def _parse_target(item: str, default_port: int, accept: str | None) -> HelloTarget:
    host, port = _split_port(item, default_port)
    if "/" in host:
        network = ipaddress.ip_network(host, strict=False)
        if network.version != 4 or network.num_addresses < 4:
            raise ValueError(
                f"hello target {item!r}: a subnet target must be an IPv4 "
                f"network of at least 4 addresses (IPv6 has no broadcast)"
            )
        return HelloTarget(
            str(network.broadcast_address), port, (network,), broadcast=True
        )
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"hello target {item!r} is not an IP address or network"
        ) from None
    if address == _LIMITED_BROADCAST:
        if not accept:
            raise ValueError(
                "hello target 255.255.255.255 reaches unknown hosts: name the "
                "networks allowed to answer it"
            )
        networks = tuple(
            ipaddress.ip_network(net.strip(), strict=False)
            for net in accept.split(",")
        )
        return HelloTarget(str(address), port, networks, broadcast=True)
    network = ipaddress.ip_network(address)
    return HelloTarget(str(address), port, (network,))


def _split_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"hello target {item!r} is malformed")
        port_text = rest[1:] if rest else None
    elif item.count(":") == 1:
        host, port_text = item.split(":")
    else:
        host, port_text = item, None
    if port_text is None:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"hello target {item!r} has a bad port")
    return host, int(port_text)


class HelloSender(DatagramProtocol):
    """
    Sends hellos from one UDP socket.  It listens for nothing: any
    datagram that arrives on its port is ignored.

    Sending logs nothing: whoever asks for a hello says what it is for
    (the admin request's line names the user and its targets) and reports
    a hello that could not be sent, which raises L{OSError} here.  A line
    per hello repeated that, at the cost of one more formatted and
    written event per classic authentication.
    """

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname

    def datagramReceived(self, datagram, address) -> None:
        "Hellos are one-way; a reply here is noise."

    def send_hello(self, user: str, target: HelloTarget) -> None:
        """
        Send C{SUTO_<user>@<host>+} to C{target}.
        """
        payload = wire.encode_hello(wire.Hello(user, self._hostname))
        if target.broadcast:
            self.transport.setBroadcastAllowed(True)
        self.transport.write(payload, (target.address, target.port))


class HelloService(Service):
    """
    Owns the hello sockets: one per address family, bound on first use,
    closed when the service stops.

    @param hostname: the name hellos carry.
    @param interface: the local IPv4 address to send from (C{""} for any).
    @raise ValueError: C{hostname} cannot travel in a hello; found when
        the server is built, not at the first authentication.
    """

    def __init__(self, reactor, hostname: str, interface: str = "") -> None:
        if not wire.is_valid_host(hostname):
            raise ValueError(
                f"the host name {hostname!r} cannot travel in a SUTO hello "
                f"(1 to 253 of A-Z a-z 0-9 . -); name the server with --hostname"
            )
        self._reactor = reactor
        self._hostname = hostname
        self._interface = interface
        self._ports: dict[int, object] = {}
        self._senders: dict[int, HelloSender] = {}

    def send_hello(self, user: str, target: HelloTarget) -> None:
        """
        Send the hello for C{user} to C{target}.
        """
        family = 6 if ":" in target.address else 4
        if family not in self._senders:
            sender = HelloSender(self._hostname)
            interface = "::" if family == 6 else (self._interface or "0.0.0.0")
            self._ports[family] = self._reactor.listenUDP(
                0, sender, interface=interface
            )
            self._senders[family] = sender
        self._senders[family].send_hello(user, target)

    def stopService(self):
        super().stopService()
        ports, self._ports, self._senders = self._ports, {}, {}
        return gatherResults(
            [maybeDeferred(port.stopListening) for port in ports.values()]
        )
