"""
Tests for L{suto_server.net.checks}: the check packet a server sends to a
profile's old location, and how it judges the answers.
"""

from twisted.internet.defer import CancelledError
from twisted.internet.error import CannotListenError
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import capturedLogs, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, wire
from suto_server.core.throttle import MAX_LINES
from suto_server.net.checks import CheckError, CheckResult, CheckService
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.limits import Limits
from tests.support.checks import KEY, USER, answer
from tests.support.udp import MemoryUDPReactor

OLD = "192.0.2.7"
ELSEWHERE = "192.0.2.8"
PREVIOUS = bytes(range(32, 64))
OTHER_KEY = bytes(range(64, 96))


class CheckServiceTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryUDPReactor()
        self.service = CheckService(self.reactor)
        self.service.startService()
        self.results = []

    def check(self, address=OLD, key=KEY, **keywords):
        """
        Start a check; its result is appended to C{self.results} when it
        ends.

        @return: the nonce the check packet carried.
        """
        d = self.service.check(USER, address, key, **keywords)
        d.addBoth(self.results.append)
        datagram, _ = self.sent()[-1]
        return wire.parse_datagram(datagram).nonce

    def sent(self):
        """
        The datagrams the service sent, with their destinations.
        """
        return [
            each
            for _, protocol in self.reactor.udp
            for each in protocol.transport.written
        ]

    def receive(self, datagram, source=OLD, version=4):
        """
        Deliver C{datagram} from C{source} to the service's socket of that
        address family.
        """
        [protocol] = [
            protocol
            for port, protocol in self.reactor.udp
            if (port.address.host == "::") == (version == 6)
        ]
        protocol.datagramReceived(datagram, (source, 2020))

    def test_sends_check(self):
        """
        A check sends one L{wire.Check} for the user, with a fresh 16-byte
        nonce, to the agent port at the old address, from an ephemeral
        port on every IPv4 address.
        """
        self.check()
        self.check()
        [(first, destination), (second, _)] = self.sent()
        self.assertEqual(destination, (OLD, 2020))
        first, second = wire.parse_datagram(first), wire.parse_datagram(second)
        self.assertEqual((first.user, len(first.nonce)), (USER, 16))
        self.assertNotEqual(first.nonce, second.nonce)
        [(port, _)] = self.reactor.udp
        self.assertEqual(
            (port.address.host, port.address.port), ("0.0.0.0", 4242)
        )

    def test_port_interface_and_timeout(self):
        """
        The agent port, the local address and the timeout are the ones
        configured.
        """
        service = CheckService(
            self.reactor, port=3030, timeout=5.0, interface="127.0.0.1"
        )
        results = []
        service.check(USER, OLD, KEY).addCallback(results.append)
        [(port, protocol)] = self.reactor.udp
        [(_, destination)] = protocol.transport.written
        self.assertEqual(destination, (OLD, 3030))
        self.assertEqual(port.address.host, "127.0.0.1")
        self.reactor.advance(4.9)
        self.assertEqual(results, [])
        self.reactor.advance(0.1)
        self.assertEqual(results, [CheckResult.SILENT])

    def test_answered(self):
        """
        A valid proof from the old address ends the check at once as
        L{CheckResult.ANSWERED}, and leaves no timer behind.
        """
        nonce = self.check()
        self.reactor.advance(2.9)
        self.receive(answer(nonce))
        self.assertEqual(self.results, [CheckResult.ANSWERED])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_silent(self):
        """
        Without an answer, the check ends as L{CheckResult.SILENT} after
        the default 3 seconds, not before.
        """
        self.check()
        self.reactor.advance(2.9)
        self.assertEqual(self.results, [])
        self.reactor.advance(0.1)
        self.assertEqual(self.results, [CheckResult.SILENT])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_forged(self):
        """
        An answer with the right nonce from the old address but a proof
        made without the key does not end the check; when it times out
        with no valid proof, it ends as L{CheckResult.FORGED}.
        """
        nonce = self.check()
        self.receive(answer(nonce, key=OTHER_KEY))
        self.receive(
            wire.encode_check_proof(wire.CheckProof(nonce, bytes(16)))
        )
        self.assertEqual(self.results, [])
        self.reactor.advance(3.0)
        self.assertEqual(self.results, [CheckResult.FORGED])

    def test_forged_then_valid(self):
        """
        A valid proof after a forged one still counts: the legitimate
        client is there.
        """
        nonce = self.check()
        self.receive(answer(nonce, key=OTHER_KEY))
        self.receive(answer(nonce))
        self.assertEqual(self.results, [CheckResult.ANSWERED])

    def test_proof_for_another_user(self):
        """
        A proof made with the right key for another user is wrong.
        """
        nonce = self.check()
        self.receive(answer(nonce, user="bob"))
        self.reactor.advance(3.0)
        self.assertEqual(self.results, [CheckResult.FORGED])

    def test_replayed_answer(self):
        """
        An answer counts once: sent again, it is ignored; and a valid
        answer to an earlier check does not answer a later one, which
        ends as silent, not forged.
        """
        first = self.check()
        self.receive(answer(first))
        self.receive(answer(first))
        self.assertEqual(self.results, [CheckResult.ANSWERED])
        self.check()
        self.receive(answer(first))
        self.reactor.advance(3.0)
        self.assertEqual(
            self.results, [CheckResult.ANSWERED, CheckResult.SILENT]
        )

    def test_answer_from_elsewhere(self):
        """
        An answer from any other address than the one checked is ignored,
        even with a valid proof, and is not counted as forged.
        """
        nonce = self.check()
        self.receive(answer(nonce), source=ELSEWHERE)
        self.receive(answer(nonce, key=OTHER_KEY), source=ELSEWHERE)
        self.assertEqual(self.results, [])
        self.reactor.advance(3.0)
        self.assertEqual(self.results, [CheckResult.SILENT])

    def test_late_answer(self):
        """
        A valid answer that arrives after the timeout is ignored: the
        check already ended as silent.
        """
        nonce = self.check()
        self.reactor.advance(3.0)
        self.receive(answer(nonce))
        self.assertEqual(self.results, [CheckResult.SILENT])

    def test_previous_key(self):
        """
        While the server still keeps the key a rotation replaced, a proof
        made with it answers too.
        """
        nonce = self.check(previous=PREVIOUS)
        self.receive(answer(nonce, key=PREVIOUS))
        self.assertEqual(self.results, [CheckResult.ANSWERED])

    def test_concurrent_checks(self):
        """
        Two checks of different addresses are judged apart: each answer
        ends only its own check.
        """
        first = self.check()
        self.check(address=ELSEWHERE, key=OTHER_KEY)
        self.receive(answer(first))
        self.assertEqual(self.results, [CheckResult.ANSWERED])
        self.reactor.advance(3.0)
        self.assertEqual(
            self.results, [CheckResult.ANSWERED, CheckResult.SILENT]
        )

    def test_ipv4_mapped_address(self):
        """
        An old address recorded as an IPv4 address seen through an IPv6
        socket is checked over IPv4, and its answers are matched.
        """
        nonce = self.check(address="::ffff:" + OLD)
        [(_, destination)] = self.sent()
        self.assertEqual(destination, (OLD, 2020))
        self.receive(answer(nonce))
        self.assertEqual(self.results, [CheckResult.ANSWERED])

    def test_ipv6(self):
        """
        An IPv6 old address is checked from a socket on every IPv6
        address; answers from an equivalent spelling match.
        """
        nonce = self.check(address="2001:db8::7")
        [(_, destination)] = self.sent()
        self.assertEqual(destination, ("2001:db8::7", 2020))
        self.receive(answer(nonce), source="2001:db8:0:0::7", version=6)
        self.assertEqual(self.results, [CheckResult.ANSWERED])

    def test_other_datagrams(self):
        """
        Garbage, hellos and checks arriving on the check socket are
        dropped without an exception and without ending a check.
        """
        nonce = self.check()
        for datagram in [
            b"",
            b"\xff\x00" * 40,
            b"SUTO_alice@desk+",
            wire.encode_check(wire.Check(nonce, USER)),
            answer(nonce)[:-1],
        ]:
            self.receive(datagram)
        self.assertEqual(self.results, [])

    def test_invalid_input(self):
        """
        A bad user, address or key is refused with L{CheckError} before
        anything is sent or scheduled.
        """
        for user, address, key, previous in [
            ("", OLD, KEY, None),
            ("DATA_alice", OLD, KEY, None),
            (USER, "old-host", KEY, None),
            (USER, OLD, KEY[:-1], None),
            (USER, OLD, KEY, PREVIOUS[:-1]),
        ]:
            self.assertRaises(
                CheckError,
                self.service.check,
                user,
                address,
                key,
                previous=previous,
            )
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancel(self):
        """
        Cancelling a check abandons it: its timer stops, and its answer
        is then ignored.
        """
        d = self.service.check(USER, OLD, KEY)
        [(datagram, _)] = self.sent()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.receive(answer(wire.parse_datagram(datagram).nonce))

    def test_send_failure(self):
        """
        A check that cannot be sent is as good as lost: it ends as silent
        when it times out, and the failure is logged.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.service.check(USER, OLD, KEY)
        [(_, protocol)] = self.reactor.udp

        def unreachable(datagram, address):
            raise OSError("network is unreachable")

        protocol.transport.write = unreachable
        unsent = self.service.check(USER, ELSEWHERE, KEY)
        unsent.addCallback(self.results.append)
        self.reactor.advance(3.0)
        self.assertEqual(self.results, [CheckResult.SILENT])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertTrue(
            any(event.get("address") == ELSEWHERE for event in observer)
        )

    def test_cannot_listen(self):
        """
        When no socket can be opened, the check fails at once and leaves
        no timer behind.
        """

        def refuse(port, protocol, interface="", maxPacketSize=8192):
            raise CannotListenError(interface, port, OSError("in use"))

        self.reactor.listenUDP = refuse
        self.assertRaises(
            CannotListenError, self.service.check, USER, OLD, KEY
        )
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop(self):
        """
        Stopping the service cancels the checks still waiting and closes
        the socket.
        """
        self.check()
        self.service.stopService()
        [failure] = self.results
        failure.trap(CancelledError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        [(port, _)] = self.reactor.udp
        self.assertFalse(port.listening)

    def test_logs_no_secret(self):
        """
        The events of a check name the user and addresses, never the key
        or a proof.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        nonce = self.check()
        self.receive(answer(nonce, key=OTHER_KEY))
        self.receive(answer(nonce), source=ELSEWHERE)
        self.receive(answer(nonce))
        self.assertGreaterEqual(len(observer), 4)
        proofs = [
            keyschedule.check_proof(key, nonce, USER)
            for key in (KEY, OTHER_KEY)
        ]
        for event in observer:
            text = repr(event)
            self.assertNotIn(KEY.hex(), text)
            for proof in proofs:
                self.assertNotIn(repr(proof), text)
                self.assertNotIn(proof.hex(), text)


