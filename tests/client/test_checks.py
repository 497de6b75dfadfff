"""
Tests for L{suto_client.checks}, the agent's answers to check packets,
for the listener and agent that deliver them, and for a server's check
answered over real loopback sockets.
"""

import os
from dataclasses import replace

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.internet.testing import (
    EventLoggingObserver,
    FakeDatagramTransport,
)
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_client.agent import Agent
from suto_client.checks import CheckResponder
from suto_client.hello import HelloListener
from suto_client.state import ClientState, EnrolledProfile
from suto_client.statefile import save_state
from suto_server.core import keyschedule, wire
from suto_server.net.checks import CheckResult, CheckService
from tests.support.udp import MemoryUDPReactor

USER = "alice"
SERVER = "192.0.2.10"
ELSEWHERE = "192.0.2.66"
KEY = bytes(range(32))
NONCE = bytes(range(100, 116))
PROFILE = EnrolledProfile(
    user=USER,
    server_host=SERVER,
    server_port=2021,
    pin="ab" * 32,
    key=KEY,
    key_id=keyschedule.key_id(KEY),
    generation=3,
    enrolled_at=1700000000.0,
)
CHECK = wire.encode_check(wire.Check(NONCE, USER))


def proof_of(datagram, key=KEY, user=USER):
    """
    Is C{datagram} the answer that proves C{key} to the check of C{NONCE}
    for C{user}?
    """
    answer = wire.parse_datagram(datagram)
    return answer == wire.CheckProof(
        NONCE, keyschedule.check_proof(key, NONCE, user)
    )


