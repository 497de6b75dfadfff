"""
The verification API's site over a L{StringTransport} that presents a
client certificate, as its TLS listener would.

The guard and the verify resource read the caller from the connection's
certificate, and the site bounds bodies as they arrive, so their tests
speak raw HTTP to the real site rather than hand a resource a dummy
request.
"""

import json

from OpenSSL.crypto import X509
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from tests.support.pki import Authority

#: The CA every test caller's certificate comes from.
CALLERS = Authority("SUTO API callers CA")

#: The address test callers connect from.
CALLER_ADDRESS = "192.0.2.50"


class CertifiedTransport(StringTransport):
    """
    A transport whose peer presented C{certificate} (a cryptography
    certificate, or L{None} for none).
    """

    def __init__(self, certificate):
        super().__init__(peerAddress=IPv4Address("TCP", CALLER_ADDRESS, 40000))
        self._certificate = certificate

    def getPeerCertificate(self):
        if self._certificate is None:
            return None
        return X509.from_cryptography(self._certificate)


def caller(name, *units):
    """
    A client certificate for C{name} in the organisational units C{units}.
    """
    return CALLERS.issue(name, client=True, units=units)[1]


def connect(site, certificate):
    """
    Connect to C{site} as the holder of C{certificate}.

    @return: the connection's L{CertifiedTransport}.
    """
    channel = site.buildProtocol(IPv4Address("TCP", CALLER_ADDRESS, 40000))
    transport = CertifiedTransport(certificate)
    channel.makeConnection(transport)
    transport.protocol = channel
    return transport


def request(transport, method, path, body=b""):
    """
    Send one HTTP/1.0 request on C{transport}'s connection (so that the
    answer comes whole, not in chunks).
    """
    head = (
        f"{method} {path} HTTP/1.0\r\nHost: suto\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii")
    transport.protocol.dataReceived(head + body)


def answer(transport):
    """
    @return: C{(status, JSON body)} of the answer written so far, or
        L{None} while there is none; the transport is cleared.
    """
    data = transport.value()
    if not data:
        return None
    transport.clear()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body.decode("utf-8"))
