"""
Tests for L{suto_client.protocol}: the bytes the agent exchanges with a
server, over a L{StringTransport} and a L{Clock}.
"""

from OpenSSL import SSL
from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client.classic_machine import Outcome
from suto_client.protocol import (
    AuthResult,
    ClassicClientProtocol,
    Derivation,
    account_trust,
    authenticate,
    derive_response,
    describe_failure,
)
from suto_client.state import Account
from suto_client.tls import CertificateRejected, PinMismatch
from suto_server.core import libxcrypt, schemes, wire

PASSWORD = "correct horse"
SALT = "$6$saltsaltsaltsalt$"
RSALT = "$6$rsaltrsaltrsalt1"
SALTED = SALT + "s" * 86
RESPONSE = RSALT + "$" + "r" * 86
SALTA = b"SUTO_SALTA_" + SALT.encode() + b"_" + RSALT.encode()

NEW = Account(
    user="alice", server_host="127.0.0.1", legacy=True, password=PASSWORD
)
CACHED = Account(
    user="alice",
    server_host="127.0.0.1",
    legacy=True,
    salt=SALT,
    salted_hash=SALTED,
)


class ClassicClientProtocolTests(SynchronousTestCase):
    def connect(self, account, framing, derive=None):
        """
        Connect a protocol for C{account} to a string transport; hashes
        come from C{derive}, by default one that records its calls and
        answers L{RESPONSE} at once.
        """
        self.derived = []
        self.clock = Clock()
        self.transport = StringTransport()
        self.protocol = ClassicClientProtocol(
            account, framing, self.clock, 10.0, derive or self.derive
        )
        self.results = []
        self.protocol.finished.addCallback(self.results.append)
        self.protocol.makeConnection(self.transport)

    def derive(self, account, salt, rsalt):
        self.derived.append((account, salt, rsalt))
        return succeed(Derivation(RESPONSE, SALTED))

    def exchange(self, data: bytes) -> bytes:
        """
        Deliver C{data} from the server; return what the client wrote.
        """
        self.transport.clear()
        self.protocol.dataReceived(data)
        return self.transport.value()

    def test_framed_salta_bytes(self):
        """
        A framed exchange by password sends exactly these lines, hashes
        with the server's salts, and reports the salt and salted hash
        learned once accepted.
        """
        self.connect(NEW, wire.Framing.FRAMED)
        self.assertEqual(self.transport.value(), b"SUTO_VERSION_2\r\n")
        self.assertEqual(
            self.exchange(b"SUTO_VERSION_2\r\n"), b"SUTO_C_GET_SALTA\r\n"
        )
        self.assertEqual(
            self.exchange(SALTA + b"\r\n"),
            b"SUTO_CF_HASH_" + RESPONSE.encode() + b"\r\n",
        )
        self.assertEqual(self.derived, [(NEW, SALT, RSALT)])
        self.assertEqual(self.results, [])
        self.assertEqual(self.exchange(b"SUTO_AUTH_1\r\n"), b"")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(
            self.results, [AuthResult(Outcome.ACCEPTED, "", SALT, SALTED)]
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_legacy_rsalt_bytes(self):
        """
        A legacy exchange with a cached salted hash sends the bare 1.3.2
        messages, without terminators, and learns nothing new.
        """
        self.connect(CACHED, wire.Framing.LEGACY)
        self.assertEqual(self.transport.value(), b"SUTO_C_GET_RSALT")
        self.assertEqual(
            self.exchange(b"SUTO_RSALT_" + RSALT.encode()),
            b"SUTO_CF_HASH_" + RESPONSE.encode(),
        )
        self.assertEqual(self.derived, [(CACHED, None, RSALT)])
        self.exchange(b"SUTO_AUTH_1")
        self.assertEqual(self.results, [AuthResult(Outcome.ACCEPTED)])

    def test_split_across_reads(self):
        """
        A reply arriving one byte at a time is read as one message.
        """
        self.connect(CACHED, wire.Framing.LEGACY)
        self.transport.clear()
        for byte in b"SUTO_RSALT_" + RSALT.encode():
            self.protocol.dataReceived(bytes([byte]))
        self.assertEqual(
            self.transport.value(), b"SUTO_CF_HASH_" + RESPONSE.encode()
        )

    def test_rejected(self):
        """
        AUTH_0 is reported as rejected, without the learned salt: the
        password that was refused must not be turned into a cached hash.
        """
        self.connect(NEW, wire.Framing.LEGACY)
        self.exchange(SALTA)
        self.exchange(b"SUTO_AUTH_0")
        self.assertEqual(
            self.results,
            [
                AuthResult(
                    Outcome.REJECTED, "the server refused the authentication"
                )
            ],
        )

    def test_server_error(self):
        """
        A framed server's error line ends the exchange as an error.
        """
        self.connect(NEW, wire.Framing.FRAMED)
        self.exchange(b"SUTO_ERROR_BAD_VERSION\r\n")
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "the server reported BAD_VERSION")],
        )
        self.assertTrue(self.transport.disconnecting)

    def test_garbage(self):
        """
        Bytes that are no SUTO message end the exchange, and later bytes
        are ignored.
        """
        self.connect(NEW, wire.Framing.LEGACY)
        self.assertEqual(self.exchange(b"HELLO"), b"")
        self.assertEqual(self.exchange(b"SUTO_AUTH_1"), b"")
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "protocol error: UNKNOWN_MESSAGE")],
        )

    def test_timeout(self):
        """
        A server that stays silent for the timeout is dropped and the
        exchange ends as a timeout; a hash finishing afterwards sends
        nothing.
        """
        pending = Deferred()
        self.connect(NEW, wire.Framing.LEGACY, lambda *args: pending)
        self.exchange(SALTA)
        self.clock.advance(9.9)
        self.assertEqual(self.results, [])
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.TIMEOUT, "the server did not answer in time")],
        )
        self.transport.clear()
        pending.callback(Derivation(RESPONSE, SALTED))
        self.assertEqual(self.transport.value(), b"")

    def test_connection_lost(self):
        """
        A connection lost mid-exchange ends it as an error saying so.
        """
        self.connect(NEW, wire.Framing.FRAMED)
        self.exchange(b"SUTO_VERSION_2\r\n")
        self.protocol.connectionLost(Failure(internet_error.ConnectionLost()))
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "the connection was lost")],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closed_by_server(self):
        """
        A server closing cleanly before the verdict is an error too; before
        its first message, it turned the connection away.
        """
        self.connect(NEW, wire.Framing.LEGACY)
        self.protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.assertEqual(
            self.results,
            [
                AuthResult(
                    Outcome.ERROR,
                    "the server closed the connection",
                    turned_away=True,
                )
            ],
        )

    def test_closed_after_verdict(self):
        """
        The server closing after its verdict changes nothing.
        """
        self.connect(CACHED, wire.Framing.LEGACY)
        self.exchange(b"SUTO_RSALT_" + RSALT.encode())
        self.exchange(b"SUTO_AUTH_1")
        self.protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.assertEqual(self.results, [AuthResult(Outcome.ACCEPTED)])

    def test_hash_failure(self):
        """
        A salt crypt rejects ends the exchange as an error, and nothing
        about the salt or password reaches the result.
        """
        self.connect(
            NEW,
            wire.Framing.LEGACY,
            lambda *args: fail(libxcrypt.CryptError("bad setting")),
        )
        self.assertEqual(self.exchange(SALTA), b"")
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "could not compute the response")],
        )

    def test_cancel(self):
        """
        Cancelling the result abandons the exchange: the connection is
        dropped and the result is an error, not a failure.
        """
        self.connect(NEW, wire.Framing.FRAMED)
        self.protocol.finished.cancel()
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(
            self.results,
            [AuthResult(Outcome.ERROR, "the exchange was abandoned")],
        )

    def test_real_hashes(self):
        """
        With the real derivation, the response sent is the seed's formula
        C{crypt(crypt(password, salt), rsalt)}, and the salted hash learned
        is C{crypt(password, salt)}.
        """
        self.connect(
            NEW,
            wire.Framing.LEGACY,
            lambda *args: maybeDeferred(derive_response, *args),
        )
        sent = self.exchange(SALTA)
        expected = schemes.client_response(PASSWORD, SALT, RSALT)
        self.assertEqual(sent, b"SUTO_CF_HASH_" + expected.encode())
        self.exchange(b"SUTO_AUTH_1")
        self.assertEqual(
            self.results[0].salted_hash, libxcrypt.crypt(PASSWORD, SALT)
        )


