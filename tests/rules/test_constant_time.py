"""
The secret comparisons of the reconnection and enrollment rules run in
constant time: each goes through L{hmac.compare_digest} with the secret
operands, so a comparison written with C{==}, which no other test could
tell apart, fails here.
"""

import os
from ipaddress import ip_network

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, libxcrypt, wire
from suto_server.locations import Location
from suto_server.masterkey import MasterKey
from suto_server.rules.enrollment import Enrollment, EnrollmentRefused
from suto_server.rules.reconnection import Reconnection, ReconnectRefused
from suto_server.store.calls import LocalCalls
from suto_server.store.memory import MemoryStore
from suto_server.store.records import RotationStart
from tests.support.comparisons import record_comparisons
from tests.support.coroutines import failure_of, result_of

NOW = 1_700_000_000.0
USER = "alice"
SOURCE = "127.0.0.5"
KEY = bytes(range(32))
FINGERPRINT = bytes(range(32, 64))
JUNK = bytes(range(64, 96))


class _Profile:
    """
    The fields of a profile the reconnection rules read.
    """

    key_id = keyschedule.key_id(KEY)
    previous_key_id = None
    fingerprint_hash = FINGERPRINT


class _ProfileStore:
    """
    A store holding one profile, enrolled, online, never reconnected.
    """

    def rotation_start(self, user):
        return RotationStart(_Profile() if user == USER else None, False, None)

    def is_retired(self, user, key_id):
        return False

    def spent_offline_step(self, user):
        return None


class _Rotation:
    """
    Rotation rules whose profile holds L{KEY} alone.
    """

    def held_keys(self, profile):
        return KEY, None


class _Audit:
    def __init__(self):
        self.events = []

    def record(self, now, event, *details, unproven=False):
        self.events.append(event)


def _reconnect(proof=None):
    """
    The reconnection a client holding L{KEY} sends for the current step,
    with C{proof} in place of its real proof if given.
    """
    step = keyschedule.time_step(NOW)
    sealed = keyschedule.seal(
        keyschedule.offline_key(KEY, FINGERPRINT, step, USER),
        JUNK,
        profile=USER,
        purpose=keyschedule.RECONNECT_PURPOSE,
        direction=keyschedule.Direction.CLIENT_TO_SERVER,
        counter=keyschedule.SEAL_COUNTERS[keyschedule.RECONNECT_PURPOSE],
    )
    if proof is None:
        proof = keyschedule.reconnect_proof(KEY, USER, sealed)
    return wire.Reconnect(keyschedule.key_id(KEY), proof, sealed, USER)


class ReconnectProofTests(SynchronousTestCase):
    """
    The proof a reconnecting client sends is compared with the one the
    server computes from the key it holds, in constant time.
    """

    def setUp(self):
        self.audit = _Audit()
        store = _ProfileStore()
        self.reconnection = Reconnection(
            LocalCalls(store), _Rotation(), self.audit
        )
        self.compared = record_comparisons(self)

    def test_right_proof(self):
        """
        A reconnection with the right proof is accepted after comparing
        the expected proof with the one sent.
        """
        message = _reconnect()
        result_of(self, self.reconnection.reconnect(message, SOURCE, NOW))
        self.assertEqual(self.audit.events, ["reconnected"])
        self.assertEqual(
            self.compared,
            [(keyschedule.reconnect_proof(KEY, USER, message.sealed), message.proof)],
        )

    def test_wrong_proof(self):
        """
        A reconnection with a wrong proof is refused after comparing the
        expected proof with the one sent.
        """
        message = _reconnect(proof=bytes(16))
        failure = failure_of(
            self, self.reconnection.reconnect(message, SOURCE, NOW), ReconnectRefused
        )
        self.assertEqual(failure.value.reason, "reconnect_failed")
        self.assertEqual(
            self.compared,
            [(keyschedule.reconnect_proof(KEY, USER, message.sealed), bytes(16))],
        )


class _Pool:
    """
    Computes password hashes at once, on the calling thread.
    """

    def crypt(self, phrase, setting):
        return succeed(libxcrypt.crypt(phrase, setting))


class EnrollmentWindowTests(SynchronousTestCase):
    """
    Before completing an enrollment, the rules check that the window the
    device proved the password for is still the one open, by comparing
    the one-time password hashes in constant time.
    """

    def setUp(self):
        folder = self.mktemp()
        os.makedirs(folder)
        self.store = MemoryStore()
        self.enrollment = Enrollment(
            self.store,
            MasterKey.load_or_create(os.path.join(folder, "master.key")),
            _Pool(),
        )
        self.compared = record_comparisons(self)

    def open_window(self, password):
        """
        Open L{USER}'s window at L{SOURCE} with C{password}.

        @return: the window as the store holds it.
        """
        lab = Location((ip_network("127.0.0.0/24"),), "lab")
        self.successResultOf(
            self.enrollment.open_window(
                USER, lab, 120.0, NOW, password=password, replace=True
            )
        )
        return self.store.get_window(USER)

    def sealed(self, window, password):
        """
        The fingerprint and random data a device that knows C{password}
        seals for C{window}.
        """
        secret = keyschedule.password_secret(
            libxcrypt.crypt(password, window.otp_hash), USER
        )
        return keyschedule.seal(
            secret,
            FINGERPRINT + JUNK,
            profile=USER,
            purpose=keyschedule.ENROLL_DATA_PURPOSE,
            direction=keyschedule.Direction.CLIENT_TO_SERVER,
            counter=0,
        )

    def test_same_window(self):
        """
        An enrollment completes after comparing the hash of the window it
        began with to the hash of the window still open.
        """
        window = self.open_window("k7m2p-abcde-fghjk-mnpqr")
        begun = result_of(self, self.enrollment.begin(USER, SOURCE, NOW))
        sealed = self.sealed(window, "k7m2p-abcde-fghjk-mnpqr")
        result_of(self, self.enrollment.complete(begun, SOURCE, sealed, NOW))
        self.assertIsNotNone(self.store.get_profile(USER))
        self.assertEqual(self.compared, [(window.otp_hash, window.otp_hash)])

    def test_reopened_window(self):
        """
        An enrollment whose window IT reopened with a new password is
        refused after comparing the two windows' hashes.
        """
        old = self.open_window("k7m2p-abcde-fghjk-mnpqr")
        begun = result_of(self, self.enrollment.begin(USER, SOURCE, NOW))
        sealed = self.sealed(old, "k7m2p-abcde-fghjk-mnpqr")
        new = self.open_window("the-new-password")
        refused = failure_of(
            self, self.enrollment.complete(begun, SOURCE, sealed, NOW), EnrollmentRefused
        )
        self.assertEqual(refused.value.reason, "no_window")
        self.assertEqual(self.compared, [(new.otp_hash, old.otp_hash)])
