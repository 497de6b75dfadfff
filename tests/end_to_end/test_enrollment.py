"""
Enrollment end to end over loopback: the daemon built by C{twistd suto}'s
own makeService, C{suto-admin enroll} over the admin socket, and the
endpoint's enroll client over pinned TLS; then a restart from the same
data folder.
"""

import os
import socket
import ssl

from twisted.internet import defer, reactor, task, threads
from twisted.trial.unittest import TestCase

from suto_client.announcement import wait_for_announcement
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.rotation_outcome import RotationOutcome
from suto_server.core import keyschedule, wire
from suto_server.datafolder import MASTER_KEY_FILE
from suto_server.masterkey import MasterKey
from tests.support.daemon import EnrollmentFixture
from tests.support.mutual_tls import MutualTLSFixture


class EnrollmentEndToEndTests(EnrollmentFixture, TestCase):

    @defer.inlineCallbacks
    def test_enroll_within_window(self):
        """
        A device at the window's location with its one-time password
        enrolls: both sides hold the same first key, the window is gone,
        and a second use of the same password fails.
        """
        password = yield self.open_window()
        result = yield self.enroll(password)
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.key_id, result.profile.key_id)
        self.assertEqual(profile.key_id, keyschedule.key_id(result.profile.key))
        code, out, _ = yield self.admin("windows")
        self.assertEqual(
            (code, out), (0, "USER\tLOCATION\tTIME_LEFT\tATTEMPTS\tREPLACE\n")
        )
        again = yield self.enroll(password)
        self.assertEqual(again.outcome, EnrollOutcome.REJECTED)

    @defer.inlineCallbacks
    def test_wrong_password(self):
        """
        A wrong one-time password is refused and counted.
        """
        yield self.open_window()
        result = yield self.enroll("not-the-password")
        self.assertEqual(result.outcome, EnrollOutcome.REJECTED)
        code, out, _ = yield self.admin("windows")
        self.assertIn("1/5 failed", out)

    @defer.inlineCallbacks
    def test_wrong_location(self):
        """
        A device connecting from outside the window's location is refused
        even with the right password.
        """
        password = yield self.open_window(location="127.0.0.2/32")
        result = yield self.enroll(password)
        self.assertEqual(result.outcome, EnrollOutcome.REJECTED)
        self.assertIsNone(self.server.store.get_profile("alice"))

    def ask_to_enroll(self, user, source):
        """
        Connect from C{source}, exchange versions and ask to enroll
        C{user}, as a device starts an enrollment.

        @return: a L{Deferred} firing with all the daemon sent.
        """
        return threads.deferToThread(
            framed_conversation,
            self.port,
            source,
            self.trust(),
            [wire.Version(wire.PROTOCOL_VERSION), wire.Enroll(user)],
        )

    @defer.inlineCallbacks
    def test_wrong_location_as_reported(self):
        """
        The case as reported: a window at 127.0.0.1/32 and a device
        connecting from 127.0.0.2.  The daemon answers SUTO_AUTH_0 to its
        enrollment request and closes, records C{enrollment_failed} with
        reason C{wrong_location} and the device's address, and stores no
        profile.
        """
        yield self.open_window(location="127.0.0.1/32")
        received = yield self.ask_to_enroll("alice", "127.0.0.2")
        self.assertEqual(
            received,
            wire.encode(wire.Version(wire.PROTOCOL_VERSION), wire.Framing.FRAMED)
            + b"SUTO_AUTH_0\r\n",
        )
        yield self.server.audit.flushed()
        [event] = self.server.store.audit_events()[-1:]
        self.assertEqual(
            (event.event, event.username, event.source, event.reason),
            ("enrollment_failed", "alice", "127.0.0.2", "wrong_location"),
        )
        self.assertIsNone(self.server.store.get_profile("alice"))

    @defer.inlineCallbacks
    def test_no_window_names_who_tried(self):
        """
        A device asking to enroll a user no window is open for is refused,
        and the operator sees who was asked for and from where: the audit
        record and the alert name the user the device presented (the wire
        admits only names the store can keep) and its address.
        """
        yield self.open_window("alice")
        received = yield self.ask_to_enroll("Alice", "127.0.0.1")
        self.assertTrue(received.endswith(b"SUTO_AUTH_0\r\n"), received)
        code, out, err = yield self.admin("audit")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(
            out.splitlines()[-1].split("\t")[1:],
            ["enrollment_failed", "Alice", "127.0.0.1", "-", "no_window"],
        )
        code, out, err = yield self.admin("alerts")
        self.assertEqual(
            out.splitlines()[-1].split("\t")[1:],
            ["enrollment_failed", "Alice", "127.0.0.1", "-", "no_window"],
        )

    @defer.inlineCallbacks
    def test_after_deadline(self):
        """
        After the window's deadline the password no longer works.
        """
        password = yield self.open_window(timeout="0.2s")
        yield task.deferLater(reactor, 0.4, lambda: None)
        result = yield self.enroll(password)
        self.assertEqual(result.outcome, EnrollOutcome.REJECTED)

    @defer.inlineCallbacks
    def test_penalised_desk_told_to_wait(self):
        """
        A desk whose address is refused for failed attempts completes the
        TLS handshake with the server it pins and is told how long to wait.
        """
        password = yield self.open_window()
        self.server.gate.penalise("127.0.0.1", "127.0.0.1", 20)
        result = yield self.enroll(password)
        self.assertEqual(
            (result.outcome, result.reason),
            (
                EnrollOutcome.ERROR,
                "too many failed attempts from this address: wait 20 s and try again",
            ),
        )

    @defer.inlineCallbacks
    def test_replace_required(self):
        """
        Re-enrolling an enrolled user needs --replace; with it the old key
        dies when the new enrollment completes.
        """
        first = yield self.enroll((yield self.open_window()))
        code, _, err = yield self.admin("enroll", "alice", "--location", "127.0.0.1")
        self.assertEqual(code, 1)
        self.assertIn("already enrolled; re-enroll with suto-admin enroll --replace", err)
        password = yield self.open_window("alice", "127.0.0.1", "60s", "--replace")
        second = yield self.enroll(password, machine="machine-2")
        self.assertEqual(second.outcome, EnrollOutcome.ENROLLED)
        profile = self.server.store.get_profile("alice")
        self.assertEqual(profile.key_id, second.profile.key_id)
        self.assertNotEqual(profile.key_id, first.profile.key_id)

    @defer.inlineCallbacks
    def test_restart_keeps_profile_and_window(self):
        """
        A restart from the same data folder keeps the enrolled profile with
        its key (sealed at rest), which still rotates, and an open window
        with its original deadline, which still enrolls.
        """
        result = yield self.enroll((yield self.open_window()))
        password = yield self.open_window("bob", "127.0.0.1", "60s")
        deadline = self.server.store.get_window("bob").deadline
        yield self.server.stopService()
        yield self.start_server()
        store = self.server.store
        profile = store.get_profile("alice")
        master = MasterKey.load_or_create(os.path.join(self.data, MASTER_KEY_FILE))
        self.assertEqual(
            master.open_key("alice", profile.key_id, profile.key_sealed),
            result.profile.key,
        )
        self.assertEqual(store.get_window("bob").deadline, deadline)
        report = yield self.rotate(result.profile)
        self.assertEqual(report.outcome, RotationOutcome.ROTATED)
        self.assertNotEqual(store.get_profile("alice").key_id, profile.key_id)
        bob = yield self.enroll(password, user="bob")
        self.assertEqual(bob.outcome, EnrollOutcome.ENROLLED)


