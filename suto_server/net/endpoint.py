# -*- test-case-name: tests.net.test_tls -*-
"""
The C{suto-tls} endpoint type, and the reading of an operator's listener
description.

Operators describe a listener with an ordinary Twisted endpoint string,
C{ssl:2021:privateKey=server.key:certKey=server.crt}.  L{server_endpoint}
hands such strings to L{SutoTLSParser} (endpoint type C{suto-tls}) instead
of Twisted's stock C{ssl} parser, which takes the same arguments but also
admits legacy cipher suites and cannot reload its certificate; the
listener it builds is L{suto_server.net.tls}'s.
"""

from __future__ import annotations

from twisted.internet.abstract import isIPv6Address
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import (
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer

from suto_server.net.reuseport import ReusePortEndpoint
from suto_server.net.tls import (
    ReloadableServerTLS,
    TLSConfigurationError,
    TLSServerEndpoint,
)

_MAX_INTERFACE = 255
_MAX_BACKLOG = 65535
_YES_NO = {"yes": True, "no": False}


def _bounded_int(value, name: str, low: int, high: int) -> int:
    """
    @raise TLSConfigurationError: C{value} is not a decimal integer from
        C{low} to C{high}.
    """
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise TLSConfigurationError(f"{name} must be a number, not {text!r}")
    number = int(text)
    if not low <= number <= high:
        raise TLSConfigurationError(f"{name} must be from {low} to {high}")
    return number


@implementer(IPlugin, IStreamServerEndpointStringParser)
class SutoTLSParser:
    """
    Endpoint strings C{suto-tls:PORT:privateKey=...:certKey=...}: the
    arguments of Twisted's C{ssl} endpoint plus C{caCerts},
    C{requireClientCert} and C{crlFile} for client certificates, and
    C{reusePort} for several processes on one port.  C{sslmethod} and
    C{dhParameters} are refused: the protocol versions are fixed, and the
    cipher suites use elliptic-curve key exchange only.
    """

    prefix = "suto-tls"

    def parseStreamServer(
        self,
        reactor,
        port=None,
        privateKey=None,
        certKey=None,
        *unexpected,
        extraCertChain=None,
        caCerts=None,
        requireClientCert="no",
        crlFile=None,
        interface="",
        backlog=50,
        reusePort="no",
        **unknown,
    ) -> TLSServerEndpoint:
        """
        Build the endpoint a C{suto-tls} string describes.

        @param port: the TCP port (required).
        @param privateKey: path of the PEM private key (required).
        @param certKey: path of the PEM certificate, and optionally its
            chain; the private key's file if not given, as for C{ssl}.
        @param extraCertChain: path of more chain certificates.
        @param caCerts: path of the authorities whose client certificates
            are accepted.
        @param requireClientCert: C{yes} to refuse clients without a
            certificate signed by one of C{caCerts}.
        @param crlFile: path of the PEM CRLs of C{caCerts}: the client
            certificates they revoke are refused.
        @param interface: the address to bind; an IPv6 literal (written
            with escaped colons, C{interface=\\:\\:1}) listens on IPv6.
        @param reusePort: C{yes} to share the port with other processes
            (L{suto_server.net.reuseport}).
        @raise TLSConfigurationError: an argument or file is unusable.
        """
        if unexpected:
            raise TLSConfigurationError(
                "suto-tls takes at most port, privateKey and certKey "
                "without a name; name the other arguments"
            )
        if unknown:
            raise TLSConfigurationError(
                "suto-tls does not take " + ", ".join(sorted(unknown))
            )
        if port is None:
            raise TLSConfigurationError("suto-tls needs a port")
        port_number = _bounded_int(port, "port", 0, 65535)
        backlog_size = _bounded_int(backlog, "backlog", 1, _MAX_BACKLOG)
        if privateKey is None:
            raise TLSConfigurationError("suto-tls needs privateKey=")
        if requireClientCert.lower() not in _YES_NO:
            raise TLSConfigurationError("requireClientCert must be yes or no")
        if reusePort.lower() not in _YES_NO:
            raise TLSConfigurationError("reusePort must be yes or no")
        reuse_port = _YES_NO[reusePort.lower()]
        if len(interface) > _MAX_INTERFACE:
            raise TLSConfigurationError("interface is too long")
        tls = ReloadableServerTLS(
            privateKey,
            privateKey if certKey is None else certKey,
            extra_chain=extraCertChain,
            client_cas=caCerts,
            require_client_certificate=_YES_NO[requireClientCert.lower()],
            crl_file=crlFile,
            clock=reactor,
        )
        if reuse_port:
            tcp = ReusePortEndpoint(reactor, port_number, backlog_size, interface)
        elif isIPv6Address(interface):
            tcp = TCP6ServerEndpoint(reactor, port_number, backlog_size, interface)
        else:
            tcp = TCP4ServerEndpoint(reactor, port_number, backlog_size, interface)
        return TLSServerEndpoint(tcp, tls, interface)


STOCK_PREFIX = "ssl:"
"""How an operator's TLS listener description starts: Twisted's own C{ssl}
endpoint type, served here by L{SutoTLSParser}."""


def server_endpoint(reactor, description: str) -> IStreamServerEndpoint:
    """
    Build a listening endpoint from its description, serving C{ssl:}
    strings with the hardened, reloadable TLS of L{SutoTLSParser}.

    @param description: any server endpoint string; C{ssl:...} is read as
        C{suto-tls:...} with the same arguments, anything else (C{tcp:},
        C{unix:}, ...) goes to L{serverFromString} unchanged.
    @return: the endpoint; for C{ssl:} and C{suto-tls:} a
        L{TLSServerEndpoint}.
    @raise TLSConfigurationError: a TLS argument or file is unusable.
    """
    if description.startswith(STOCK_PREFIX):
        description = f"{SutoTLSParser.prefix}:{description[len(STOCK_PREFIX):]}"
    return serverFromString(reactor, description)