class CheckResponderTests(SynchronousTestCase):
    def setUp(self):
        self.profiles = {USER: PROFILE}
        self.clock = Clock()
        self.responder = CheckResponder(lambda: self.profiles, self.clock)

    def answer(self, source=SERVER, user=USER, nonce=NONCE):
        return self.responder.answer(wire.Check(nonce, user), source)

    def test_answers_own_server(self):
        """
        A check for an enrolled profile from that profile's server is
        answered with the proof of the profile's key for that nonce, which
        the server's L{keyschedule.check_proof} verifies, in a datagram no
        longer than the check.
        """
        datagram = self.answer()
        self.assertTrue(proof_of(datagram))
        self.assertLessEqual(len(datagram), len(CHECK))

    def test_shortest_user(self):
        """
        Even for a one-letter user, whose check is the shortest possible,
        the answer is no longer than the check.
        """
        self.profiles = {"a": replace(PROFILE, user="a")}
        datagram = self.answer(user="a")
        self.assertTrue(proof_of(datagram, user="a"))
        check = wire.encode_check(wire.Check(NONCE, "a"))
        self.assertLessEqual(len(datagram), len(check))

    def test_other_source(self):
        """
        A check from any address other than the profile's server is
        dropped, so nobody else can make the agent prove anything.
        """
        self.assertIsNone(self.answer(source=ELSEWHERE))

    def test_failover_server(self):
        """
        A check from a failover server of the profile is answered, with
        a budget of its own: it is a server of the same deployment, which
        may be the one the agent now rotates with.
        """
        self.profiles = {USER: replace(PROFILE, failover=((ELSEWHERE, 2021),))}
        for _ in range(10):
            self.assertTrue(proof_of(self.answer(source=ELSEWHERE)))
        self.assertIsNone(self.answer(source=ELSEWHERE))
        self.assertIsNotNone(self.answer())

    def test_no_profile(self):
        """
        A check for a user without an enrolled profile is dropped, even
        from a server the agent knows.
        """
        self.assertIsNone(self.answer(user="bob"))

    def test_ipv4_mapped_source(self):
        """
        The server's IPv4 address seen through an IPv6 socket is the
        server.
        """
        self.assertTrue(proof_of(self.answer(source="::ffff:" + SERVER)))

    def test_current_key(self):
        """
        The profiles are read for each check, so the answer proves the key
        the profile holds at that moment.
        """
        rotated = bytes(range(32, 64))
        self.profiles = {USER: replace(PROFILE, key=rotated)}
        datagram = self.answer()
        self.assertTrue(proof_of(datagram, key=rotated))
        self.assertFalse(proof_of(datagram, key=KEY))

    def test_rate_limit(self):
        """
        At most 10 checks from one source are answered per second; the
        next second, it is answered again.
        """
        answers = [self.answer() for _ in range(11)]
        self.assertEqual(sum(each is not None for each in answers), 10)
        self.assertIsNone(answers[-1])
        self.clock.advance(0.5)
        self.assertIsNone(self.answer())
        self.clock.advance(0.5)
        self.assertIsNotNone(self.answer())

    def test_rate_limit_per_source(self):
        """
        Each server has its own budget: one that used it up does not
        silence the agent towards another.
        """
        other = "192.0.2.20"
        self.profiles["bob"] = replace(PROFILE, user="bob", server_host=other)
        for _ in range(10):
            self.answer()
        self.assertIsNone(self.answer())
        self.assertIsNotNone(self.answer(source=other, user="bob"))

    def test_clock_going_back(self):
        """
        A clock set back does not keep the limit shut for as long as it
        jumped: at the earlier time the check is answered with the proof,
        and the limit then counts from there, answering 10 and dropping
        the next.
        """
        proof = wire.encode_check_proof(
            wire.CheckProof(NONCE, keyschedule.check_proof(KEY, NONCE, USER))
        )
        self.clock.advance(1000)
        for _ in range(10):
            self.answer()
        self.assertIsNone(self.answer())
        self.clock.rightNow = 10
        self.assertEqual(
            [self.answer() for _ in range(11)], [proof] * 10 + [None]
        )

    def test_configured_rate(self):
        """
        The rate and period are those configured.
        """
        responder = CheckResponder(lambda: self.profiles, self.clock, 2, 5.0)
        check = wire.Check(NONCE, USER)
        answers = [responder.answer(check, SERVER) for _ in range(3)]
        self.assertEqual(
            [each is not None for each in answers], [True, True, False]
        )
        self.clock.advance(5.0)
        self.assertIsNotNone(responder.answer(check, SERVER))

    def test_dropped_check_logs_no_secret(self):
        """
        A dropped check is logged with the user and source, never the key.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.answer(source=ELSEWHERE)
        self.answer()
        self.assertEqual(
            [(event["user"], event["source"]) for event in observer],
            [(USER, ELSEWHERE), (USER, SERVER)],
        )
        self.assertNotIn(KEY.hex(), repr(list(observer)))
        self.assertNotIn(repr(KEY), repr(list(observer)))

    def test_drops_logged_once_per_interval(self):
        """
        Checks dropped from one source, for coming from elsewhere or for
        being too many, are logged once per interval of each kind, the
        next line saying how many were kept quiet: anyone can send checks
        from any address, and must not fill the agent's log.  The ten
        answered are logged once too.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        for _ in range(50):
            self.answer(source=ELSEWHERE)
        for _ in range(50):
            self.answer()
        self.clock.advance(60)
        self.answer(source=ELSEWHERE)
        dropped = [
            (event["source"], event["quiet"])
            for event in observer
            if event["log_format"].startswith("dropped")
        ]
        self.assertEqual(
            dropped, [(ELSEWHERE, 0), (SERVER, 0), (ELSEWHERE, 49)]
        )
        answered = [
            event["quiet"]
            for event in observer
            if event["log_format"].startswith("answered")
        ]
        self.assertEqual(answered, [0])


class ListenerCheckTests(SynchronousTestCase):
    def setUp(self):
        self.hellos = []
        self.responder = CheckResponder(lambda: {USER: PROFILE}, Clock())
        self.listener = HelloListener(
            lambda: {}, self.on_hello, self.responder.answer, clock=Clock()
        )
        self.transport = FakeDatagramTransport()
        self.listener.makeConnection(self.transport)

    def on_hello(self, account, hello):
        self.hellos.append(hello)

    def test_answer_sent_back(self):
        """
        A check on the hello port is answered to the address and port it
        came from.
        """
        self.listener.datagramReceived(CHECK, (SERVER, 40000))
        [(datagram, destination)] = self.transport.written
        self.assertEqual(destination, (SERVER, 40000))
        self.assertTrue(proof_of(datagram))

    def test_dropped_silently(self):
        """
        Checks from elsewhere, answers, malformed checks and garbage get
        no reply and start nothing.
        """
        proof = keyschedule.check_proof(KEY, NONCE, USER)
        for datagram, source in [
            (CHECK, ELSEWHERE),
            (wire.encode_check(wire.Check(NONCE, "bob")), SERVER),
            (wire.encode_check_proof(wire.CheckProof(NONCE, proof)), SERVER),
            (CHECK[:-1] + b"\x00", SERVER),
            (CHECK.replace(b"-", b"", 1), SERVER),
            (b"SUTO_CHECK_", SERVER),
            (b"\xff" * 100, SERVER),
            (CHECK * 10, SERVER),
        ]:
            self.listener.datagramReceived(datagram, (source, 40000))
        self.assertEqual(self.transport.written, [])
        self.assertEqual(self.hellos, [])

    def test_without_responder(self):
        """
        A listener given nothing to answer checks with drops them.
        """
        listener = HelloListener(lambda: {}, self.on_hello, clock=Clock())
        listener.makeConnection(self.transport)
        listener.datagramReceived(CHECK, (SERVER, 40000))
        self.assertEqual(self.transport.written, [])


