"""
The agent's comparisons of what it holds with what it is shown run in
constant time: each goes through L{hmac.compare_digest} with the operands
compared, so a comparison written with C{==}, which no other test could
tell apart, fails here.
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from suto_client.agent import Agent
from suto_client.classic_machine import Outcome
from suto_client.enrollment import ClientEnrollment, EnrollOutcome
from suto_client.protocol import AuthResult
from suto_client.rotation import ClientRotation
from suto_client.state import Account, ClientState, EnrolledProfile
from suto_client.statefile import load_state, save_state
from suto_client.tls import pinned_client_creator
from suto_server.core import keyschedule, wire
from suto_server.net.certificate import ensure_self_signed
from tests.support.client_enrollment import RESPONSE, RSALT, SALT, SALTED, USER
from tests.support.comparisons import record_comparisons
from tests.support.enrollment import FINGERPRINT, RANDOM
from tests.support.udp import MemoryUDPReactor

SERVER = "192.0.2.10"
PASSWORD = "hunter2-secret"


def _account(password):
    return Account(
        user=USER, server_host=SERVER, pin="ab" * 32, password=password
    )


class AgentPasswordTests(SynchronousTestCase):
    """
    Before replacing a password by the salted hash an authentication
    proved, the agent checks the password stored is still the one used,
    comparing the two in constant time.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        self.path = os.path.join(folder, "client.json")
        save_state(self.path, ClientState({USER: _account(PASSWORD)}))
        self.reactor = MemoryUDPReactor()
        self.running = []
        agent = Agent(
            self.reactor,
            self.path,
            hello_endpoint_port=0,
            authenticate=self.authenticate,
        )
        agent.startService()
        self.addCleanup(agent.stopService)
        self.compared = record_comparisons(self)

    def authenticate(self, reactor, account, *, timeout):
        running = Deferred()
        self.running.append(running)
        return running

    def accept(self):
        """
        A hello from the server starts an authentication, and the password
        is accepted.
        """
        [(_, listener)] = self.reactor.udp
        listener.datagramReceived(f"SUTO_{USER}@desk+".encode(), (SERVER, 1))
        [running] = self.running
        running.callback(AuthResult(Outcome.ACCEPTED, "", SALT, SALTED))

    def test_same_password(self):
        """
        The salted hash is kept after comparing the stored password with
        the one used.
        """
        self.accept()
        self.assertEqual(load_state(self.path).accounts[USER].salted_hash, SALTED)
        self.assertEqual(
            self.compared, [(PASSWORD.encode("utf-8"), PASSWORD.encode("utf-8"))]
        )

    def test_changed_password(self):
        """
        A password changed during the authentication is kept, after
        comparing the new one with the one used.
        """
        [(_, listener)] = self.reactor.udp
        listener.datagramReceived(f"SUTO_{USER}@desk+".encode(), (SERVER, 1))
        save_state(self.path, ClientState({USER: _account("new")}))
        [running] = self.running
        running.callback(AuthResult(Outcome.ACCEPTED, "", SALT, SALTED))
        self.assertEqual(load_state(self.path).accounts[USER].password, "new")
        self.assertEqual(self.compared, [(b"new", PASSWORD.encode("utf-8"))])


class EnrollmentConfirmationTests(SynchronousTestCase):
    """
    The agent accepts the server's enrollment confirmation after comparing
    the key id sealed in it with the one named, and that with its own, in
    constant time.
    """

    def setUp(self):
        self.compared = record_comparisons(self)

    def confirm(self, sealed_id=None):
        """
        Run an enrollment up to the server's confirmation, which names the
        first key and seals C{sealed_id} (by default that key's id) under
        it.

        @return: the key id, and the outcome the confirmation led to.
        """
        enrollment = ClientEnrollment(USER, FINGERPRINT, RANDOM)
        enrollment.start()
        enrollment.receive(wire.Version(2))
        enrollment.receive(wire.SaltA(SALT, RSALT))
        enrollment.hashed(SALTED, RESPONSE)
        enrollment.receive(wire.Auth(True))
        secret = keyschedule.password_secret(SALTED, USER)
        first = keyschedule.first_key(RANDOM, FINGERPRINT, secret, USER)
        key_id = keyschedule.key_id(first)
        sealed = keyschedule.seal(
            first,
            key_id.encode("ascii") if sealed_id is None else sealed_id,
            profile=USER,
            purpose=keyschedule.ENROLL_CONFIRM_PURPOSE,
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=0,
        )
        *_, finish = enrollment.receive(wire.Enrolled(key_id, sealed))
        return key_id, finish.outcome

    def test_confirmed(self):
        """
        A confirmation sealing the key id it names is compared both ways,
        and accepted.
        """
        key_id, outcome = self.confirm()
        named = key_id.encode("ascii")
        self.assertIs(outcome, EnrollOutcome.ENROLLED)
        self.assertEqual(self.compared, [(named, named), (named, named)])

    def test_other_id_sealed(self):
        """
        A confirmation sealing another key id is compared both ways all
        the same, so its timing does not say which comparison failed, and
        refused.
        """
        key_id, outcome = self.confirm(b"f" * 32)
        named = key_id.encode("ascii")
        self.assertIsNot(outcome, EnrollOutcome.ENROLLED)
        self.assertEqual(self.compared, [(b"f" * 32, named), (named, named)])


