"""
Enrollment through the server's Protocol over a StringTransport, with a
task.Clock for time, the real enrollment rules, an in-memory store and a
synchronous hash pool: the exact bytes of every way the conversation goes,
and the version exchange that precedes it.
"""

import base64
from ipaddress import ip_network

from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, schemes
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.locations import Location
from suto_server.phases.enrollment import EnrollmentRules
from suto_server.rules.enrollment import Enrollment, WindowHashSource
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.calls import LocalCalls
from suto_server.store.memory import MemoryStore
from tests.support.coroutines import result_of
from tests.support.enrollment import (
    FINGERPRINT,
    PASSWORD,
    device_payload,
    open_confirmation,
)
from tests.support.factories import EXCHANGE_TIMEOUT, RSALT, framed_factory
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool
from tests.support.secrets import assert_no_secrets

NOW = 1_700_000_000
WINDOW_TIMEOUT = 60
INSIDE = "127.0.0.5"
OUTSIDE = "127.0.1.5"
VERSION = b"SUTO_VERSION_2\r\n"
ENROLL = b"SUTO_C_ENROLL_alice\r\n"
AUTH_OK = b"SUTO_AUTH_1\r\n"
AUTH_NO = b"SUTO_AUTH_0\r\n"


class ListenerMixin:
    """
    A framed listener that enrolls, and a way to open a window for
    C{alice} at 127.0.0.0/24.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.pool = ImmediatePool()
        self.enrollment = Enrollment(self.store, new_master_key(self), self.pool)
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.factory = self.make_factory(self.enrollment)

    def make_factory(self, enrollment):
        """
        A framed factory; C{enrollment} is L{None} for one that does not
        enroll.  No account has a password, so only enrollment succeeds.
        """
        one_time = Portal(
            SutoRealm(),
            [SaltedChallengeChecker(WindowHashSource(LocalCalls(self.store)), self.pool)],
        )
        return framed_factory(
            self.clock,
            self.pool,
            self.rendezvous,
            enrollment=(
                EnrollmentRules(enrollment, one_time)
                if enrollment is not None
                else None
            ),
        )

    def open_window(self, timeout=WINDOW_TIMEOUT):
        result_of(
            self,
            self.enrollment.open_window(
                "alice",
                Location((ip_network("127.0.0.0/24"),), "lab"),
                timeout,
                self.clock.seconds(),
                password=PASSWORD,
            ),
        )
        return schemes.salt_of(self.store.get_window("alice").otp_hash)

    def connect(self, address=None, factory=None):
        protocol = (factory or self.factory).buildProtocol(None)
        transport = StringTransport(
            peerAddress=address or IPv4Address("TCP", INSIDE, 40000)
        )
        protocol.makeConnection(transport)
        return protocol, transport

    def exchange(self, protocol, transport, data):
        """
        Send C{data} to the server and return what it wrote back.
        """
        transport.clear()
        protocol.dataReceived(data)
        return transport.value()

    def salts(self, salt):
        return b"SUTO_SALTA_%s_%s\r\n" % (salt.encode(), RSALT.encode())

    def hash_line(self, salt, password=PASSWORD):
        response = schemes.client_response(password, salt, RSALT)
        return b"SUTO_CF_HASH_%s\r\n" % response.encode("ascii")

    def data_line(self, sealed):
        return b"SUTO_C_ENROLL_DATA_%s\r\n" % base64.b64encode(sealed)

    def admitted(self, address=None):
        """
        Open the window and go as far as C{SUTO_AUTH_1}.

        @return: the protocol, its transport and the window's salt.
        """
        salt = self.open_window()
        protocol, transport = self.connect(address)
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + ENROLL),
            VERSION + self.salts(salt),
        )
        self.assertEqual(
            self.exchange(protocol, transport, self.hash_line(salt)), AUTH_OK
        )
        return protocol, transport, salt

    def audit(self, event):
        return [
            (e.username, e.source, e.reason)
            for e in self.store.audit_events()
            if e.event == event
        ]

    def attempts(self):
        return self.store.get_window("alice").attempts


class EnrollmentProtocolTests(ListenerMixin, SynchronousTestCase):
    """
    The enrollment conversation, from C{SUTO_C_ENROLL_} to its end.
    """

    def test_enrolls(self):
        """
        Version, enroll, the salts, the response, C{SUTO_AUTH_1}, the data,
        then C{SUTO_ENROLLED_<key id>_<confirmation>} and the server
        closes; the device's first key is the one committed.
        """
        protocol, transport, salt = self.admitted()
        sealed, key = device_payload(PASSWORD, salt, "alice")
        key_id = keyschedule.key_id(key)
        confirmation = keyschedule.seal(
            key,
            key_id.encode("ascii"),
            profile="alice",
            purpose="enroll-confirm",
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=0,
        )
        self.assertEqual(
            self.exchange(protocol, transport, self.data_line(sealed)),
            b"SUTO_ENROLLED_%s_%s\r\n"
            % (key_id.encode("ascii"), base64.b64encode(confirmation)),
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(open_confirmation(key, confirmation, "alice"), key_id.encode())
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (
                profile.key_id,
                profile.fingerprint_hash,
                profile.location,
                profile.enrolled_at,
            ),
            (key_id, FINGERPRINT, INSIDE, NOW),
        )
        self.assertIsNone(self.store.get_window("alice"))

    def test_byte_at_a_time(self):
        """
        The conversation works when every byte arrives on its own.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        sealed, key = device_payload(PASSWORD, salt, "alice")
        for data in (VERSION + ENROLL, self.hash_line(salt), self.data_line(sealed)):
            for index in range(len(data)):
                protocol.dataReceived(data[index : index + 1])
        self.assertTrue(
            transport.value().startswith(VERSION + self.salts(salt) + AUTH_OK)
        )
        self.assertEqual(
            self.store.get_profile("alice").key_id, keyschedule.key_id(key)
        )

    def test_ipv4_mapped_source(self):
        """
        A device reported as an IPv4-mapped IPv6 peer inside the location
        is admitted.
        """
        protocol, transport, _ = self.admitted(
            IPv6Address("TCP", "::ffff:" + INSIDE, 40000)
        )
        self.assertFalse(transport.disconnecting)

    def test_enrollment_leaves_requests_alone(self):
        """
        An enrolling device does not claim an authentication request
        pending for its address.
        """
        request = self.rendezvous.open("alice", [INSIDE])
        self.admitted()
        self.assertIsNone(request.claimed_by)

    def test_outside_location(self):
        """
        From outside the window's location the device gets C{SUTO_AUTH_0}
        and no salt, the connection closes, and the attempt is counted.
        """
        self.open_window()
        protocol, transport = self.connect(IPv4Address("TCP", OUTSIDE, 40000))
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + ENROLL), VERSION + AUTH_NO
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.attempts(), 1)
        self.assertEqual(
            self.audit("enrollment_failed"), [("alice", OUTSIDE, "wrong_location")]
        )

    def test_no_window(self):
        """
        A user without a window gets C{SUTO_AUTH_0}.
        """
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + ENROLL), VERSION + AUTH_NO
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(
            self.audit("enrollment_failed"), [("alice", INSIDE, "no_window")]
        )

    def test_expired_window(self):
        """
        Once the clock reaches the window's deadline the device gets
        C{SUTO_AUTH_0} and the window is closed.
        """
        self.open_window()
        self.clock.advance(WINDOW_TIMEOUT)
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + ENROLL), VERSION + AUTH_NO
        )
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            self.audit("enrollment_failed"), [("alice", INSIDE, "expired")]
        )

    def test_wrong_password(self):
        """
        A response made from another password gets C{SUTO_AUTH_0}, the
        connection closes and the attempt is counted.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(
            self.exchange(
                protocol, transport, self.hash_line(salt, "not-the-password")
            ),
            AUTH_NO,
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.attempts(), 1)
        self.assertEqual(
            self.audit("enrollment_failed"), [("alice", INSIDE, "wrong_password")]
        )
        self.assertIsNone(self.store.get_profile("alice"))

    def test_bad_seal(self):
        """
        Data that does not open under the password secret gets
        C{SUTO_ERROR_BAD_SEAL}, the connection closes and the attempt is
        counted.
        """
        protocol, transport, salt = self.admitted()
        sealed, _ = device_payload("not-the-password", salt, "alice")
        self.assertEqual(
            self.exchange(protocol, transport, self.data_line(sealed)),
            b"SUTO_ERROR_BAD_SEAL\r\n",
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.attempts(), 1)
        self.assertIsNone(self.store.get_profile("alice"))

    def test_store_fails(self):
        """
        A store that cannot commit the profile gets the device
        C{SUTO_ERROR_BUSY} and a close, not a dropped connection; the
        failure is logged without a secret, nothing is stored and the
        window stays open for another try.
        """
        protocol, transport, salt = self.admitted()

        def full_disk(profile, otp_hash=None):
            raise OSError("database or disk is full")

        self.store.complete_enrollment = full_disk
        window_hash = self.store.get_window("alice").otp_hash
        sealed, key = device_payload(PASSWORD, salt, "alice")
        with capturedLogs() as logged:
            answer = self.exchange(protocol, transport, self.data_line(sealed))
        self.assertEqual(answer, b"SUTO_ERROR_BUSY\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(self.store.get_window("alice").otp_hash, window_hash)
        self.assertTrue(logged)
        assert_no_secrets(self, logged, [PASSWORD, window_hash, sealed, key])

    def test_window_closed_meanwhile(self):
        """
        A window whose deadline passes between C{SUTO_AUTH_1} and the data
        (here, IT cancelled it) gets C{SUTO_ERROR_WINDOW_CLOSED}, and no
        profile is written.
        """
        protocol, transport, salt = self.admitted()
        result_of(self, self.enrollment.cancel("alice", self.clock.seconds()))
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        self.assertEqual(
            self.exchange(protocol, transport, self.data_line(sealed)),
            b"SUTO_ERROR_WINDOW_CLOSED\r\n",
        )
        self.assertIsNone(self.store.get_profile("alice"))

    def test_deadline_passes_meanwhile(self):
        """
        The deadline is checked again when the data arrives.
        """
        salt = self.open_window(timeout=EXCHANGE_TIMEOUT - 5)
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL + self.hash_line(salt))
        self.clock.advance(EXCHANGE_TIMEOUT - 4)
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        self.assertEqual(
            self.exchange(protocol, transport, self.data_line(sealed)),
            b"SUTO_ERROR_WINDOW_CLOSED\r\n",
        )
        self.assertEqual(
            self.audit("enrollment_failed"), [("alice", INSIDE, "expired")]
        )

    def test_second_use(self):
        """
        After a device enrolled, the same password finds no window.
        """
        protocol, transport, salt = self.admitted()
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        protocol.dataReceived(self.data_line(sealed))
        protocol, transport = self.connect()
        self.assertEqual(
            self.exchange(protocol, transport, VERSION + ENROLL), VERSION + AUTH_NO
        )

    def test_cancelled(self):
        """
        C{SUTO_AUTH_CANCELLED} closes without an answer; it is audited as
        abandoned and costs no attempt.
        """
        self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(
            self.exchange(protocol, transport, b"SUTO_AUTH_CANCELLED\r\n"), b""
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.attempts(), 0)
        self.assertEqual(
            self.audit("enrollment_abandoned"), [("alice", INSIDE, "cancelled")]
        )

    def test_timeout(self):
        """
        A device silent for the exchange timeout gets C{SUTO_ERROR_TIMEOUT};
        abandoned, not counted.
        """
        self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        transport.clear()
        self.clock.advance(EXCHANGE_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertEqual(transport.value(), b"SUTO_ERROR_TIMEOUT\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.attempts(), 0)
        self.assertEqual(
            self.audit("enrollment_abandoned"),
            [("alice", INSIDE, "protocol error: TIMEOUT")],
        )

    def test_garbage(self):
        """
        Bytes outside the SUTO alphabet mid-enrollment are answered with
        the error's code; abandoned, not counted.
        """
        self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(
            self.exchange(protocol, transport, b"\x00\xff\r\n"),
            b"SUTO_ERROR_BAD_CHARACTER\r\n",
        )
        self.assertEqual(self.attempts(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_out_of_order(self):
        """
        Data before the response is out of order.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        self.assertEqual(
            self.exchange(protocol, transport, self.data_line(sealed)),
            b"SUTO_ERROR_OUT_OF_ORDER\r\n",
        )
        self.assertIsNone(self.store.get_profile("alice"))

    def test_pool_busy(self):
        """
        A saturated hash pool gets C{SUTO_ERROR_BUSY}, not a wrong-password
        verdict, and costs no attempt.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.pool.busy = True
        self.assertEqual(
            self.exchange(protocol, transport, self.hash_line(salt)),
            b"SUTO_ERROR_BUSY\r\n",
        )
        self.assertEqual(self.attempts(), 0)

    def test_pipelined(self):
        """
        Data sent while the response is checked breaks lockstep:
        C{SUTO_ERROR_PIPELINED}, and the late verdict writes nothing and
        commits nothing.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.pool.hold = True
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        self.assertEqual(
            self.exchange(
                protocol, transport, self.hash_line(salt) + self.data_line(sealed)
            ),
            b"SUTO_ERROR_PIPELINED\r\n",
        )
        transport.clear()
        self.pool.release()
        self.assertEqual(transport.value(), b"")
        self.assertIsNone(self.store.get_profile("alice"))

    def test_lost_while_verifying(self):
        """
        A device that hangs up while its response is checked gets nothing
        written when the verdict arrives.
        """
        salt = self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + ENROLL)
        self.pool.hold = True
        protocol.dataReceived(self.hash_line(salt))
        transport.clear()
        protocol.connectionLost(None)
        self.pool.release()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.attempts(), 0)

    def test_lost_audited(self):
        """
        A device that hangs up mid-enrollment is audited as abandoned,
        without counting an attempt.
        """
        protocol, transport, _ = self.admitted()
        protocol.connectionLost(None)
        self.assertEqual(len(self.audit("enrollment_abandoned")), 1)
        self.assertEqual(self.attempts(), 0)


    def test_closed_after_end(self):
        """
        The connection closing after the conversation ended (here, after
        C{SUTO_ENROLLED_}) is no abandonment.
        """
        protocol, transport, salt = self.admitted()
        sealed, _ = device_payload(PASSWORD, salt, "alice")
        protocol.dataReceived(self.data_line(sealed))
        protocol.connectionLost(None)
        self.assertEqual(self.audit("enrollment_abandoned"), [])
        self.assertIsNotNone(self.store.get_profile("alice"))

    def test_no_secret_logged(self):
        """
        Neither a refused nor a successful enrollment logs the password,
        its hash, the response, the payload or the first key.
        """
        with capturedLogs() as logged:
            salt = self.open_window()
            protocol, transport = self.connect()
            protocol.dataReceived(VERSION + ENROLL + self.hash_line(salt, "wrong-one"))
            protocol, transport, salt = self.admitted()
            window_hash = self.store.get_window("alice").otp_hash
            sealed, key = device_payload(PASSWORD, salt, "alice")
            protocol.dataReceived(self.data_line(sealed))
        self.assertIsNotNone(self.store.get_profile("alice"))
        self.assertTrue(logged)
        assert_no_secrets(
            self,
            logged + self.store.audit_events(),
            [
                PASSWORD,
                window_hash,
                schemes.client_response(PASSWORD, salt, RSALT),
                schemes.client_response("wrong-one", salt, RSALT),
                sealed,
                key,
                FINGERPRINT,
            ],
        )


