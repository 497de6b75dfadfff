# -*- test-case-name: tests.net.test_reuseport -*-
"""
A TCP listener that shares its port with the listeners of other
processes (C{SO_REUSEPORT}), so that several C{twistd suto} processes on
one host serve one TLS port, and the kernel spreads the new connections
over them.

Twisted's TCP port sets no such option and has no hook to set one before
it binds; so L{ReusePortEndpoint} makes and binds the socket itself and
hands the listening socket to the reactor through the public
L{IReactorSocket.adoptStreamPort}, which serves it as any TCP port.
(Linux has had the option since 3.9, and SUTO's deployment is Linux's.)
Linux lets only processes of the same user join a port, so a process of
another user cannot take a share of SUTO's connections; one of the same
user could, which is one more reason SUTO runs as a user of its own.
"""

from __future__ import annotations

import socket

from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import execute
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A TCP server endpoint whose port other processes may listen on too.

    @param reactor: an L{IReactorSocket}.
    @param interface: the address to bind; an IPv6 literal listens on
        IPv6, C{""} on every IPv4 address.
    """

    def __init__(self, reactor, port: int, backlog: int = 50, interface: str = ""):
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = interface

    def listen(self, protocolFactory):
        """
        @return: a L{Deferred} firing with the L{IListeningPort}, or
            failing with L{CannotListenError}.
        """
        return execute(self._listen, protocolFactory)

    def _listen(self, protocolFactory):
        family = socket.AF_INET6 if isIPv6Address(self._interface) else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM)
        try:
            # As Twisted's own TCP port does, so a restart binds at once.
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listening.bind((self._interface, self._port))
            listening.listen(self._backlog)
            listening.setblocking(False)
            return self._reactor.adoptStreamPort(
                listening.fileno(), family, protocolFactory
            )
        except OSError as error:
            raise CannotListenError(self._interface, self._port, error) from None
        finally:
            # The reactor holds a duplicate of the descriptor.
            listening.close()
