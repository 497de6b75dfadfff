"""
The server's Protocol and Factory over a StringTransport and a task.Clock:
exact bytes in both framings, every way an exchange can end.
"""

from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import libxcrypt, schemes, wire
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.phases.classic import ClassicRules, salt_lookup
from suto_server.phases.connection import ServerFactory
from suto_server.rules.rendezvous import Rendezvous, Verdict
from tests.support.factories import connected
from tests.support.pools import ImmediatePool
from tests.support.sources import DictSource

PASSWORD = "correct horse"
STORED = libxcrypt.crypt(PASSWORD, "$6$abcdefghijklmnop")
SALT = "$6$abcdefghijklmnop"
RSALT = "$6$ABCDEFGHIJKLMNOP"
RESPONSE = schemes.client_response(PASSWORD, SALT, RSALT)
WRONG = schemes.client_response("wrong", SALT, RSALT)


class ProtocolTestsMixin:
    framing = None

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.source = DictSource({"alice": STORED})
        self.pool = ImmediatePool()
        portal = Portal(SutoRealm(), [SaltedChallengeChecker(self.source, self.pool)])
        self.factory = ServerFactory(
            framing=self.framing,
            clock=self.clock,
            classic=ClassicRules(
                self.rendezvous,
                portal,
                salt_for=salt_lookup(self.source),
                make_rsalt=lambda: RSALT,
            ),
            exchange_timeout=10,
        )
        self.outcomes = []

    def open_request(self, user="alice", source="127.0.0.1"):
        request = self.rendezvous.open(user, [source])
        request.done.addCallback(self.outcomes.append)
        return request

    def connect(self, source="127.0.0.1"):
        return connected(self.factory, source)

    def frame(self, *messages):
        return b"".join(wire.encode(m, self.framing) for m in messages)

    def handshake(self):
        "The messages a client sends before its request, by framing."
        if self.framing is wire.Framing.FRAMED:
            return [wire.Version(wire.PROTOCOL_VERSION)]
        return []

    def answer_to_handshake(self):
        return self.frame(*self.handshake())

    def test_salta_path_accepts(self):
        """
        A device that asks for both salts and answers with the right final
        hash gets C{SUTO_AUTH_1}, the connection closes and the request
        ends accepted with the device's address.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetSaltA()))
        self.assertEqual(
            transport.value(),
            self.answer_to_handshake() + self.frame(wire.SaltA(SALT, RSALT)),
        )
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        self.assertEqual(transport.value(), self.frame(wire.Auth(True)))
        self.assertTrue(transport.disconnecting)
        [outcome] = self.outcomes
        self.assertEqual(
            (outcome.user, outcome.verdict, outcome.source),
            ("alice", Verdict.ACCEPTED, "127.0.0.1"),
        )

    def test_rsalt_path_accepts(self):
        """
        A device that has the salt asks only for the random salt.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        self.assertEqual(
            transport.value(),
            self.answer_to_handshake() + self.frame(wire.RSalt(RSALT)),
        )
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        self.assertEqual(transport.value(), self.frame(wire.Auth(True)))
        self.assertEqual(self.outcomes[0].verdict, Verdict.ACCEPTED)

    def test_byte_at_a_time(self):
        """
        The exchange works when every byte arrives in its own segment.
        """
        self.open_request()
        protocol, transport = self.connect()
        data = self.frame(*self.handshake(), wire.GetRSalt())
        for index in range(len(data)):
            protocol.dataReceived(data[index : index + 1])
        transport.clear()
        data = self.frame(wire.CFHash(RESPONSE))
        for index in range(len(data)):
            protocol.dataReceived(data[index : index + 1])
        self.assertEqual(transport.value(), self.frame(wire.Auth(True)))

    def test_wrong_password_rejected(self):
        """
        A final hash made from another password gets C{SUTO_AUTH_0}.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(WRONG)))
        self.assertEqual(transport.value(), self.frame(wire.Auth(False)))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes[0].verdict, Verdict.REJECTED)

    def test_user_without_hash_rejected(self):
        """
        If the user's hash disappeared after the request was opened,
        C{SUTO_C_GET_SALTA} gets C{SUTO_AUTH_0} and no salt.
        """
        self.open_request(user="bob")
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetSaltA()))
        self.assertEqual(
            transport.value(),
            self.answer_to_handshake() + self.frame(wire.Auth(False)),
        )
        self.assertEqual(self.outcomes[0].verdict, Verdict.REJECTED)

    def test_unknown_user_on_rsalt_path_rejected(self):
        """
        The RSALT path for a user without a hash ends in C{SUTO_AUTH_0}.
        """
        self.open_request(user="bob")
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        self.assertEqual(transport.value(), self.frame(wire.Auth(False)))
        self.assertEqual(self.outcomes[0].verdict, Verdict.REJECTED)

    def test_no_pending_request_refused(self):
        """
        A connection that answers no pending request is closed at once and
        claims nothing.
        """
        self.open_request(source="127.0.0.2")
        protocol, transport = self.connect(source="127.0.0.1")
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes, [])
        self.assertIsNone(self.rendezvous.pending[0].claimed_by)

    def test_one_connection_per_request(self):
        """
        A second connection from the same address finds the request
        already claimed and is refused as one that answers no request
        (C{SUTO_ERROR_NO_REQUEST} on the framed listener, silence on the
        legacy one); the first keeps the request and completes it.
        """
        self.open_request()
        first, first_transport = self.connect()
        first.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        refusal = b""
        if self.framing is wire.Framing.FRAMED:
            refusal = self.frame(wire.Error(wire.ERROR_NO_REQUEST))
        self.assertEqual(transport.value(), self.answer_to_handshake() + refusal)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            (
                self.outcomes,
                [request.claimed_by for request in self.rendezvous.pending],
            ),
            ([], ["127.0.0.1"]),
        )
        self.assertFalse(first_transport.disconnecting)
        first_transport.clear()
        first.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        self.assertEqual(first_transport.value(), self.frame(wire.Auth(True)))
        self.assertEqual(
            [(outcome.user, outcome.verdict) for outcome in self.outcomes],
            [("alice", Verdict.ACCEPTED)],
        )

    def test_timeout(self):
        """
        A device that goes silent is dropped after the exchange timeout and
        the request ends in error.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        self.clock.advance(9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes[0].verdict, Verdict.ERROR)
        self.assertIn("TIMEOUT", self.outcomes[0].reason)

    def test_hash_before_request(self):
        """
        A final hash before any salt was sent is out of order.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.CFHash(RESPONSE)))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes[0].verdict, Verdict.ERROR)
        self.assertIn("OUT_OF_ORDER", self.outcomes[0].reason)

    def test_pipelined_message(self):
        """
        A message sent while the verdict is being computed breaks lockstep:
        the exchange ends in error and the late verdict writes nothing.
        """
        self.pool.hold = True
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE), wire.GetRSalt()))
        self.assertTrue(transport.disconnecting)
        self.assertIn("PIPELINED", self.outcomes[0].reason)
        written = transport.value()
        self.pool.release()
        self.assertEqual(transport.value(), written)

    def test_garbage(self):
        """
        Bytes that are no SUTO message end the exchange with an error, not
        a traceback.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        protocol.dataReceived(b"\x00\xffGET / HTTP/1.1\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes[0].verdict, Verdict.ERROR)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_cancelled(self):
        """
        C{SUTO_AUTH_CANCELLED} ends the request as cancelled and nothing is
        answered.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        transport.clear()
        protocol.dataReceived(self.frame(wire.AuthCancelled()))
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.outcomes[0].verdict, Verdict.CANCELLED)

    def test_connection_lost(self):
        """
        A device that hangs up mid-exchange ends the request in error.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        protocol.connectionLost(None)
        self.assertEqual(self.outcomes[0].verdict, Verdict.ERROR)
        self.assertEqual(self.outcomes[0].reason, "connection lost")

    def test_pool_busy(self):
        """
        A saturated hash pool refuses with C{SUTO_AUTH_0}, and the request
        ends in error rather than as a wrong password.
        """
        self.pool.busy = True
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        transport.clear()
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        self.assertEqual(transport.value(), self.frame(wire.Auth(False)))
        self.assertEqual(self.outcomes[0].verdict, Verdict.ERROR)

    def test_no_secret_logged(self):
        """
        No log event carries the final hash, the stored hash or the salts
        in any field.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetSaltA()))
        protocol.dataReceived(self.frame(wire.CFHash(WRONG)))
        text = repr(events)
        for secret in (WRONG, STORED, RESPONSE, RSALT):
            self.assertNotIn(secret, text)
        self.assertTrue(events)


class FramedProtocolTests(ProtocolTestsMixin, SynchronousTestCase):
    framing = wire.Framing.FRAMED

    def test_refusal_names_reason(self):
        """
        On the framed listener a salt request that answers no pending
        authentication is told why.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_VERSION_2\r\nSUTO_C_GET_RSALT\r\n")
        self.assertEqual(
            transport.value(), b"SUTO_VERSION_2\r\nSUTO_ERROR_NO_REQUEST\r\n"
        )
        self.assertTrue(transport.disconnecting)

    def test_claim_waits_for_request(self):
        """
        A framed connection claims its pending request only with its first
        request, so a connection that only says its version claims nothing.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_VERSION_2\r\n")
        self.assertIsNone(self.rendezvous.pending[0].claimed_by)

    def test_garbage_before_version(self):
        """
        Bytes that are no SUTO message before the version exchange are
        answered with the error and the connection closes, claiming
        nothing.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"\x00\xff\r\n")
        self.assertEqual(transport.value(), b"SUTO_ERROR_BAD_CHARACTER\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.rendezvous.pending[0].claimed_by)

    def test_bad_version(self):
        """
        A version this server does not speak gets C{SUTO_ERROR_BAD_VERSION}.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_VERSION_9\r\n")
        self.assertEqual(transport.value(), b"SUTO_ERROR_BAD_VERSION\r\n")
        self.assertTrue(transport.disconnecting)

    def test_error_answer(self):
        """
        On the framed listener a protocol error is answered with its code.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_C_GET_RSALT\r\n")
        self.assertEqual(transport.value(), b"SUTO_ERROR_OUT_OF_ORDER\r\n")


class _RecordingTransport(StringTransport):
    """
    A L{StringTransport} that also records each write and the close, in
    order.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def write(self, data):
        self.calls.append(("write", data))
        super().write(data)

    def loseConnection(self):
        self.calls.append(("close",))
        super().loseConnection()


class WritesPerReadTests(ProtocolTestsMixin, SynchronousTestCase):
    """
    What the server answers while it handles one read leaves in one write;
    an answer made outside a read leaves at once.
    """

    framing = wire.Framing.FRAMED

    def connect(self, source="127.0.0.1"):
        protocol = self.factory.buildProtocol(None)
        transport = _RecordingTransport(
            peerAddress=IPv4Address("TCP", source, 40000)
        )
        protocol.makeConnection(transport)
        return protocol, transport

    def test_one_write_per_read(self):
        """
        A read holding the version and the request is answered by one write
        holding the version echo and the random salt.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        self.assertEqual(
            transport.calls,
            [("write", self.frame(*self.handshake(), wire.RSalt(RSALT)))],
        )

    def test_answers_before_close(self):
        """
        A read that ends the connection writes its answers, in one write,
        before the close.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.CFHash(RESPONSE)))
        self.assertEqual(
            transport.calls,
            [
                (
                    "write",
                    self.frame(
                        *self.handshake(), wire.Error(wire.ERROR_OUT_OF_ORDER)
                    ),
                ),
                ("close",),
            ],
        )

    def test_later_answer_written_at_once(self):
        """
        A verdict that comes after the read that asked for it (the hash
        pool answering later) is written when it comes.
        """
        self.pool.hold = True
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(self.frame(*self.handshake(), wire.GetRSalt()))
        protocol.dataReceived(self.frame(wire.CFHash(RESPONSE)))
        del transport.calls[:]
        self.pool.release()
        self.assertEqual(transport.calls[0], ("write", self.frame(wire.Auth(True))))


class LegacyProtocolTests(ProtocolTestsMixin, SynchronousTestCase):
    framing = wire.Framing.LEGACY

    def test_exact_bytes(self):
        """
        The legacy listener answers with SUTO 1.3.2's exact lengths: a
        50-byte SALTA reply for a 16-character SHA-512 salt, an 11-byte
        verdict.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_C_GET_SALTA")
        reply = transport.value()
        self.assertEqual(reply, b"SUTO_SALTA_" + SALT.encode() + b"_" + RSALT.encode())
        self.assertEqual(len(reply), 50)
        transport.clear()
        protocol.dataReceived(b"SUTO_CF_HASH_" + RESPONSE.encode())
        self.assertEqual(transport.value(), b"SUTO_AUTH_1")

    def test_refusal_is_silent(self):
        """
        Legacy peers get no unsolicited bytes: a connection with no request
        is just closed.
        """
        protocol, transport = self.connect()
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)

    def test_error_answer(self):
        """
        On the legacy listener a protocol error is answered C{SUTO_AUTH_0}.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_CF_HASH_" + RESPONSE.encode())
        self.assertEqual(transport.value(), b"SUTO_AUTH_0")

    def test_trailing_crlf_tolerated(self):
        """
        A 1.3.2 client that appends CRLF still authenticates.
        """
        self.open_request()
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_C_GET_RSALT\r\n")
        transport.clear()
        protocol.dataReceived(b"SUTO_CF_HASH_" + RESPONSE.encode() + b"\r\n")
        self.assertEqual(transport.value(), b"SUTO_AUTH_1")
