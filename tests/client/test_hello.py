"""
Tests for L{suto_client.hello}, the filter in front of every
authentication, and for L{suto_client.agent}, which acts on what it lets
through.
"""

import os

from OpenSSL import SSL
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import (
    EventLoggingObserver,
    FakeDatagramTransport,
)
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client import tap
from suto_client.agent import Agent
from suto_client.classic_machine import Outcome
from suto_client.hello import HelloListener, same_host
from suto_client.protocol import AuthResult, describe_failure
from suto_client.state import Account, ClientState
from suto_client.statefile import load_state, save_state
from suto_client.tls import PinMismatch
from suto_server.core import wire
from suto_server.core.throttle import MAX_LINES
from tests.support.udp import MemoryUDPReactor

SERVER = "192.0.2.10"
ALICE = Account(
    user="alice", server_host=SERVER, pin="ab" * 32, password="hunter2-secret"
)
SALT = "$6$saltsaltsaltsalt$"
SALTED = SALT + "s" * 86


class HelloListenerTests(SynchronousTestCase):
    def setUp(self):
        self.accounts = {"alice": ALICE}
        self.calls = []
        self.running = None
        self.clock = Clock()
        self.listener = HelloListener(
            lambda: self.accounts, self.on_hello, clock=self.clock
        )
        self.transport = FakeDatagramTransport()
        self.listener.makeConnection(self.transport)

    def on_hello(self, account, hello):
        self.calls.append((account, hello))
        return self.running

    def test_accepted(self):
        """
        A well-formed hello for a configured user, from that user's
        server, starts an authentication for that account, and nothing is
        sent back over UDP.
        """
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 40000))
        self.assertEqual(self.calls, [(ALICE, wire.Hello("alice", "desk"))])
        self.assertEqual(self.transport.written, [])

    def test_other_spellings(self):
        """
        The two other hello spellings of SUTO 1.3.2 are accepted too.
        """
        self.listener.datagramReceived(b"SUTO_alice@desk$", (SERVER, 1))
        self.listener.datagramReceived(b"SUTO_UDP_HELLO_alice", (SERVER, 1))
        self.assertEqual(
            [hello.user for _, hello in self.calls], ["alice"] * 2
        )

    def test_wrong_source(self):
        """
        A hello for a configured user from any other address is dropped:
        answering it would hand the final hash to whoever asked.
        """
        self.listener.datagramReceived(b"SUTO_alice@desk+", ("192.0.2.66", 1))
        self.assertEqual(self.calls, [])

    def test_unknown_user(self):
        """
        A hello for a user with no account is dropped.
        """
        self.listener.datagramReceived(b"SUTO_mallory@desk+", (SERVER, 1))
        self.assertEqual(self.calls, [])

    def test_malformed(self):
        """
        Datagrams that are not hellos are dropped without an exception.
        """
        for datagram in (
            b"",
            b"SUTO_alice",
            b"SUTO_alice@desk",
            b"SUTO_al ice@desk+",
            b"\xff\x00",
            b"SUTO_" + b"a" * 2000 + b"@desk+",
            b"HELLO_alice@desk+",
        ):
            self.listener.datagramReceived(datagram, (SERVER, 1))
        self.assertEqual(self.calls, [])

    def test_accounts_read_per_hello(self):
        """
        The accounts are asked for at every hello, so one added after the
        listener started is answered.
        """
        self.accounts = {}
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        self.accounts = {"alice": ALICE}
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        self.assertEqual(len(self.calls), 1)

    def test_busy_until_done(self):
        """
        While the authentication an accepted hello started is running,
        further hellos for that user are ignored; once it ends, they are
        answered again.
        """
        self.running = Deferred()
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        self.assertEqual(len(self.calls), 1)
        self.running.callback(None)
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        self.assertEqual(len(self.calls), 2)

    def test_dropped_hello_logs_no_secret(self):
        """
        A dropped hello is logged with the user and source, and without
        the account's password.
        """
        observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )
        self.listener.datagramReceived(b"SUTO_alice@desk+", ("192.0.2.66", 1))
        self.assertEqual(len(observer), 1)
        event = observer[0]
        self.assertEqual(
            (event["user"], event["source"]), ("alice", "192.0.2.66")
        )
        self.assertNotIn("hunter2", repr(event))

    def test_drops_logged_once_per_interval(self):
        """
        Hellos dropped for their source are logged once a minute per
        source, the next line saying how many were kept quiet: a hello is
        a datagram anyone can send from any address, and a flood of them
        must not fill the endpoint's log.
        """
        observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )
        for _ in range(5):
            self.listener.datagramReceived(b"SUTO_alice@desk+", ("192.0.2.66", 1))
        self.listener.datagramReceived(b"SUTO_alice@desk+", ("192.0.2.67", 1))
        self.clock.advance(60)
        self.listener.datagramReceived(b"SUTO_alice@desk+", ("192.0.2.66", 1))
        self.assertEqual(
            [(event["source"], event["quiet"]) for event in observer],
            [("192.0.2.66", 0), ("192.0.2.67", 0), ("192.0.2.66", 4)],
        )
        self.assertEqual(self.calls, [])