class PacedLogTests(SynchronousTestCase):
    """
    The lines about arriving datagrams, paced by the connection gate: a
    datagram can come from anyone, as often as they like.
    """

    def setUp(self):
        self.reactor = MemoryUDPReactor()
        self.protocol = paced_check_socket(self.reactor)

    def test_once_per_source_and_reason(self):
        """
        A thousand stale answers from one source write one line until the
        interval is over, then one saying how many were kept quiet;
        another source, or another reason, has lines of its own.
        """
        stale = answer(bytes(16))
        with capturedLogs() as events:
            for _ in range(1000):
                self.protocol.datagramReceived(stale, (ELSEWHERE, 2020))
            self.protocol.datagramReceived(stale, ("192.0.2.9", 2020))
            self.protocol.datagramReceived(b"garbage", (ELSEWHERE, 2020))
            self.reactor.advance(60)
            self.protocol.datagramReceived(stale, (ELSEWHERE, 2020))
        lines = [(e["source"], e["reason"], e["quiet"]) for e in events if "reason" in e]
        self.assertEqual(
            lines,
            [
                (ELSEWHERE, "no_pending_check", 0),
                ("192.0.2.9", "no_pending_check", 0),
                (ELSEWHERE, "malformed", 0),
                (ELSEWHERE, "no_pending_check", 999),
            ],
        )


