"""
The classic challenge over a store that answers later, as PostgreSQL
does on the database thread: the claim of the request (in the store, when
other processes share it) and the user's hash, read for the salt and for
the check, are awaited; the reactor's turn ends before the store answers,
and the verdict once it does is the one an at-once store gives.  A store
that cannot answer ends the request as an error, with nothing stored.
"""

from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.cluster.relay import Relay
from suto_server.core import libxcrypt, schemes, wire
from suto_server.cred.checkers import ChainedHashSource, SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.phases.classic import ClassicRules, salt_lookup
from suto_server.phases.connection import ServerFactory
from suto_server.rules.rendezvous import Rendezvous, Verdict
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from tests.support.channel import NOTICE_KEY
from tests.support.factories import connected
from tests.support.heldcalls import HeldCalls
from tests.support.pools import ImmediatePool

PASSWORD = "correct horse"
SALT = "$6$abcdefghijklmnop"
RSALT = "$6$ABCDEFGHIJKLMNOP"
DEVICE = "192.0.2.7"


class LaterPeers:
    """
    The rendezvous's other processes, whose store takes each claim when
    the test says.
    """

    def __init__(self):
        self.taking = []
        self.released = []

    def opened(self, request, timeout):
        pass

    def claimed(self, request):
        pass

    def finished(self, request, outcome):
        pass

    def take(self, request):
        self.taking.append(Deferred())
        return self.taking[-1]

    def release(self, request):
        self.released.append(request)


class ClassicListener:
    """
    A listener whose accounts are in a store answering through
    L{HeldCalls}, and the request for C{alice} at L{DEVICE}.
    """

    framing = wire.Framing.FRAMED

    def setUp(self):
        self.clock = task.Clock()
        store = MemoryStore()
        store.add_user("alice", libxcrypt.crypt(PASSWORD, SALT), 0.0)
        self.calls = HeldCalls(store)
        source = ChainedHashSource([self.calls])
        checker = SaltedChallengeChecker(source, ImmediatePool())
        self.peers = self.make_peers()
        self.rendezvous = Rendezvous(self.clock, timeout=5, peers=self.peers)
        self.factory = ServerFactory(
            framing=self.framing,
            clock=self.clock,
            classic=ClassicRules(
                self.rendezvous,
                Portal(SutoRealm(), [checker]),
                salt_lookup(source),
                lambda: RSALT,
            ),
            exchange_timeout=10,
        )
        self.outcomes = []
        self.request = self.rendezvous.open("alice", [DEVICE])
        self.request.done.addCallback(self.outcomes.append)

    def make_peers(self):
        return None

    def connect(self):
        return connected(self.factory, DEVICE)

    def frame(self, *messages):
        return b"".join(wire.encode(m, self.framing) for m in messages)

    def response(self, password=PASSWORD):
        return self.frame(wire.CFHash(schemes.client_response(password, SALT, RSALT)))


class FramedTests(ClassicListener, SynchronousTestCase):
    """
    The framed listener's classic challenge over a store answering later.
    """

    def test_accepts(self):
        """
        The salts wait for the hash's read, C{SUTO_AUTH_1} for its read
        again by the checker; the verdict is the store's hash's.
        """
        protocol, transport = self.connect()
        version = self.frame(wire.Version(wire.PROTOCOL_VERSION))
        protocol.dataReceived(version + self.frame(wire.GetSaltA()))
        self.assertEqual((transport.value(), self.calls.names), (version, ["hash_for"]))
        self.calls.answer()
        self.assertEqual(
            transport.value(), version + self.frame(wire.SaltA(SALT, RSALT))
        )
        transport.clear()
        protocol.dataReceived(self.response())
        self.assertEqual((transport.value(), self.outcomes), (b"", []))
        self.calls.answer()
        self.assertEqual(transport.value(), self.frame(wire.Auth(True)))
        [outcome] = self.outcomes
        self.assertEqual((outcome.verdict, outcome.source), (Verdict.ACCEPTED, DEVICE))

    def test_salt_unreadable(self):
        """
        A store that cannot give the salt: the device is told
        C{SUTO_ERROR_BUSY}, the request ends as an error, and one warning
        line says why.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        transport.clear()
        with capturedLogs() as events:
            self.calls.fail(StoreError("the database went away"))
        self.assertEqual(transport.value(), self.frame(wire.Error(wire.ERROR_BUSY)))
        self.assertTrue(transport.disconnecting)
        [outcome] = self.outcomes
        self.assertEqual(
            (outcome.verdict, outcome.reason),
            (Verdict.ERROR, "the salt could not be read"),
        )
        [warning] = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["user"], "alice")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_check_unreadable(self):
        """
        A store that cannot give the hash for the check: the device is
        told C{SUTO_AUTH_0} and the request ends as an error, not as a
        wrong password.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetRSalt())
        )
        self.calls.answer()
        transport.clear()
        protocol.dataReceived(self.response())
        with capturedLogs() as events:
            self.calls.fail(StoreError("the database went away"))
        self.assertEqual(transport.value(), self.frame(wire.Auth(False)))
        [outcome] = self.outcomes
        self.assertEqual(outcome.verdict, Verdict.ERROR)
        self.assertEqual(
            [e["user"] for e in events if e["log_level"] == LogLevel.warn], ["alice"]
        )
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_lost_while_starting(self):
        """
        A connection gone while the salt is read writes nothing once it
        comes, and its request ends as an error.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        protocol.connectionLost(None)
        transport.clear()
        self.calls.answer()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(
            [(o.verdict, o.reason) for o in self.outcomes],
            [(Verdict.ERROR, "connection lost")],
        )


class LegacyTests(ClassicListener, SynchronousTestCase):
    """
    On the legacy listener the device speaks first.
    """

    framing = wire.Framing.LEGACY

    def test_request_held(self):
        """
        A SUTO 1.3.2 device's request, sent as it connects, waits for the
        salt and is answered once it comes.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(wire.GetSaltA()))
        self.assertEqual(transport.value(), b"")
        self.calls.answer()
        self.assertEqual(transport.value(), self.frame(wire.SaltA(SALT, RSALT)))


