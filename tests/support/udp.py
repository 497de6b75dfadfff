"""
A memory reactor that also listens on UDP.

Twisted's L{MemoryReactorClock} has no C{listenUDP}; the hello listener,
the check service and the tracking rules all open a UDP port, so their
tests share this one fake rather than each growing its own.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import FakeDatagramTransport, MemoryReactorClock


class _FakeUDPPort:
    """
    The listening port L{UDPReactor.listenUDP} returns.
    """

    def __init__(self, interface, port):
        self.address = IPv4Address("UDP", interface or "0.0.0.0", port)
        self.listening = True

    def getHost(self):
        return self.address

    def stopListening(self):
        self.listening = False


class UDPReactor(MemoryReactorClock):
    """
    A memory reactor that also records UDP listeners; port 0 gets 4242.
    """

    def __init__(self):
        super().__init__()
        self.udp = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = _FakeUDPPort(interface, port or 4242)
        self.udp.append((listening, protocol))
        protocol.makeConnection(FakeDatagramTransport())
        return listening
