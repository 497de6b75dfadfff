"""
Tests for L{suto_client.enrollment}: the endpoint's side of enrollment, as
exact sequences of messages and actions, as bytes over a
L{StringTransport} and a L{Clock}, and through L{enroll}.
"""

import base64
import os

from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import (
    EventLoggingObserver,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_client.classic_machine import ComputeHash
from suto_client.enrollment import (
    EnrollmentProtocol,
    EnrollResult,
    derive_salted_response,
    enroll,
)
from suto_client.enrollment_machine import (
    ClientEnrollment,
    EnrollmentError,
    EnrollOutcome,
    Finish,
)
from suto_client.protocol import Derivation
from suto_client.state import ClientState, EnrolledProfile
from suto_client.statefile import load_state, save_state
from suto_server.core import keyschedule, libxcrypt, schemes, timing, wire
from suto_server.core.machine import Close, Send
from tests.support.client_enrollment import (
    RESPONSE,
    RSALT,
    SALT,
    SALTED,
    USER,
    confirmation,
    expected_key,
)
from tests.support.enrollment import FINGERPRINT, RANDOM
from tests.support.sources import FixedSource

PIN = "ab" * 32

C2S = keyschedule.Direction.CLIENT_TO_SERVER


def server_view(sealed_data: bytes, salted: str = SALTED, user: str = USER):
    """
    What a server holding C{salted} makes of the client's enrollment data,
    computed here from the key schedule alone.

    @return: the fingerprint hash and random data it opens to, the first
        key and its key id.
    """
    secret = keyschedule.password_secret(salted, user)
    plaintext = keyschedule.open_sealed(
        secret,
        sealed_data,
        profile=user,
        purpose="enroll-data",
        direction=C2S,
        counter=0,
    )
    fingerprint, random_data = plaintext[:32], plaintext[32:]
    first = keyschedule.first_key(random_data, fingerprint, secret, user)
    return fingerprint, random_data, first, keyschedule.key_id(first)


def expected_data(salted: str = SALTED) -> wire.EnrollData:
    """
    The enrollment data the client must send: seals are deterministic
    for a given key, counter and direction, so this is exact.
    """
    secret = keyschedule.password_secret(salted, USER)
    return wire.EnrollData(
        keyschedule.seal(
            secret,
            FINGERPRINT + RANDOM,
            profile=USER,
            purpose="enroll-data",
            direction=C2S,
            counter=0,
        )
    )


class ClientEnrollmentTests(SynchronousTestCase):
    def setUp(self):
        self.enrollment = ClientEnrollment(USER, FINGERPRINT, RANDOM)

    def advance_to_verdict(self):
        """
        Run the conversation up to the point where CF_HASH has gone out.
        """
        self.enrollment.start()
        self.enrollment.receive(wire.Version(2))
        self.enrollment.receive(wire.SaltA(SALT, RSALT))
        self.enrollment.hashed(SALTED, RESPONSE)

    def advance_to_confirmation(self) -> wire.EnrollData:
        """
        Run the conversation up to the point where ENROLL_DATA has gone
        out; return it.
        """
        self.advance_to_verdict()
        [send] = self.enrollment.receive(wire.Auth(True))
        return send.message

    def test_success(self):
        """
        A successful enrollment is exactly: VERSION both ways, ENROLL,
        SALTA, a hash computed from both salts, CF_HASH, AUTH_1, the sealed
        fingerprint hash and random data, and a confirmation naming the
        first key, after which the connection is closed and the first key
        and its id are handed over.
        """
        self.assertEqual(self.enrollment.start(), [Send(wire.Version(2))])
        self.assertEqual(
            self.enrollment.receive(wire.Version(2)),
            [Send(wire.Enroll(USER))],
        )
        self.assertEqual(
            self.enrollment.receive(wire.SaltA(SALT, RSALT)),
            [ComputeHash(SALT, RSALT)],
        )
        self.assertEqual(
            self.enrollment.hashed(SALTED, RESPONSE),
            [Send(wire.CFHash(RESPONSE))],
        )
        self.assertEqual(
            self.enrollment.receive(wire.Auth(True)),
            [Send(expected_data())],
        )
        first = expected_key()
        key_id = keyschedule.key_id(first)
        self.assertEqual(
            self.enrollment.receive(
                wire.Enrolled(key_id, confirmation(first, key_id.encode()))
            ),
            [Close(), Finish(EnrollOutcome.ENROLLED, "", first, key_id)],
        )

    def test_server_derives_same_key(self):
        """
        The data the client sends opens, for a server holding the same
        salted hash, to this machine's fingerprint hash and random data,
        and yields the same first key the client ends with.
        """
        data = self.advance_to_confirmation()
        fingerprint, random_data, first, key_id = server_view(data.sealed)
        self.assertEqual((fingerprint, random_data), (FINGERPRINT, RANDOM))
        actions = self.enrollment.receive(
            wire.Enrolled(key_id, confirmation(first, key_id.encode()))
        )
        self.assertEqual(actions[-1].key, first)

    def test_refused_at_enroll(self):
        """
        AUTH_0 in answer to ENROLL (no window for this user here, or it
        expired) ends the enrollment as rejected, saying so.
        """
        self.enrollment.start()
        self.enrollment.receive(wire.Version(2))
        self.assertEqual(
            self.enrollment.receive(wire.Auth(False)),
            [
                Close(),
                Finish(
                    EnrollOutcome.REJECTED,
                    "the server refused the enrollment: no open window for "
                    "this user from this address, or it expired",
                ),
            ],
        )

    def test_refused_after_hash(self):
        """
        AUTH_0 in answer to CF_HASH is a wrong one-time password.
        """
        self.advance_to_verdict()
        self.assertEqual(
            self.enrollment.receive(wire.Auth(False)),
            [
                Close(),
                Finish(
                    EnrollOutcome.REJECTED,
                    "the server refused the one-time password",
                ),
            ],
        )

    def test_bad_seal(self):
        """
        SUTO_ERROR_BAD_SEAL in answer to the enrollment data ends the
        enrollment as an error that explains the code.
        """
        self.advance_to_confirmation()
        self.assertEqual(
            self.enrollment.receive(wire.Error("BAD_SEAL")),
            [
                Close(),
                Finish(
                    EnrollOutcome.ERROR,
                    "the server could not open the enrollment data "
                    "(BAD_SEAL)",
                ),
            ],
        )

    def test_penalised(self):
        """
        SUTO_ERROR_PENALTY_<n>, sent to a penalised source right after the
        TLS handshake, tells the person at the desk to wait and how long.
        """
        self.enrollment.start()
        self.assertEqual(
            self.enrollment.receive(wire.Error(wire.penalty_code(17.2))),
            [
                Close(),
                Finish(
                    EnrollOutcome.ERROR,
                    "too many failed attempts from this address: wait 18 s "
                    "and try again",
                ),
            ],
        )

    def test_unknown_server_error(self):
        """
        An error code this client does not know is reported as is.
        """
        self.enrollment.start()
        self.assertEqual(
            self.enrollment.receive(wire.Error("FROBNICATED")),
            [
                Close(),
                Finish(
                    EnrollOutcome.ERROR, "the server failed (FROBNICATED)"
                ),
            ],
        )

    def test_different_key(self):
        """
        A confirmation that names another key id (in the message, inside
        the seal, or both) or that does not open under the client's first
        key ends the enrollment as an error, and no key is handed over.
        """
        first = expected_key()
        key_id = keyschedule.key_id(first)
        other_key = bytes(32)
        other_id = keyschedule.key_id(other_key)
        confirmations = [
            wire.Enrolled(other_id, confirmation(first, other_id.encode())),
            wire.Enrolled(other_id, confirmation(first, key_id.encode())),
            wire.Enrolled(key_id, confirmation(first, other_id.encode())),
            wire.Enrolled(key_id, confirmation(other_key, key_id.encode())),
            wire.Enrolled(
                other_id, confirmation(other_key, other_id.encode())
            ),
            wire.Enrolled(
                key_id, confirmation(first, key_id.encode(), user="bob")
            ),
        ]
        for message in confirmations:
            self.enrollment = ClientEnrollment(USER, FINGERPRINT, RANDOM)
            self.advance_to_confirmation()
            self.assertEqual(
                self.enrollment.receive(message),
                [
                    Close(),
                    Finish(
                        EnrollOutcome.ERROR,
                        "the server derived a different key",
                    ),
                ],
            )

    def test_other_version(self):
        """
        A server answering with another protocol version is an error.
        """
        self.enrollment.start()
        self.assertEqual(
            self.enrollment.receive(wire.Version(4)),
            [
                Close(),
                Finish(EnrollOutcome.ERROR, "the server speaks version 4"),
            ],
        )

    def test_out_of_order(self):
        """
        A message the conversation does not expect at that point (here an
        early confirmation, an early AUTH_1, a second SALTA and a classic
        RSALT) is an error naming the message.
        """
        first = expected_key()
        key_id = keyschedule.key_id(first)
        enrolled = wire.Enrolled(key_id, confirmation(first, key_id.encode()))

        def at_salts(enrollment):
            enrollment.start()
            enrollment.receive(wire.Version(2))

        def at_verdict(enrollment):
            at_salts(enrollment)
            enrollment.receive(wire.SaltA(SALT, RSALT))
            enrollment.hashed(SALTED, RESPONSE)

        cases = [
            (at_salts, enrolled, "Enrolled"),
            (at_salts, wire.Auth(True), "Auth"),
            (at_verdict, enrolled, "Enrolled"),
            (at_verdict, wire.SaltA(SALT, RSALT), "SaltA"),
            (at_salts, wire.RSalt(RSALT), "RSalt"),
        ]
        for advance, message, name in cases:
            enrollment = ClientEnrollment(USER, FINGERPRINT, RANDOM)
            advance(enrollment)
            self.assertEqual(
                enrollment.receive(message),
                [
                    Close(),
                    Finish(
                        EnrollOutcome.ERROR,
                        f"unexpected {name} from the server",
                    ),
                ],
            )

    def test_hash_failed(self):
        """
        A hash that could not be computed, or that is malformed, ends the
        enrollment as an error before anything more is sent.
        """
        self.enrollment.start()
        self.enrollment.receive(wire.Version(2))
        self.enrollment.receive(wire.SaltA(SALT, RSALT))
        self.assertEqual(
            self.enrollment.hash_failed("could not compute the response"),
            [
                Close(),
                Finish(EnrollOutcome.ERROR, "could not compute the response"),
            ],
        )
        malformed = ClientEnrollment(USER, FINGERPRINT, RANDOM)
        malformed.start()
        malformed.receive(wire.Version(2))
        malformed.receive(wire.SaltA(SALT, RSALT))
        self.assertEqual(
            malformed.hashed(SALTED, "not a hash"),
            [
                Close(),
                Finish(
                    EnrollOutcome.ERROR, "the computed response is malformed"
                ),
            ],
        )

    def test_timeout_lost_abandoned(self):
        """
        A timeout drops the connection and ends as a timeout; a lost
        connection ends as an error with its reason; abandoning drops the
        connection and ends as an error.
        """
        self.advance_to_confirmation()
        self.assertEqual(
            self.enrollment.timed_out(),
            [
                Close(abort=True),
                Finish(
                    EnrollOutcome.TIMEOUT, "the server did not answer in time"
                ),
            ],
        )
        lost = ClientEnrollment(USER, FINGERPRINT, RANDOM)
        lost.start()
        self.assertEqual(
            lost.connection_lost("the connection was lost"),
            [Finish(EnrollOutcome.ERROR, "the connection was lost")],
        )
        abandoned = ClientEnrollment(USER, FINGERPRINT, RANDOM)
        self.assertEqual(
            abandoned.abandon("gave up"),
            [Close(abort=True), Finish(EnrollOutcome.ERROR, "gave up")],
        )

    def test_nothing_after_done(self):
        """
        Once the enrollment has ended, nothing the server or the clock
        does has any effect.
        """
        self.advance_to_verdict()
        self.enrollment.receive(wire.Auth(False))
        for actions in (
            self.enrollment.receive(wire.Auth(True)),
            self.enrollment.receive(wire.Error("BAD_SEAL")),
            self.enrollment.hashed(SALTED, RESPONSE),
            self.enrollment.timed_out(),
            self.enrollment.connection_lost("closed"),
            self.enrollment.abandon("gave up"),
        ):
            self.assertEqual(actions, [])

    def test_key_not_in_repr(self):
        """
        The first key a finished enrollment carries is kept out of its
        C{repr}.
        """
        first = expected_key()
        finish = Finish(EnrollOutcome.ENROLLED, "", first, "0" * 32)
        self.assertNotIn(repr(first), repr(finish))
        self.assertNotIn(first.hex(), repr(finish))

    def test_invalid_arguments(self):
        """
        A user name that cannot travel in C{SUTO_C_ENROLL_}, and a
        fingerprint hash or random data of the wrong size or type, are
        refused with L{EnrollmentError}.
        """
        for user, fingerprint, random_data in [
            ("al ice", FINGERPRINT, RANDOM),
            ("DATA_alice", FINGERPRINT, RANDOM),
            (None, FINGERPRINT, RANDOM),
            (USER, FINGERPRINT[:31], RANDOM),
            (USER, FINGERPRINT, RANDOM + b"x"),
            (USER, FINGERPRINT.hex(), RANDOM),
        ]:
            self.assertRaises(
                EnrollmentError,
                ClientEnrollment,
                user,
                fingerprint,
                random_data,
            )


SALTA_LINE = b"SUTO_SALTA_" + SALT.encode() + b"_" + RSALT.encode() + b"\r\n"


class EnrollmentProtocolTests(SynchronousTestCase):
    def connect(self, derive=None):
        """
        Connect a protocol to a string transport; hashes come from
        C{derive}, by default one that records its calls and answers at
        once.
        """
        self.derived = []
        self.clock = Clock()
        self.clock.advance(1700000000)
        self.transport = StringTransport()
        self.protocol = EnrollmentProtocol(
            ClientEnrollment(USER, FINGERPRINT, RANDOM),
            self.clock,
            30.0,
            derive or self.derive,
            server_host="127.0.0.1",
            server_port=2021,
            pin=PIN,
        )
        self.results = []
        self.protocol.finished.addCallback(self.results.append)
        self.protocol.makeConnection(self.transport)

    def derive(self, salt, rsalt):
        self.derived.append((salt, rsalt))
        return succeed(Derivation(RESPONSE, SALTED))

    def exchange(self, data: bytes) -> bytes:
        """
        Deliver C{data} from the server; return what the client wrote.
        """
        self.transport.clear()
        self.protocol.dataReceived(data)
        return self.transport.value()

    def enrolled_line(self, sealed_data: bytes) -> bytes:
        """
        The line a server sends once it has opened C{sealed_data}.
        """
        _, _, first, key_id = server_view(sealed_data)
        sealed = confirmation(first, key_id.encode())
        return wire.encode(wire.Enrolled(key_id, sealed), wire.Framing.FRAMED)

    def run_to_confirmation(self) -> bytes:
        """
        Drive the conversation until the enrollment data is sent; return
        the data's sealed bytes.
        """
        self.exchange(b"SUTO_VERSION_2\r\n")
        self.exchange(SALTA_LINE)
        line = self.exchange(b"SUTO_AUTH_1\r\n")
        prefix = b"SUTO_C_ENROLL_DATA_"
        self.assertTrue(line.startswith(prefix))
        return base64.b64decode(line[len(prefix) :].rstrip(), validate=True)

    def test_bytes(self):
        """
        An enrollment sends exactly these lines, hashes with the server's
        salts, and ends with the profile to store: the server's address
        and pin, the first key, its id, generation 0 and the time it
        completed.
        """
        self.connect()
        self.assertEqual(self.transport.value(), b"SUTO_VERSION_2\r\n")
        self.assertEqual(
            self.exchange(b"SUTO_VERSION_2\r\n"), b"SUTO_C_ENROLL_alice\r\n"
        )
        self.assertEqual(
            self.exchange(SALTA_LINE),
            b"SUTO_CF_HASH_" + RESPONSE.encode() + b"\r\n",
        )
        self.assertEqual(self.derived, [(SALT, RSALT)])
        self.assertEqual(
            self.exchange(b"SUTO_AUTH_1\r\n"),
            wire.encode(expected_data(), wire.Framing.FRAMED),
        )
        self.assertEqual(self.results, [])
        sealed_data = expected_data().sealed
        self.clock.advance(2)
        self.assertEqual(self.exchange(self.enrolled_line(sealed_data)), b"")
        self.assertTrue(self.transport.disconnecting)
        first = expected_key()
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ENROLLED,
                    "",
                    EnrolledProfile(
                        user=USER,
                        server_host="127.0.0.1",
                        server_port=2021,
                        pin=PIN,
                        key=first,
                        key_id=keyschedule.key_id(first),
                        generation=0,
                        enrolled_at=1700000002.0,
                    ),
                )
            ],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_profile_survives_state_file(self):
        """
        The profile an enrollment ends with is stored and read back
        unchanged.
        """
        self.connect()
        sealed_data = self.run_to_confirmation()
        self.exchange(self.enrolled_line(sealed_data))
        [result] = self.results
        path = os.path.join(self.mktemp(), "client.json")
        save_state(path, ClientState(profiles={USER: result.profile}))
        self.assertEqual(load_state(path).profiles, {USER: result.profile})

    def test_split_across_reads(self):
        """
        A reply arriving one byte at a time is read as one message.
        """
        self.connect()
        self.exchange(b"SUTO_VERSION_2\r\n")
        for byte in SALTA_LINE[:-1]:
            self.assertEqual(self.exchange(bytes([byte])), b"")
        self.assertEqual(
            self.exchange(b"\n"),
            b"SUTO_CF_HASH_" + RESPONSE.encode() + b"\r\n",
        )

    def test_rejected(self):
        """
        AUTH_0 in answer to ENROLL closes the connection and reports a
        rejection.
        """
        self.connect()
        self.exchange(b"SUTO_VERSION_2\r\n")
        self.exchange(b"SUTO_AUTH_0\r\n")
        self.assertTrue(self.transport.disconnecting)
        [result] = self.results
        self.assertEqual(
            (result.outcome, result.profile), (EnrollOutcome.REJECTED, None)
        )

    def test_different_key(self):
        """
        A confirmation under another key is an error; no profile comes out.
        """
        self.connect()
        self.run_to_confirmation()
        other = bytes(32)
        other_id = keyschedule.key_id(other)
        line = wire.encode(
            wire.Enrolled(other_id, confirmation(other, other_id.encode())),
            wire.Framing.FRAMED,
        )
        self.exchange(line)
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ERROR, "the server derived a different key"
                )
            ],
        )

    def test_garbage(self):
        """
        Bytes that are no SUTO message end the enrollment, and later bytes
        are ignored.
        """
        self.connect()
        self.assertEqual(self.exchange(b"HELLO\r\n"), b"")
        self.assertEqual(self.exchange(b"SUTO_VERSION_2\r\n"), b"")
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ERROR, "protocol error: UNKNOWN_MESSAGE"
                )
            ],
        )

    def test_timeout(self):
        """
        A server that stays silent for the timeout is dropped and the
        enrollment ends as a timeout; a hash finishing afterwards sends
        nothing.
        """
        pending = Deferred()
        self.connect(lambda salt, rsalt: pending)
        self.exchange(b"SUTO_VERSION_2\r\n")
        self.exchange(SALTA_LINE)
        self.clock.advance(29.9)
        self.assertEqual(self.results, [])
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.TIMEOUT, "the server did not answer in time"
                )
            ],
        )
        self.transport.clear()
        pending.callback(Derivation(RESPONSE, SALTED))
        self.assertEqual(self.transport.value(), b"")

    def test_waits_for_commit(self):
        """
        Once the data went out the agent waits for the server's commit
        past its own timeout, as long as L{timing.confirmation_wait}: the
        confirmation coming then enrolls.
        """
        self.connect()
        self.clock.advance(20)
        sealed_data = self.run_to_confirmation()
        self.clock.advance(timing.confirmation_wait(30.0) - 0.1)
        self.assertEqual(self.results, [])
        self.assertFalse(self.transport.disconnecting)
        self.exchange(self.enrolled_line(sealed_data))
        [result] = self.results
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_confirmation_timeout(self):
        """
        A server that does not answer the data within the wait is dropped
        and the enrollment ends as a timeout.
        """
        self.connect()
        self.run_to_confirmation()
        self.clock.advance(timing.confirmation_wait(30.0))
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.TIMEOUT, "the server did not answer in time"
                )
            ],
        )

    def test_busy_while_waiting(self):
        """
        A commit the server could not make, answered C{SUTO_ERROR_BUSY}
        while the agent waits, ends the enrollment as an error saying to
        try again; no profile comes out.
        """
        self.connect()
        self.run_to_confirmation()
        self.clock.advance(timing.ENROLLMENT_COMMIT_BOUND - 1)
        self.exchange(wire.encode(wire.Error(wire.ERROR_BUSY), wire.Framing.FRAMED))
        [result] = self.results
        self.assertEqual(
            (result.outcome, result.profile, result.reason),
            (EnrollOutcome.ERROR, None, "the server is busy; try again (BUSY)"),
        )

    def test_connection_lost(self):
        """
        A server closing before its confirmation is an error saying so.
        """
        self.connect()
        self.run_to_confirmation()
        self.protocol.connectionLost(Failure(internet_error.ConnectionDone()))
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ERROR, "the server closed the connection"
                )
            ],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_hash_failure(self):
        """
        A salt crypt rejects ends the enrollment as an error, and nothing
        about the salt or password reaches the result.
        """
        self.connect(lambda salt, rsalt: fail(libxcrypt.CryptError("bad")))
        self.exchange(b"SUTO_VERSION_2\r\n")
        self.assertEqual(self.exchange(SALTA_LINE), b"")
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ERROR, "could not compute the response"
                )
            ],
        )

    def test_cancel(self):
        """
        Cancelling the result abandons the enrollment: the connection is
        dropped and the result is an error, not a failure.
        """
        self.connect()
        self.protocol.finished.cancel()
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(
            self.results,
            [
                EnrollResult(
                    EnrollOutcome.ERROR, "the enrollment was abandoned"
                )
            ],
        )

    def test_connection_failed(self):
        """
        A connection attempt that timed out is a timeout; one refused is
        an error saying so.
        """
        self.connect()
        self.protocol.connection_failed(Failure(internet_error.TimeoutError()))
        self.assertEqual(self.results[0].outcome, EnrollOutcome.TIMEOUT)
        self.connect()
        self.protocol.connection_failed(
            Failure(internet_error.ConnectionRefusedError())
        )
        self.assertEqual(
            self.results,
            [EnrollResult(EnrollOutcome.ERROR, "connection refused")],
        )