class SameHostTests(SynchronousTestCase):
    def test_same_host(self):
        """
        Addresses are compared as addresses, so equivalent spellings match
        and an IPv4 address seen through an IPv6 socket is itself.
        """
        self.assertTrue(same_host("192.0.2.10", "192.0.2.10"))
        self.assertTrue(same_host("::ffff:192.0.2.10", "192.0.2.10"))
        self.assertTrue(same_host("2001:db8:0::1", "2001:db8::1"))
        self.assertFalse(same_host("192.0.2.11", "192.0.2.10"))
        self.assertFalse(same_host("not an address", "192.0.2.10"))


class AgentTests(SynchronousTestCase):
    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        save_state(self.path, ClientState({"alice": ALICE}))
        self.reactor = MemoryUDPReactor()
        self.attempts = []
        self.immediate = None
        self.agent = Agent(
            self.reactor,
            self.path,
            hello_endpoint_port=0,
            hello_interface="127.0.0.1",
            timeout=3.0,
            authenticate=self.authenticate,
        )
        self.results = []
        self.agent.add_observer(
            lambda user, result: self.results.append((user, result))
        )
        self.agent.startService()

    def authenticate(self, reactor, account, *, timeout):
        if self.immediate is not None:
            return succeed(self.immediate)
        running = Deferred(
            lambda d: d.callback(AuthResult(Outcome.ERROR, "abandoned"))
        )
        self.attempts.append((reactor, account, timeout, running))
        return running

    def hello(self, user="alice", source=SERVER):
        _, listener = self.reactor.udp[0]
        listener.datagramReceived(f"SUTO_{user}@desk+".encode(), (source, 1))

    def test_listens(self):
        """
        The agent listens for hellos on the configured interface and
        reports the port it got.
        """
        port, _ = self.reactor.udp[0]
        self.assertEqual(port.address.host, "127.0.0.1")
        self.assertEqual(self.agent.hello_port, 4242)

    def test_authenticates(self):
        """
        An accepted hello runs an authentication of that account with the
        agent's reactor and timeout, and observers learn its result.
        """
        self.hello()
        [(reactor, account, timeout, running)] = self.attempts
        self.assertEqual(
            (reactor, account, timeout), (self.reactor, ALICE, 3.0)
        )
        result = AuthResult(Outcome.REJECTED, "refused")
        running.callback(result)
        self.assertEqual(self.results, [("alice", result)])
        self.assertEqual(load_state(self.path).accounts["alice"], ALICE)

    def test_dropped_hello(self):
        """
        A hello from elsewhere than the account's server runs nothing.
        """
        self.hello(source="192.0.2.66")
        self.assertEqual(self.attempts, [])

    def test_learns_salted_hash(self):
        """
        After an accepted authentication by password, the state file
        keeps the salt and salted hash instead of the password.
        """
        self.hello()
        self.attempts[0][3].callback(
            AuthResult(Outcome.ACCEPTED, "", SALT, SALTED)
        )
        stored = load_state(self.path).accounts["alice"]
        self.assertEqual(
            (stored.password, stored.salt, stored.salted_hash),
            (None, SALT, SALTED),
        )

    def test_account_changed_meanwhile(self):
        """
        If the account's password was changed while authenticating, the
        salted hash of the old one is not stored over it.
        """
        self.hello()
        changed = Account(
            user="alice", server_host=SERVER, pin="ab" * 32, password="new"
        )
        save_state(self.path, ClientState({"alice": changed}))
        self.attempts[0][3].callback(
            AuthResult(Outcome.ACCEPTED, "", SALT, SALTED)
        )
        self.assertEqual(load_state(self.path).accounts["alice"], changed)

    def test_state_reread(self):
        """
        An account added to the state file while the agent runs is
        answered without a restart.
        """
        bob = Account(
            user="bob", server_host=SERVER, legacy=True, password="b"
        )
        save_state(self.path, ClientState({"alice": ALICE, "bob": bob}))
        self.hello("bob")
        self.assertEqual(self.attempts[0][1], bob)

    def test_corrupt_state(self):
        """
        With an unreadable state file, hellos are dropped and the agent
        keeps running.
        """
        observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )
        with open(self.path, "w") as stream:
            stream.write("{")
        self.hello()
        self.assertEqual(self.attempts, [])
        [event] = [event for event in observer if "error" in event]
        self.assertIn(self.path, event["error"])

    def test_one_at_a_time(self):
        """
        A second hello for an account being authenticated is ignored.
        """
        self.hello()
        self.hello()
        self.assertEqual(len(self.attempts), 1)

    def test_stop(self):
        """
        Stopping the agent stops listening and abandons running
        authentications, whose results observers still receive.
        """
        self.hello()
        self.agent.stopService()
        port, _ = self.reactor.udp[0]
        self.assertFalse(port.listening)
        self.assertEqual(
            self.results,
            [("alice", AuthResult(Outcome.ERROR, "abandoned"))],
        )
        self.assertIsNone(self.agent.hello_port)

    def test_immediate_result(self):
        """
        An authentication that ends at once (an account without
        credentials) is reported and leaves the account free.
        """
        result = AuthResult(Outcome.ERROR, "the account has no credentials")
        self.immediate = result
        self.hello()
        self.hello()
        self.assertEqual(self.results, [("alice", result)] * 2)