class DeriveResponseTests(SynchronousTestCase):
    def test_from_password(self):
        """
        Given the password salt, the password is hashed with it first.
        """
        derivation = derive_response(NEW, SALT, RSALT)
        salted = libxcrypt.crypt(PASSWORD, SALT)
        self.assertEqual(
            derivation,
            Derivation(schemes.challenge_response(salted, RSALT), salted),
        )

    def test_from_cache(self):
        """
        Without a password salt, the cached salted hash is used as is.
        """
        salted = libxcrypt.crypt(PASSWORD, SALT)
        account = Account(
            user="alice", server_host="127.0.0.1", salted_hash=salted
        )
        self.assertEqual(
            derive_response(account, None, RSALT).response,
            schemes.client_response(PASSWORD, SALT, RSALT),
        )

    def test_missing_credential(self):
        """
        An account lacking what the path needs raises L{ValueError}.
        """
        bare = Account(user="alice", server_host="127.0.0.1")
        self.assertRaises(ValueError, derive_response, bare, SALT, RSALT)
        self.assertRaises(ValueError, derive_response, bare, None, RSALT)


class DescribeFailureTests(SynchronousTestCase):
    def test_descriptions(self):
        """
        Connection failures are described in fixed words; a pin mismatch
        names both fingerprints.
        """
        cases = [
            (None, "the server closed the connection"),
            (internet_error.ConnectionRefusedError(), "connection refused"),
            (internet_error.ConnectionLost(), "the connection was lost"),
            (ValueError("secret detail"), "connection failed: ValueError"),
        ]
        for exception, expected in cases:
            reason = None if exception is None else Failure(exception)
            self.assertEqual(describe_failure(reason), expected)
        text = describe_failure(Failure(PinMismatch("aa" * 32, "bb" * 32)))
        self.assertIn("aa" * 32, text)
        self.assertIn("bb" * 32, text)

    def test_certificate_rejected(self):
        """
        A certificate refused under CA trust is described with its
        fingerprint and the reason.
        """
        text = describe_failure(
            Failure(CertificateRejected("cc" * 32, "it has expired"))
        )
        self.assertTrue(text.startswith("TLS: "))
        self.assertIn("cc" * 32, text)
        self.assertIn("it has expired", text)

    def test_tls_error(self):
        """
        A failed handshake names OpenSSL's reasons, such as the alert of a
        server that demands a client certificate; without any, it says
        only that the handshake failed.
        """
        alert = SSL.Error(
            [("SSL routines", "", "tlsv13 alert certificate required")]
        )
        self.assertEqual(
            describe_failure(Failure(alert)),
            "TLS handshake failed: tlsv13 alert certificate required",
        )
        self.assertEqual(
            describe_failure(Failure(SSL.Error())), "TLS handshake failed"
        )


class AuthenticateTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def authenticate(self, account, **kwargs):
        results = []
        authenticate(self.reactor, account, **kwargs).addCallback(
            results.append
        )
        return results

    def test_no_credentials(self):
        """
        An account with neither password nor salted hash fails at once,
        without connecting.
        """
        bare = Account(user="alice", server_host="127.0.0.1", legacy=True)
        self.assertEqual(
            self.authenticate(bare),
            [AuthResult(Outcome.ERROR, "the account has no credentials")],
        )
        self.assertEqual(self.reactor.tcpClients, [])

    def test_tls_without_pin(self):
        """
        A TLS account with no pin and no other trust does not connect.
        """
        account = Account(user="alice", server_host="127.0.0.1", password="p")
        [result] = self.authenticate(account)
        self.assertEqual(result.outcome, Outcome.ERROR)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_unusable_ca_bundle(self):
        """
        A TLS account whose CA bundle cannot be read does not connect; the
        reason names the file.
        """
        account = Account(
            user="alice",
            server_host="127.0.0.1",
            ca="/nonexistent/ca.pem",
            password="p",
        )
        [result] = self.authenticate(account)
        self.assertEqual(result.outcome, Outcome.ERROR)
        self.assertIn("/nonexistent/ca.pem", result.reason)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_connects_to_server(self):
        """
        The connection goes to the account's address and port, IPv6
        included, with the timeout as the connection timeout.
        """
        account = Account(
            user="alice",
            server_host="::1",
            server_port=3021,
            pin="ab" * 32,
            password="p",
        )
        self.authenticate(account, timeout=4.0)
        [(host, port, _, timeout, _)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout), ("::1", 3021, 4.0))

    def test_refused(self):
        """
        A refused connection is an error result, one the server turned
        away.  The caller logs it (the agent, whose tests check the line).
        """
        results = self.authenticate(NEW)
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(
            self.reactor.connectors[0],
            Failure(internet_error.ConnectionRefusedError()),
        )
        self.assertEqual(
            results,
            [AuthResult(Outcome.ERROR, "connection refused", turned_away=True)],
        )
        self.assertEqual([e for e in self.observer if "outcome" in e], [])

    def test_connect_timeout(self):
        """
        A connection attempt that times out is a timeout result.
        """
        results = self.authenticate(NEW)
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(
            self.reactor.connectors[0],
            Failure(internet_error.TimeoutError()),
        )
        self.assertEqual(results[0].outcome, Outcome.TIMEOUT)

    def test_cancel_while_connecting(self):
        """
        Cancelling before the connection is made stops the attempt and
        gives an error result.
        """
        running = authenticate(self.reactor, NEW)
        running.cancel()
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(
            self.successResultOf(running),
            AuthResult(Outcome.ERROR, "the exchange was abandoned"),
        )