class DeriveSaltedResponseTests(SynchronousTestCase):
    def test_formula(self):
        """
        The salted hash is C{crypt(password, salt)} and the response is
        C{crypt(crypt(password, salt), rsalt)}, as the server checks it.
        """
        derivation = derive_salted_response("one-time", SALT, RSALT)
        self.assertEqual(
            derivation.salted_hash, libxcrypt.crypt("one-time", SALT)
        )
        self.assertEqual(
            derivation.response,
            schemes.client_response("one-time", SALT, RSALT),
        )


SOURCES = [FixedSource("0123456789abcdef")]


class EnrollTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def enroll(self, **overrides):
        arguments = dict(
            host="127.0.0.1",
            port=2021,
            pin=PIN,
            user=USER,
            password="one-time",
            sources=SOURCES,
            random_bytes=lambda size: RANDOM[:size],
        )
        arguments.update(overrides)
        return enroll(self.reactor, **arguments)

    def test_invalid_arguments(self):
        """
        A host name, a bad port or pin, a bad user name, an empty password,
        short random data, and a machine without fingerprint sources each
        end the enrollment as an error at once, without connecting.
        """
        cases = [
            ({"host": "suto.example"}, "the server must be an IP address"),
            ({"port": 0}, "the server port must be 1-65535"),
            ({"pin": "abc"}, "pin: "),
            ({"user": "DATA_alice"}, "the user name cannot be enrolled"),
            ({"password": ""}, "the password must be a non-empty string"),
            ({"password": "a\0b"}, "the password must not contain NUL"),
            ({"password": "x" * 600}, "the password must be at most"),
            ({"random_bytes": lambda size: b"short"}, "the random data"),
            ({"sources": [FixedSource(None)]}, "no fingerprint"),
        ]
        for overrides, reason in cases:
            result = self.successResultOf(self.enroll(**overrides))
            self.assertEqual(result.outcome, EnrollOutcome.ERROR)
            self.assertTrue(
                result.reason.startswith(reason), (overrides, result.reason)
            )
        self.assertEqual(self.reactor.tcpClients, [])

    def test_password_not_in_reason(self):
        """
        A refused password is never quoted back.
        """
        result = self.successResultOf(self.enroll(password="x" * 600))
        self.assertNotIn("xxxx", result.reason)

    def test_connects_to_server(self):
        """
        The connection goes to the server's address and port, IPv6
        included, with the timeout as the connection timeout.
        """
        self.enroll(host="0:0::1", port=3021, timeout=4.0)
        [(host, port, _, timeout, _)] = self.reactor.tcpClients
        self.assertEqual((host, port, timeout), ("::1", 3021, 4.0))

    def test_refused(self):
        """
        A refused connection is an error result, logged with user, server
        and outcome.
        """
        running = self.enroll()
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(
            self.reactor.connectors[0],
            Failure(internet_error.ConnectionRefusedError()),
        )
        self.assertEqual(
            self.successResultOf(running),
            EnrollResult(EnrollOutcome.ERROR, "connection refused"),
        )
        [event] = [e for e in self.observer if "outcome" in e]
        self.assertEqual(
            (event["user"], event["server"], event["outcome"]),
            (USER, "127.0.0.1:2021", "error"),
        )

    def test_cancel_while_connecting(self):
        """
        Cancelling before the connection is made stops the attempt and
        gives an error result.
        """
        running = self.enroll()
        running.cancel()
        self.assertTrue(self.reactor.connectors[0].stoppedConnecting)
        self.assertEqual(
            self.successResultOf(running),
            EnrollResult(EnrollOutcome.ERROR, "the enrollment was abandoned"),
        )