class HelloLogPacingTests(SynchronousTestCase):
    """
    Every line the listener logs about a datagram is paced per source and
    reason: a datagram's source can be forged, so a flood of them, even
    naming the server, must not turn the agent into a log amplifier.
    """

    def setUp(self):
        self.clock = Clock()
        self.running = None
        self.listener = HelloListener(
            lambda: {"alice": ALICE},
            lambda account, hello: self.running,
            clock=self.clock,
            log_interval=30.0,
        )
        self.listener.makeConnection(FakeDatagramTransport())
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def flood(self, datagram, source, times=1000):
        for _ in range(times):
            self.listener.datagramReceived(datagram, (source, 1))

    def lines(self):
        return [(event["log_format"], event["quiet"]) for event in self.observer]

    def test_forged_hellos_naming_the_server(self):
        """
        A thousand hellos with the server's address as their source, each
        accepted, give one line; after the interval the next says how many
        were kept quiet.
        """
        self.flood(b"SUTO_alice@desk+", SERVER)
        self.assertEqual(len(self.observer), 1)
        self.clock.advance(30)
        self.flood(b"SUTO_alice@desk+", SERVER, times=1)
        self.assertEqual([quiet for _, quiet in self.lines()], [0, 999])
        self.assertIn(
            "999 more alike since the last report",
            formatEvent(self.observer[1]),
        )
        self.assertNotIn("more alike", formatEvent(self.observer[0]))

    def test_forged_hellos_while_busy(self):
        """
        Hellos for an account being authenticated are logged once, apart
        from the one that started the authentication.
        """
        self.running = Deferred()
        self.flood(b"SUTO_alice@desk+", SERVER)
        self.assertEqual(len(self.observer), 2)

    def test_each_reason_and_source(self):
        """
        Floods of unknown users, malformed datagrams, other messages and
        hellos from elsewhere give one line per source and reason.
        """
        self.flood(b"SUTO_mallory@desk+", SERVER)
        self.flood(b"\xff\x00", SERVER)
        self.flood(b"SUTO_CHECK_", SERVER)
        self.flood(b"SUTO_alice@desk+", "192.0.2.66")
        self.flood(b"SUTO_alice@desk+", "192.0.2.67")
        self.assertEqual(len(self.observer), 5)
        self.assertEqual({quiet for _, quiet in self.lines()}, {0})

    def test_users_apart(self):
        """
        Hellos for two accounts from one server are logged apart: one
        does not hide the other.
        """
        bob = Account(user="bob", server_host=SERVER, legacy=True, password="b")
        listener = HelloListener(
            lambda: {"alice": ALICE, "bob": bob},
            lambda account, hello: None,
            clock=self.clock,
        )
        listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        listener.datagramReceived(b"SUTO_bob@desk+", (SERVER, 1))
        self.assertEqual(
            [event["user"] for event in self.observer], ["alice", "bob"]
        )