class AccountTrustTests(SynchronousTestCase):
    def test_half_a_client_certificate(self):
        """
        A client certificate without its key, or a key without its
        certificate, is a L{ValueError}, not silently ignored.
        """
        for fields in ({"client_cert": "/c.crt"}, {"client_key": "/c.key"}):
            account = Account(
                user="alice", server_host="127.0.0.1", pin="ab" * 32, **fields
            )
            self.assertRaises(ValueError, account_trust, account)


class TurnedAwayTests(SynchronousTestCase):
    """
    L{AuthResult.turned_away} says that the server refused the connection
    or closed it before its first message, and nothing else: that alone
    is worth trying again soon.
    """

    def lose(self, reason, heard=b""):
        protocol = ClassicClientProtocol(
            NEW, wire.Framing.FRAMED, Clock(), 10.0, lambda *a: Deferred()
        )
        results = []
        protocol.finished.addCallback(results.append)
        protocol.makeConnection(StringTransport())
        if heard:
            protocol.dataReceived(heard)
        protocol.connectionLost(Failure(reason))
        [result] = results
        return result

    def test_closed_before_a_message(self):
        """
        A connection closed or lost before the server said anything, as
        a server over its connection limits does, was turned away.
        """
        for reason in (
            internet_error.ConnectionDone(),
            internet_error.ConnectionLost(),
        ):
            self.assertTrue(self.lose(reason).turned_away)

    def test_closed_after_a_message(self):
        """
        Once the server spoke, a close is not a turn-away.
        """
        result = self.lose(internet_error.ConnectionLost(), b"SUTO_VERSION_2\r\n")
        self.assertEqual(
            result, AuthResult(Outcome.ERROR, "the connection was lost")
        )

    def test_trust_failures(self):
        """
        A pin mismatch, a certificate rejected under CA trust and a TLS
        alert are never turn-aways: trying again would fail again.
        """
        for reason in (
            PinMismatch("aa" * 32, "bb" * 32),
            CertificateRejected("cc" * 32, "it has expired"),
            SSL.Error([("SSL routines", "", "tlsv13 alert certificate required")]),
        ):
            result = self.lose(reason)
            self.assertEqual(result.outcome, Outcome.ERROR)
            self.assertFalse(result.turned_away)

    def test_connect_timeout(self):
        """
        A connection attempt that timed out was not turned away.
        """
        protocol = ClassicClientProtocol(
            NEW, wire.Framing.LEGACY, Clock(), 10.0, lambda *a: Deferred()
        )
        protocol.connection_failed(Failure(internet_error.TimeoutError()))
        result = self.successResultOf(protocol.finished)
        self.assertEqual(
            (result.outcome, result.turned_away), (Outcome.TIMEOUT, False)
        )