def unused_udp_port() -> int:
    """
    A UDP port on 127.0.0.1 that nothing was bound to a moment ago.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AnnouncedEnrollmentTests(EnrollmentFixture, TestCase):
    """
    The device learns the server's address from the hello with which the
    daemon announces the window.
    """

    def setUp(self):
        self.hello_port = unused_udp_port()
        self.server_arguments = ("--hello-port", str(self.hello_port))
        return super().setUp()

    @defer.inlineCallbacks
    def test_enroll_with_the_announcer(self):
        """
        A device waiting on the hello port when IT opens the window hears
        the hello from the daemon's address and enrolls with it.
        """
        heard = wait_for_announcement(
            reactor, "alice", self.hello_port, "127.0.0.1", self.timeout
        )
        password = yield self.open_window(location="127.0.0.1/32")
        host = yield heard
        self.assertEqual(host, "127.0.0.1")
        result = yield self.enroll(password)
        self.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
        self.assertEqual(result.profile.server_host, host)


def framed_conversation(port, source, trust, messages):
    """
    Send C{messages} over TLS from C{source} to the daemon on loopback
    C{port}, then read until the daemon closes.  Blocks: run it in a
    thread.  The server is not verified (the test reads what it says);
    a C{client_cert} and C{client_key} in C{trust} are presented.

    @return: every byte the daemon sent.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if trust.get("client_cert"):
        context.load_cert_chain(trust["client_cert"], trust["client_key"])
    raw = socket.create_connection(
        ("127.0.0.1", port), timeout=10, source_address=(source, 0)
    )
    with context.wrap_socket(raw) as sock:
        sock.sendall(
            b"".join(wire.encode(message, wire.Framing.FRAMED) for message in messages)
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    return received


class MutualTLSEnrollmentEndToEndTests(MutualTLSFixture, EnrollmentEndToEndTests):
    """
    Every enrollment end-to-end test, over CA trust and mutual TLS.
    """