class _NeverConnects:
    """
    An endpoint whose connection attempts never end, so that an agent's
    rotations wait quietly.
    """

    def connect(self, factory):
        return Deferred()


class AgentCheckTests(SynchronousTestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        save_state(self.path, ClientState(profiles={USER: PROFILE}))
        self.reactor = MemoryUDPReactor()
        self.agent = Agent(
            self.reactor,
            self.path,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            rotation_endpoint=lambda *_: _NeverConnects(),
        )
        self.agent.startService()
        self.addCleanup(self.agent.stopService)
        [(_, self.listener)] = self.reactor.udp

    def test_answers_from_state_file(self):
        """
        The agent answers a check from its server on the hello port with
        the key its state file holds, and follows the file when the key
        changes.
        """
        self.listener.datagramReceived(CHECK, (SERVER, 40000))
        rotated = bytes(range(32, 64))
        profiles = {USER: replace(PROFILE, key=rotated)}
        save_state(self.path, ClientState(profiles=profiles))
        self.listener.datagramReceived(CHECK, (SERVER, 40000))
        [(first, to_first), (second, _)] = self.listener.transport.written
        self.assertEqual(to_first, (SERVER, 40000))
        self.assertTrue(proof_of(first))
        self.assertTrue(proof_of(second, key=rotated))

    def test_drops_other_source(self):
        """
        A check from elsewhere than the profile's server gets no answer.
        """
        self.listener.datagramReceived(CHECK, (ELSEWHERE, 40000))
        self.assertEqual(self.listener.transport.written, [])

    def test_corrupt_state(self):
        """
        With an unusable state file, checks are dropped and the agent
        keeps running.
        """
        observer = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        with open(self.path, "w") as stream:
            stream.write("{")
        self.listener.datagramReceived(CHECK, (SERVER, 40000))
        self.assertEqual(self.listener.transport.written, [])
        [event] = [event for event in observer if "error" in event]
        self.assertIn(self.path, event["error"])


class LoopbackTests(TestCase):
    """
    A server's check answered by agents over real loopback sockets.
    """

    def listen(self, reactor, interface, port, key):
        """
        Start an agent's UDP listener on C{interface}, answering for a
        profile of server 127.0.0.1 that holds C{key}.

        @return: the port number it got.
        """
        profile = replace(PROFILE, server_host="127.0.0.1", key=key)
        responder = CheckResponder(lambda: {USER: profile}, reactor)
        listener = HelloListener(
            lambda: {}, lambda *_: None, responder.answer, clock=reactor
        )
        listening = reactor.listenUDP(port, listener, interface=interface)
        self.addCleanup(listening.stopListening)
        return listening.getHost().port

    @inlineCallbacks
    def test_answered_over_udp(self):
        """
        Two agents listen on the same port number, one on 127.0.0.1 and
        one on 127.0.0.2, each with its own key; a check service on
        127.0.0.1 checking either address gets the answer of the agent
        there.
        """
        from twisted.internet import reactor

        first_key, second_key = KEY, bytes(range(32, 64))
        port = self.listen(reactor, "127.0.0.1", 0, first_key)
        self.listen(reactor, "127.0.0.2", port, second_key)
        service = CheckService(
            reactor, port=port, timeout=10.0, interface="127.0.0.1"
        )
        service.startService()
        self.addCleanup(service.stopService)
        second = yield service.check(USER, "127.0.0.2", second_key)
        first = yield service.check(USER, "127.0.0.1", first_key)
        self.assertEqual(
            (second, first), (CheckResult.ANSWERED, CheckResult.ANSWERED)
        )
