# -*- test-case-name: tests.audit.test_sinks -*-
"""
Alerts as syslog messages (RFC 5424), one datagram each, to the local
syslog daemon's socket (C{unix:/dev/log}) or to a collector over UDP
(C{udp:HOST:PORT}).

The sink holds one unconnected datagram socket while it runs and sends
each alert to the address as it comes, so a syslog daemon that restarts
(and makes its socket anew) is found again by the next alert.  A datagram
is sent without waiting: one the socket cannot take at once is dropped and
logged, since a syslog daemon that does not read must not hold up
authentication.  The message is the alert's JSON, in ASCII, under the
facility C{auth} and the severity C{warning}; its MSGID is the alert type.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.error import MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from suto_server.audit.interfaces import IAlertSink

#: RFC 5424 facility 4, security/authorization messages.
FACILITY_AUTH = 4
#: RFC 5424 severity 4, warning.
SEVERITY_WARNING = 4
#: The APP-NAME of every message.
APP_NAME = "suto"
#: Longest field RFC 5424 allows in HOSTNAME.
_MAX_HOSTNAME = 255
#: Longest field RFC 5424 allows in MSGID.
_MAX_MSGID = 32


class SyslogAddressError(ValueError):
    """
    A syslog address is not C{unix:PATH} or C{udp:HOST:PORT}.
    """


@dataclass(frozen=True)
class SyslogAddress:
    """
    Where syslog messages go.

    @ivar path: the UNIX datagram socket's path, or L{None} for UDP.
    @ivar host: the collector's IP address, for UDP.
    @ivar port: the collector's UDP port.
    """

    path: str | None = None
    host: str | None = None
    port: int | None = None

    def describe(self) -> str:
        """
        @return: the address as L{parse_address} reads it.
        """
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"udp:{host}:{self.port}"


def parse_address(text: str) -> SyslogAddress:
    """
    Read C{unix:/dev/log}, C{udp:192.0.2.7:514} or C{udp:[2001:db8::7]:514}.
    The host must be an IP address: a name would mean a DNS lookup on the
    way of every alert.

    @raise SyslogAddressError: C{text} is none of those.
    """
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest.startswith("/") and rest.isprintable():
        return SyslogAddress(path=rest)
    if kind == "udp":
        host, _, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if (
            address is not None
            and port.isascii()
            and port.isdigit()
            and 0 < int(port) < 65536
        ):
            return SyslogAddress(host=str(address), port=int(port))
    raise SyslogAddressError(
        f"{text!r} is not a syslog address like unix:/dev/log or "
        f"udp:127.0.0.1:514"
    )


def _hostname(name: str) -> str:
    """
    @return: C{name} if RFC 5424 allows it as HOSTNAME (1 to 255 printable
        ASCII characters, no space), else its NILVALUE C{-}.
    """
    if (
        0 < len(name) <= _MAX_HOSTNAME
        and name.isascii()
        and name.isprintable()
        and " " not in name
    ):
        return name
    return "-"


def format_message(alert, hostname: str, pid: int) -> bytes:
    """
    @return: the RFC 5424 message of C{alert}: C{<36>1 TIMESTAMP HOSTNAME
        suto PID TYPE - JSON}.
    """
    timestamp = (
        datetime.datetime.fromtimestamp(alert.time, datetime.timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )
    header = (
        f"<{FACILITY_AUTH * 8 + SEVERITY_WARNING}>1 {timestamp} "
        f"{_hostname(hostname)} {APP_NAME} {pid} {alert.type[:_MAX_MSGID]} -"
    )
    body = json.dumps(alert.to_json(), sort_keys=True)
    return f"{header} {body}".encode("ascii")


class _Sender(DatagramProtocol):
    """
    The sink's socket; it only sends.
    """


@implementer(IAlertSink)
class SyslogSink(Service):
    """
    Sends every alert to a syslog address while the service runs.

    @param reactor: provides C{listenUDP} and C{listenUNIXDatagram}.
    @param address: a L{SyslogAddress}.
    @param hostname: the HOSTNAME of the messages (this host's name
        unless given).
    """

    log = Logger()

    def __init__(self, reactor, address: SyslogAddress, hostname=None) -> None:
        self._reactor = reactor
        self._address = address
        self._hostname = socket.gethostname() if hostname is None else hostname
        self._sender = _Sender()
        self._port = None

    def startService(self) -> None:
        super().startService()
        if self._address.path is not None:
            self._port = self._reactor.listenUNIXDatagram(None, self._sender)
        else:
            interface = "::" if ":" in self._address.host else "0.0.0.0"
            self._port = self._reactor.listenUDP(
                0, self._sender, interface=interface
            )

    def stopService(self):
        super().stopService()
        port, self._port = self._port, None
        return port.stopListening()

    def deliver(self, alert) -> None:
        """
        See L{IAlertSink.deliver}.  Before the service starts and after it
        stops there is no socket: the alert is dropped and logged.
        """
        if self._port is None:
            self.log.error(
                "syslog sink {address} is not running; dropped a "
                "{alert_type} alert",
                address=self._address.describe(),
                alert_type=alert.type,
            )
            return
        message = format_message(alert, self._hostname, os.getpid())
        if self._address.path is not None:
            destination = self._address.path
        else:
            destination = (self._address.host, self._address.port)
        try:
            self._sender.transport.write(message, destination)
        except (OSError, MessageLengthError):
            self.log.failure(
                "could not send a {alert_type} alert to syslog at {address}",
                alert_type=alert.type,
                address=self._address.describe(),
            )