class ForgedSourcesTests(SynchronousTestCase):
    """
    Answers from ten thousand forged sources, each due on its own, write
    a bounded number of lines: the pacing caps each reason across sources.
    """

    def setUp(self):
        self.reactor = MemoryUDPReactor()
        self.protocol = paced_check_socket(self.reactor)

    def test_flood_bounded(self):
        """
        Ten thousand stale answers from as many sources within one interval
        write at most the cap plus one lines; after the interval a summary
        says how many were kept quiet, and a real source's line appears.
        """
        stale = answer(bytes(16))
        with capturedLogs() as events:
            for n in range(10000):
                self.protocol.datagramReceived(
                    stale, (f"10.0.{n // 256}.{n % 256}", 2020)
                )
            flood = len(paced(events))
            self.reactor.advance(60)
            self.protocol.datagramReceived(stale, (ELSEWHERE, 2020))
        self.assertLessEqual(flood, MAX_LINES + 1)
        summary, last = paced(events)[flood:]
        self.assertEqual(summary["quiet"], 10000 - MAX_LINES)
        self.assertEqual(
            (last["source"], last["reason"]), (ELSEWHERE, "no_pending_check")
        )


def paced(events):
    """
    The events written through the pacing: those with a C{quiet} field.
    """
    return [event for event in events if "quiet" in event]


def paced_check_socket(reactor):
    """
    The socket of a check service paced by a connection gate, with one
    check pending.
    """
    gate = ConnectionGate(reactor, Limits(), log_interval=60)
    service = CheckService(reactor, paced=gate.paced)
    service.startService()
    service.check(USER, OLD, KEY).addErrback(lambda _: None)
    [(_, protocol)] = reactor.udp
    return protocol
