"""
UDP hellos: parsing hello targets, the exact datagram sent, and the
service that owns the sockets.
"""

import ipaddress

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.core import wire
from suto_server.net.discovery import (
    DEFAULT_HELLO_PORT,
    HelloSender,
    HelloService,
    HelloTarget,
    parse_targets,
)


def network(text):
    "Shorthand for an accepted network."
    return ipaddress.ip_network(text)


class ParseTargetsTests(SynchronousTestCase):
    """
    Every target form the discovery module documents, and the errors for
    malformed ones.
    """

    def test_host(self):
        """
        A bare IPv4 address goes to the default port and only that address
        may answer.
        """
        self.assertEqual(
            parse_targets("192.0.2.7"),
            (HelloTarget("192.0.2.7", 2020, (network("192.0.2.7/32"),)),),
        )
        self.assertEqual(DEFAULT_HELLO_PORT, 2020)

    def test_host_port(self):
        """
        C{host:port} names the port.
        """
        self.assertEqual(
            parse_targets("192.0.2.7:3030"),
            (HelloTarget("192.0.2.7", 3030, (network("192.0.2.7/32"),)),),
        )

    def test_default_port_argument(self):
        """
        A target without a port takes the caller's default.
        """
        [target] = parse_targets("192.0.2.7", default_port=4040)
        self.assertEqual(target.port, 4040)

    def test_bracketed_ipv6_with_port(self):
        """
        C{[v6]:port} is an IPv6 host and a port.
        """
        self.assertEqual(
            parse_targets("[2001:db8::7]:3030"),
            (HelloTarget("2001:db8::7", 3030, (network("2001:db8::7/128"),)),),
        )

    def test_bracketed_ipv6_without_port(self):
        """
        C{[v6]} alone takes the default port.
        """
        [target] = parse_targets("[2001:db8::7]")
        self.assertEqual((target.address, target.port), ("2001:db8::7", 2020))

    def test_bare_ipv6(self):
        """
        An unbracketed IPv6 address is read whole, not split at a colon.
        """
        self.assertEqual(
            parse_targets("2001:db8::7"),
            (HelloTarget("2001:db8::7", 2020, (network("2001:db8::7/128"),)),),
        )

    def test_subnet(self):
        """
        A subnet sends to its directed broadcast address, accepts the whole
        subnet, and is a broadcast target.
        """
        self.assertEqual(
            parse_targets("192.0.2.0/24"),
            (
                HelloTarget(
                    "192.0.2.255",
                    2020,
                    (network("192.0.2.0/24"),),
                    broadcast=True,
                ),
            ),
        )

    def test_subnet_host_bits(self):
        """
        A subnet written with host bits set means the subnet it lies in.
        """
        [target] = parse_targets("192.0.2.77/24")
        self.assertEqual(target.address, "192.0.2.255")
        self.assertEqual(target.accept_from, (network("192.0.2.0/24"),))

    def test_subnet_with_port(self):
        """
        A subnet target may name a port.
        """
        [target] = parse_targets("192.0.2.0/30:3030")
        self.assertEqual(
            (target.address, target.port, target.broadcast),
            ("192.0.2.3", 3030, True),
        )

    def test_limited_broadcast(self):
        """
        255.255.255.255 is a broadcast target accepting exactly the named
        networks.
        """
        self.assertEqual(
            parse_targets(
                "255.255.255.255", accept="192.0.2.0/24, 198.51.100.7"
            ),
            (
                HelloTarget(
                    "255.255.255.255",
                    2020,
                    (network("192.0.2.0/24"), network("198.51.100.7/32")),
                    broadcast=True,
                ),
            ),
        )

    def test_limited_broadcast_needs_accept(self):
        """
        Without C{accept} the server could not tell who may answer a
        limited broadcast, so it is refused with a message saying so.
        """
        for accept in (None, ""):
            error = self.assertRaises(
                ValueError, parse_targets, "255.255.255.255", accept=accept
            )
            self.assertIn("255.255.255.255", str(error))

    def test_bad_accept(self):
        """
        An C{accept} network that is not a network is refused.
        """
        self.assertRaises(
            ValueError,
            parse_targets,
            "255.255.255.255",
            accept="lan.example",
        )

    def test_list(self):
        """
        Comma-separated targets, with spaces around them, are parsed in
        order.
        """
        targets = parse_targets(" 192.0.2.7 , [2001:db8::7]:3030,192.0.2.0/24")
        self.assertEqual(
            [(t.address, t.port, t.broadcast) for t in targets],
            [
                ("192.0.2.7", 2020, False),
                ("2001:db8::7", 3030, False),
                ("192.0.2.255", 2020, True),
            ],
        )

    def assert_error(self, text, *fragments):
        """
        Parsing C{text} raises L{ValueError} whose message contains every
        one of C{fragments}.
        """
        error = self.assertRaises(ValueError, parse_targets, text)
        for fragment in fragments:
            self.assertIn(fragment, str(error))

    def test_empty_items(self):
        """
        An empty list or an empty item between commas is an error.
        """
        for text in (
            "",
            " ",
            "192.0.2.7,",
            ",192.0.2.7",
            "192.0.2.7,,192.0.2.8",
        ):
            self.assert_error(text, "empty hello target")

    def test_host_name(self):
        """
        A host name is refused: targets are addresses, and the message names
        the bad item.
        """
        self.assert_error("192.0.2.7,device.example", "'device.example'")

    def test_bad_ports(self):
        """
        Ports outside 1-65535 or not numbers are refused, naming the item.
        """
        for text in (
            "192.0.2.7:0",
            "192.0.2.7:65536",
            "192.0.2.7:port",
            "192.0.2.7:-1",
            "[2001:db8::7]:99999",
        ):
            self.assert_error(text, repr(text), "bad port")

    def test_non_ascii_port_digits(self):
        """
        A port written with non-ASCII digits is refused with the module's
        message naming the item, like any other bad port.
        """
        for text in (
            "192.0.2.7:\N{SUPERSCRIPT TWO}",
            "192.0.2.7:\N{ARABIC-INDIC DIGIT TWO}020",
        ):
            self.assert_error(text, repr(text), "bad port")

    def test_empty_port(self):
        """
        A colon with no port after it is malformed rather than silently the
        default port.
        """
        for text in ("192.0.2.7:", "[2001:db8::7]:"):
            self.assert_error(text, repr(text))

    def test_malformed_brackets(self):
        """
        Text after the closing bracket other than C{:port} is refused.
        """
        self.assert_error("[2001:db8::7]3030", "malformed")

    def test_ipv6_subnet(self):
        """
        IPv6 has no broadcast, so an IPv6 subnet target is refused.
        """
        self.assert_error("2001:db8::/64", "IPv4")

    def test_tiny_subnet(self):
        """
        A subnet too small to have a broadcast address distinct from its
        hosts is refused.
        """
        for text in ("192.0.2.0/31", "192.0.2.7/32"):
            self.assert_error(text, repr(text), "at least 4")

    def test_bad_subnet(self):
        """
        A prefix that is not a network is refused with a L{ValueError}.
        """
        for text in ("192.0.2.0/33", "lan/24"):
            self.assertRaises(ValueError, parse_targets, text)