class VersionExchangeTests(ListenerMixin, SynchronousTestCase):
    """
    What a framed listener says before any phase starts.
    """

    def test_no_enrollment(self):
        """
        C{SUTO_C_ENROLL_} on a listener that does not enroll is an unknown
        message.
        """
        factory = self.make_factory(None)
        protocol, transport = self.connect(factory=factory)
        protocol.dataReceived(VERSION + ENROLL)
        self.assertEqual(transport.value(), VERSION + b"SUTO_ERROR_UNKNOWN_MESSAGE\r\n")
        self.assertTrue(transport.disconnecting)

    def test_enroll_before_version(self):
        """
        C{SUTO_C_ENROLL_} before the version exchange is out of order, and
        no window is looked at.
        """
        self.open_window()
        protocol, transport = self.connect()
        protocol.dataReceived(ENROLL)
        self.assertEqual(transport.value(), b"SUTO_ERROR_OUT_OF_ORDER\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.audit("enrollment_failed"), [])

    def test_wrong_version(self):
        """
        A version this server does not speak gets C{SUTO_ERROR_BAD_VERSION}.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(b"SUTO_VERSION_4\r\n" + ENROLL)
        self.assertEqual(transport.value(), b"SUTO_ERROR_BAD_VERSION\r\n")
        self.assertTrue(transport.disconnecting)

    def test_classic_without_request(self):
        """
        A salt request after the version exchange that answers no pending
        authentication gets C{SUTO_ERROR_NO_REQUEST}.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(VERSION + b"SUTO_C_GET_SALTA\r\n")
        self.assertEqual(transport.value(), VERSION + b"SUTO_ERROR_NO_REQUEST\r\n")
        self.assertTrue(transport.disconnecting)