class ClaimTests(ClassicListener, SynchronousTestCase):
    """
    The claim taken in a store shared with other processes, answered
    later.
    """

    def make_peers(self):
        return LaterPeers()

    def test_one_claimer(self):
        """
        While one connection's claim is taken, another from the same
        address claims nothing; the first is served once the store grants
        its claim.
        """
        first, first_transport = self.connect()
        first.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        second, second_transport = self.connect()
        second_transport.clear()
        second.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        self.assertIn(
            self.frame(wire.Error(wire.ERROR_NO_REQUEST)), second_transport.value()
        )
        self.assertEqual(len(self.peers.taking), 1)
        self.peers.taking[0].callback(True)
        self.assertEqual(self.calls.names, ["hash_for"])
        self.assertEqual(self.request.claimed_by, DEVICE)

    def test_claimed_elsewhere(self):
        """
        A claim the store refuses (another process's connection took it)
        refuses the connection, and the request waits for that process.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        self.rendezvous.remote_claimed(self.request.key, "192.0.2.99")
        self.peers.taking[0].callback(False)
        self.assertTrue(
            transport.value().endswith(self.frame(wire.Error(wire.ERROR_NO_REQUEST)))
        )
        self.assertEqual(self.request.claimed_by, "192.0.2.99")
        self.rendezvous.remote_finished(
            self.request.key, Verdict.ACCEPTED, "", "192.0.2.99"
        )
        self.assertEqual([o.verdict for o in self.outcomes], [Verdict.ACCEPTED])

    def test_expired_while_claiming(self):
        """
        A request that timed out while its claim was taken lets the claim
        go and serves nobody.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        self.clock.advance(5)
        self.peers.taking[0].callback(True)
        self.assertEqual(self.peers.released, [self.request])
        self.assertEqual(self.calls.names, [])
        self.assertEqual([o.verdict for o in self.outcomes], [Verdict.TIMEOUT])

    def test_claim_fails_unexpectedly(self):
        """
        A claim that fails with what no rule expects (a fault, not a
        store that did not answer) is logged with its traceback, and the
        device is told C{SUTO_ERROR_BUSY} at once rather than left waiting
        for the exchange's timeout; the request stays open for another
        connection.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(
            self.frame(wire.Version(wire.PROTOCOL_VERSION), wire.GetSaltA())
        )
        transport.clear()
        self.peers.taking[0].errback(RuntimeError("a fault"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(transport.value(), self.frame(wire.Error(wire.ERROR_BUSY)))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes, [])
        self.assertTrue(self.rendezvous.expects(DEVICE))


class RelayCallsTests(SynchronousTestCase):
    """
    The relay makes its notices and claims through the store's calls.
    """

    def setUp(self):
        self.calls = HeldCalls(MemoryStore())
        self.relay = Relay(task.Clock(), None, calls=self.calls, key=NOTICE_KEY)
        self.request = Rendezvous(task.Clock()).open("alice", [DEVICE])

    def test_claim_waits(self):
        """
        A claim is the store's answer, awaited.
        """
        taken = self.relay.take(self.request)
        self.assertEqual(self.calls.names, ["take_claim"])
        self.assertNoResult(taken)

    def test_claim_unreachable(self):
        """
        A store that cannot take the claim claims nothing, in a warning.
        """
        taken = self.relay.take(self.request)
        with capturedLogs() as events:
            self.calls.fail(StoreError("the database went away"))
        self.assertIs(self.successResultOf(taken), False)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_notice_unsent(self):
        """
        A notice the store could not send is reported as unsent.
        """
        sent = self.relay.send("here", 0)
        with capturedLogs():
            self.calls.fail(StoreError("the database went away"))
        self.assertIs(self.successResultOf(sent), False)