class HelloTargetTests(SynchronousTestCase):
    """
    How a target describes itself in logs.
    """

    def test_str(self):
        """
        IPv4 targets read C{address:port}, IPv6 ones C{[address]:port}.
        """
        self.assertEqual(
            [str(t) for t in parse_targets("192.0.2.7,[2001:db8::7]:3030")],
            ["192.0.2.7:2020", "[2001:db8::7]:3030"],
        )


class FakeUDPTransport:
    """
    Records what a datagram protocol writes and whether it turned on
    broadcasting.
    """

    def __init__(self):
        self.written = []
        self.broadcast_calls = []

    def write(self, data, addr):
        self.written.append((data, addr))

    def setBroadcastAllowed(self, enabled):
        self.broadcast_calls.append(enabled)


class HelloSenderTests(SynchronousTestCase):
    """
    The exact datagram a hello is, and where it goes.
    """

    def setUp(self):
        self.transport = FakeUDPTransport()
        self.sender = HelloSender("server.example")
        self.sender.makeConnection(self.transport)

    def test_unicast(self):
        """
        A host target gets exactly C{SUTO_<user>@<host>+} at its address and
        port, without broadcasting turned on.
        """
        [target] = parse_targets("192.0.2.7:3030")
        self.sender.send_hello("alice", target)
        self.assertEqual(
            self.transport.written,
            [(b"SUTO_alice@server.example+", ("192.0.2.7", 3030))],
        )
        self.assertEqual(self.transport.broadcast_calls, [])

    def test_sends_quietly(self):
        """
        Sending a hello logs nothing: the request that asked for it says
        what it was for.
        """
        [target] = parse_targets("192.0.2.7:3030")
        with capturedLogs() as events:
            self.sender.send_hello("alice", target)
        self.assertEqual(events, [])
        self.assertEqual(len(self.transport.written), 1)

    def test_datagram_parses_back(self):
        """
        The datagram is a hello a SUTO client reads back as the same user
        and host.
        """
        [target] = parse_targets("192.0.2.7")
        self.sender.send_hello("alice.b", target)
        [(datagram, _)] = self.transport.written
        self.assertEqual(
            wire.parse_hello(datagram), wire.Hello("alice.b", "server.example")
        )

    def test_ipv6(self):
        """
        IPv6 targets are addressed without brackets.
        """
        [target] = parse_targets("[2001:db8::7]:3030")
        self.sender.send_hello("alice", target)
        self.assertEqual(
            self.transport.written,
            [(b"SUTO_alice@server.example+", ("2001:db8::7", 3030))],
        )

    def test_subnet_broadcast(self):
        """
        A subnet target turns broadcasting on and goes to the subnet's
        broadcast address.
        """
        [target] = parse_targets("192.0.2.0/24")
        self.sender.send_hello("alice", target)
        self.assertEqual(self.transport.broadcast_calls, [True])
        self.assertEqual(
            self.transport.written,
            [(b"SUTO_alice@server.example+", ("192.0.2.255", 2020))],
        )

    def test_limited_broadcast(self):
        """
        The limited broadcast turns broadcasting on too.
        """
        [target] = parse_targets("255.255.255.255", accept="192.0.2.0/24")
        self.sender.send_hello("alice", target)
        self.assertEqual(self.transport.broadcast_calls, [True])
        self.assertEqual(
            self.transport.written,
            [(b"SUTO_alice@server.example+", ("255.255.255.255", 2020))],
        )

    def test_invalid_user(self):
        """
        A user name the wire format cannot carry is refused with the codec's
        error before anything is sent.
        """
        [target] = parse_targets("192.0.2.7")
        self.assertRaises(
            wire.ProtocolError, self.sender.send_hello, "al ice", target
        )
        self.assertEqual(self.transport.written, [])

    def test_replies_ignored(self):
        """
        A datagram arriving on the hello socket sends nothing back.
        """
        self.sender.datagramReceived(
            b"SUTO_bob@elsewhere+", ("192.0.2.9", 2020)
        )
        self.assertEqual(self.transport.written, [])


