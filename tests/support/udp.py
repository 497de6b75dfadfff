"""
A memory reactor with UDP, for services that open datagram sockets: it
connects each protocol to a L{FakeDatagramTransport} that records what is
written, and lets a test deliver datagrams by calling the protocol's
C{datagramReceived} itself.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import FakeDatagramTransport, MemoryReactorClock

#: The port a listener asking for port 0 is given.
EPHEMERAL_PORT = 4242


class FakeUDPPort:
    """
    The listening port L{MemoryUDPReactor.listenUDP} returns.
    """

    def __init__(self, interface: str, port: int) -> None:
        self.address = IPv4Address("UDP", interface or "0.0.0.0", port)
        self.listening = True

    def getHost(self):
        return self.address

    def stopListening(self):
        self.listening = False


class MemoryUDPReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that also opens UDP ports in memory.

    @ivar udp: C{(port, protocol)} for every C{listenUDP} call, in order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udp = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = FakeUDPPort(interface, port or EPHEMERAL_PORT)
        self.udp.append((listening, protocol))
        protocol.makeConnection(FakeDatagramTransport())
        return listening