class AgentResultLogTests(SynchronousTestCase):
    """
    The agent's text log says why an authentication failed, never a
    secret, and paces the failures a forged hello can cause.
    """

    def setUp(self):
        self.path = os.path.join(self.mktemp(), "client.json")
        save_state(self.path, ClientState({"alice": ALICE}))
        self.reactor = MemoryUDPReactor()
        self.result = None
        self.agent = Agent(
            self.reactor,
            self.path,
            hello_endpoint_port=0,
            authenticate=lambda reactor, account, *, timeout: succeed(
                self.result
            ),
            log_interval=30.0,
        )
        self.agent.startService()
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def hellos(self, times=1):
        _, listener = self.reactor.udp[0]
        for _ in range(times):
            listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))

    def ended(self):
        """
        The rendered text of the lines that say how authentications
        ended.
        """
        return [
            formatEvent(event) for event in self.observer if "outcome" in event
        ]

    def test_reasons_in_the_text(self):
        """
        A pin mismatch, a TLS alert and a missing certificate are in the
        rendered text of the line, not only in its fields; the password is
        in no line.
        """
        reasons = [
            describe_failure(Failure(PinMismatch("aa" * 32, "bb" * 32))),
            describe_failure(
                Failure(
                    SSL.Error(
                        [("SSL routines", "", "tlsv13 alert certificate required")]
                    )
                )
            ),
            "TLS: the certificate is not issued for 192.0.2.10",
        ]
        for reason in reasons:
            self.result = AuthResult(Outcome.ERROR, reason)
            self.hellos()
        lines = self.ended()
        self.assertEqual(len(lines), 3)
        for line, reason in zip(lines, reasons):
            self.assertIn(
                "authentication for alice against 192.0.2.10:2021: error: ", line
            )
            self.assertIn(reason, line)
        self.assertIn("aa" * 32, lines[0])
        self.assertIn("certificate required", lines[1])
        for event in self.observer:
            self.assertNotIn("hunter2", formatEvent(event))
            self.assertNotIn("hunter2", repr(event))

    def test_verdicts_each_logged(self):
        """
        Every verdict is logged: the server makes the requests they
        answer, so they cannot be forged.
        """
        self.result = AuthResult(Outcome.REJECTED, "the server refused")
        self.hellos(3)
        self.assertEqual(len(self.ended()), 3)
        self.assertIn("rejected: the server refused", self.ended()[0])

    def test_forged_hellos_fail_quietly(self):
        """
        A thousand forged hellos from the server's address, each ending in
        the server's refusal, give one line about the hello and one about
        the failure; after the interval the next says how many were kept
        quiet.
        """
        self.result = AuthResult(Outcome.ERROR, "the server answered NO_REQUEST")
        self.hellos(1000)
        self.assertEqual(len(self.observer), 2)
        self.reactor.advance(30)
        self.hellos()
        lines = self.ended()
        self.assertEqual(len(lines), 2)
        self.assertIn("999 more alike since the last report", lines[1])
        self.assertEqual(len(self.observer), 4)


class LogIntervalOptionTests(SynchronousTestCase):
    def test_limit_log_interval(self):
        """
        C{--limit-log-interval} sets the pacing of the agent's log lines,
        60 seconds by default as on the server, and must be more than 0
        and at most an hour.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["limit-log-interval"], 60.0)
        options = tap.Options()
        options.parseOptions(["--limit-log-interval", "5"])
        self.assertEqual(options["limit-log-interval"], 5.0)
        self.assertIsInstance(tap.makeService(options), Agent)
        for value in ("0", "3601"):
            self.assertRaises(
                usage.UsageError,
                tap.Options().parseOptions,
                ["--limit-log-interval", value],
            )


class ForgedHelloSourcesTests(SynchronousTestCase):
    """
    Hellos from ten thousand forged sources, each due on its own, write a
    bounded number of lines: the pacing caps each reason across sources.
    """

    def setUp(self):
        self.clock = Clock()
        self.listener = HelloListener(
            lambda: {"alice": ALICE},
            lambda account, hello: None,
            clock=self.clock,
            log_interval=30.0,
        )
        self.listener.makeConnection(FakeDatagramTransport())
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def test_flood_bounded(self):
        """
        Ten thousand hellos for alice from as many sources that are not
        her server, within one interval, write at most the cap plus one
        lines; after the interval a summary says how many were kept quiet,
        and the real server's hello is logged.
        """
        for n in range(10000):
            self.listener.datagramReceived(
                b"SUTO_alice@desk+", (f"10.0.{n // 256}.{n % 256}", 1)
            )
        flood = len(self.observer)
        self.assertLessEqual(flood, MAX_LINES + 1)
        self.clock.advance(30)
        self.listener.datagramReceived(b"SUTO_alice@desk+", (SERVER, 1))
        summary, last = self.observer[flood:]
        self.assertEqual(summary["quiet"], 10000 - MAX_LINES)
        self.assertEqual(
            formatEvent(last), "hello for alice from 192.0.2.10 (desk)"
        )