class FakeUDPPort:
    """
    A listening port from L{FakeUDPReactor}.
    """

    def __init__(self, port, protocol, interface):
        self.port = port
        self.protocol = protocol
        self.interface = interface
        self.transport = FakeUDPTransport()
        self.listening = True
        protocol.makeConnection(self.transport)

    def stopListening(self):
        self.listening = False


class FakeUDPReactor:
    """
    Records the UDP ports opened through it.
    """

    def __init__(self):
        self.ports = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        udp_port = FakeUDPPort(port, protocol, interface)
        self.ports.append(udp_port)
        return udp_port


class HelloServiceSocketTests(SynchronousTestCase):
    """
    Which sockets the service opens, and when it closes them.
    """

    def setUp(self):
        self.reactor = FakeUDPReactor()

    def test_host_name_checked(self):
        """
        A host name that cannot travel in a hello (an underscore, too long,
        empty) is refused when the service is built, not at the first
        authentication.
        """
        for name in ["build_server", "a" * 254, ""]:
            self.assertRaises(ValueError, HelloService, self.reactor, name)

    def test_no_socket_before_use(self):
        """
        Starting the service opens nothing: sockets are bound on first use.
        """
        service = HelloService(self.reactor, "server.example")
        service.startService()
        self.assertEqual(self.reactor.ports, [])

    def test_one_socket_per_family(self):
        """
        IPv4 hellos share one socket on an ephemeral port of every
        interface, IPv6 hellos another.
        """
        service = HelloService(self.reactor, "server.example")
        for text in ("192.0.2.7", "192.0.2.8", "[2001:db8::7]", "2001:db8::8"):
            [target] = parse_targets(text)
            service.send_hello("alice", target)
        self.assertEqual(
            [(p.port, p.interface) for p in self.reactor.ports],
            [(0, "0.0.0.0"), (0, "::")],
        )
        ipv4, ipv6 = self.reactor.ports
        self.assertEqual(
            [addr for _, addr in ipv4.transport.written],
            [("192.0.2.7", 2020), ("192.0.2.8", 2020)],
        )
        self.assertEqual(
            [addr for _, addr in ipv6.transport.written],
            [("2001:db8::7", 2020), ("2001:db8::8", 2020)],
        )

    def test_interface(self):
        """
        The configured local IPv4 address is where IPv4 hellos go out.
        """
        service = HelloService(self.reactor, "server.example", "192.0.2.1")
        [target] = parse_targets("192.0.2.7")
        service.send_hello("alice", target)
        self.assertEqual(self.reactor.ports[0].interface, "192.0.2.1")

    def test_stop_closes_sockets(self):
        """
        Stopping the service stops every socket and fires once they are
        closed; the next hello binds a fresh socket.
        """
        service = HelloService(self.reactor, "server.example")
        service.startService()
        for text in ("192.0.2.7", "[2001:db8::7]"):
            [target] = parse_targets(text)
            service.send_hello("alice", target)
        self.successResultOf(service.stopService())
        self.assertEqual(
            [p.listening for p in self.reactor.ports], [False, False]
        )
        self.assertFalse(service.running)
        [target] = parse_targets("192.0.2.7")
        service.send_hello("alice", target)
        self.assertEqual(len(self.reactor.ports), 3)
        self.assertTrue(self.reactor.ports[2].listening)