class RotationConfirmationTests(SynchronousTestCase):
    """
    The agent opens the server's "ok" and "done" of a rotation and
    compares what they hold with what they must hold in constant time.
    """

    def setUp(self):
        self.compared = record_comparisons(self)
        key = bytes(range(32, 64))
        self.profile = EnrolledProfile(
            user=USER,
            server_host=SERVER,
            server_port=2021,
            pin="ab" * 32,
            key=key,
            key_id=keyschedule.key_id(key),
            generation=0,
            enrolled_at=1_700_000_000.0,
        )
        self.server_private = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))

    def server_seal(self, key, plaintext, purpose):
        return keyschedule.seal(
            key,
            plaintext,
            profile=USER,
            purpose=purpose,
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=keyschedule.SEAL_COUNTERS[purpose],
        )

    def test_ok_and_done(self):
        """
        A rotation's "ok" and "done", opened under the next key, are each
        compared with what they must hold as they arrive.
        """
        rotation = ClientRotation(
            self.profile, lambda: FINGERPRINT, lambda size: bytes(range(size))
        )
        rotation.start()
        [send] = rotation.receive(wire.Version(2))
        request = send.message
        shared = keyschedule.dh_shared_secret(self.server_private, request.public)
        key = keyschedule.next_key(
            self.profile.key, request.junk, FINGERPRINT, shared, USER, 1
        )
        public = self.server_private.public_key().public_bytes_raw()
        rotation.receive(
            wire.RotateOk(
                public,
                self.server_seal(key, b"ok", keyschedule.ROTATE_OK_PURPOSE),
            )
        )
        # The Diffie-Hellman secret's all-zero check comes first.
        self.assertEqual(self.compared[-1], (b"ok", b"ok"))
        rotation.receive(
            wire.RotateDone(
                self.server_seal(key, b"done", keyschedule.ROTATE_DONE_PURPOSE)
            )
        )
        self.assertEqual(self.compared[-1], (b"done", b"done"))


class _TLSProtocol:
    """
    What the pinned creator's verification callback reports a refusal to.
    """

    def __init__(self):
        self.refusals = []

    def failVerification(self, reason):
        self.refusals.append(reason)


class PinTests(SynchronousTestCase):
    """
    The fingerprint of the certificate a server presents is compared with
    the pinned one in constant time.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        now = datetime.datetime.now(datetime.timezone.utc)
        key_path, cert_path, _ = ensure_self_signed(folder, "suto-test", now)
        self.server_context = SSL.Context(SSL.TLS_METHOD)
        self.server_context.use_privatekey_file(key_path)
        self.server_context.use_certificate_file(cert_path)
        with open(cert_path, "rb") as pem:
            certificate = x509.load_pem_x509_certificate(pem.read())
        self.fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
        self.compared = record_comparisons(self)

    def handshake(self, pin):
        """
        Run a TLS handshake in memory between the server's certificate and
        a client pinning C{pin}.

        @return: the refusals reported to the client's TLS protocol.
        """
        protocol = _TLSProtocol()
        client = pinned_client_creator(pin).clientConnectionForTLS(protocol)
        client.set_connect_state()
        server = SSL.Connection(self.server_context, None)
        server.set_accept_state()
        for _ in range(10):
            for side in (client, server):
                try:
                    side.do_handshake()
                except SSL.WantReadError:
                    pass
                except SSL.Error:
                    return protocol.refusals
            for source, target in ((client, server), (server, client)):
                try:
                    target.bio_write(source.bio_read(65536))
                except SSL.WantReadError:
                    pass
        return protocol.refusals

    def test_right_pin(self):
        """
        The server's own fingerprint is compared with the pin, and the
        handshake goes on.
        """
        self.assertEqual(self.handshake(self.fingerprint), [])
        # OpenSSL may ask more than once.
        self.assertEqual(set(self.compared), {(self.fingerprint, self.fingerprint)})

    def test_wrong_pin(self):
        """
        Another fingerprint is compared with the pin, and refused.
        """
        refusals = self.handshake("00" * 32)
        self.assertEqual(len(refusals), 1)
        self.assertEqual(set(self.compared), {(self.fingerprint, "00" * 32)})