class ReceiveOne(DatagramProtocol):
    """
    Fires C{received} with the first datagram and its source.
    """

    def __init__(self):
        self.received = defer.Deferred()

    def datagramReceived(self, datagram, address):
        if not self.received.called:
            self.received.callback((datagram, address))


class HelloServiceLoopbackTests(TestCase):
    """
    A hello sent by the service arrives on a real loopback socket.
    """

    def send_and_receive(self, loopback, target_text):
        """
        Listen on C{loopback}, send a hello to the target C{target_text}
        (formatted with the listening port) and return the received
        datagram.
        """
        from twisted.internet import reactor

        receiver = ReceiveOne()
        port = reactor.listenUDP(0, receiver, interface=loopback)
        self.addCleanup(port.stopListening)
        service = HelloService(reactor, "server.example")
        service.startService()
        self.addCleanup(service.stopService)
        [target] = parse_targets(target_text % (port.getHost().port,))
        service.send_hello("alice", target)
        return receiver.received

    @defer.inlineCallbacks
    def test_ipv4(self):
        """
        The datagram reaches 127.0.0.1 byte for byte.
        """
        datagram, (host, _) = yield self.send_and_receive(
            "127.0.0.1", "127.0.0.1:%d"
        )
        self.assertEqual(datagram, b"SUTO_alice@server.example+")
        self.assertEqual(host, "127.0.0.1")

    @defer.inlineCallbacks
    def test_ipv6(self):
        """
        The datagram reaches ::1 through the IPv6 socket.
        """
        datagram, address = yield self.send_and_receive("::1", "[::1]:%d")
        self.assertEqual(datagram, b"SUTO_alice@server.example+")
        self.assertEqual(address[0], "::1")
