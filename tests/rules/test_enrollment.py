"""
The enrollment rules over an in-memory store, a real master key and a
synchronous hash pool: what each step stores, refuses and audits, and that
no secret reaches the store or the audit log.
"""

import dataclasses
from ipaddress import ip_network

from twisted.internet import task
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.aggregation import DEFAULT_INTERVAL
from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, libxcrypt, schemes
from suto_server.locations import Location
from suto_server.rules.enrollment import (
    DEFAULT_MAX_ATTEMPTS,
    PASSWORD_ALPHABET,
    Enrollment,
    EnrollmentRefused,
    WindowHashSource,
    new_password,
)
from suto_server.store.calls import LocalCalls
from suto_server.store.errors import ProfileExists
from suto_server.store.memory import MemoryStore
from tests.support.alerts import RecordingSink
from tests.support.coroutines import failure_of, result_of
from tests.support.enrollment import (
    FINGERPRINT,
    PASSWORD,
    RANDOM,
    device_payload,
    open_confirmation,
)
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool
from tests.support.secrets import assert_no_secrets

NOW = 1_700_000_000.0
TIMEOUT = 120.0
LAB = Location((ip_network("127.0.0.0/24"),), "lab")
INSIDE = "127.0.0.5"
OUTSIDE = "127.0.1.5"
FAILURE_REASONS = {
    "no_window",
    "wrong_location",
    "expired",
    "wrong_password",
    "bad_seal",
}


def stored_values(store):
    """
    Every field value of every window, profile and audit event in C{store}.
    """
    records = store.list_windows() + store.list_profiles() + store.audit_events()
    return [
        getattr(record, field.name)
        for record in records
        for field in dataclasses.fields(record)
    ]


class EnrollmentTestsMixin:
    """
    An L{Enrollment} over a L{MemoryStore}, with helpers to open a window
    and play the device's side.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.master_key = new_master_key(self)
        self.pool = ImmediatePool()
        self.enrollment = Enrollment(self.store, self.master_key, self.pool)

    def open(self, user="alice", password=PASSWORD, now=NOW, **kwargs):
        """
        Open a window at L{LAB} for L{TIMEOUT} seconds.

        @return: the one-time password.
        """
        return result_of(
            self,
            self.enrollment.open_window(
                user, LAB, TIMEOUT, now, password=password, **kwargs
            ),
        )

    def refusal(self, call, *args):
        """
        The reason C{call(*args)} is refused with.
        """
        return failure_of(self, call(*args), EnrollmentRefused).value.reason

    def payload(self, user="alice", password=PASSWORD, **kwargs):
        window = self.store.get_window(user)
        return device_payload(
            password, schemes.salt_of(window.otp_hash), user, **kwargs
        )

    def enroll(self, user="alice", source=INSIDE, now=NOW + 1, **kwargs):
        """
        Go through begin and complete as a device (by default one with the
        right password).

        @return: C{(key_id, confirmation, first_key)}.
        """
        sealed, key = self.payload(user, **kwargs)
        window = result_of(self, self.enrollment.begin(user, source, now))
        key_id, confirmation = result_of(self, self.enrollment.complete(window, source, sealed, now))
        return key_id, confirmation, key

    def events(self, event=None):
        return [
            (e.event, e.username, e.source, e.reason)
            for e in self.store.audit_events()
            if event is None or e.event == event
        ]


class OpenWindowTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    L{Enrollment.open_window} stores a window that holds only the
    password's hash.
    """

    def test_window(self):
        """
        The window names the user, the location's networks and name, the
        deadline, no attempts, the configured limit, and a sha512-crypt
        hash of the password.
        """
        self.assertEqual(self.open(), PASSWORD)
        window = self.store.get_window("alice")
        self.assertEqual(
            (
                window.username,
                window.networks,
                window.location_name,
                window.opened_at,
                window.deadline,
                window.attempts,
                window.max_attempts,
                window.replace,
            ),
            ("alice", ("127.0.0.0/24",), "lab", NOW, NOW + TIMEOUT, 0, 5, False),
        )
        self.assertEqual(schemes.identify(window.otp_hash), "sha512_crypt")
        self.assertEqual(libxcrypt.crypt(PASSWORD, window.otp_hash), window.otp_hash)

    def test_password_not_stored(self):
        """
        No field of the window nor of the audit log holds the password.
        """
        self.open()
        values = stored_values(self.store)
        self.assertTrue(values)
        assert_no_secrets(self, values, [PASSWORD])

    def test_generated_password(self):
        """
        Without a password one is generated: four groups of five easily
        read characters, different every time, and returned once.
        """
        first = result_of(
            self, self.enrollment.open_window("alice", LAB, TIMEOUT, NOW)
        )
        self.assertRegex(
            first, f"^[{PASSWORD_ALPHABET}]{{5}}(-[{PASSWORD_ALPHABET}]{{5}}){{3}}$"
        )
        self.assertNotEqual(first, new_password())
        window = self.store.get_window("alice")
        self.assertEqual(libxcrypt.crypt(first, window.otp_hash), window.otp_hash)

    def test_reopen(self):
        """
        Opening again replaces the window: a new password, no attempts.
        """
        self.open()
        failure_of(self, self.enrollment.begin("alice", OUTSIDE, NOW), EnrollmentRefused)
        self.open(password="another-password", now=NOW + 10)
        window = self.store.get_window("alice")
        self.assertEqual((window.attempts, window.opened_at), (0, NOW + 10))
        self.assertEqual(
            libxcrypt.crypt("another-password", window.otp_hash), window.otp_hash
        )

    def test_audited(self):
        """
        Opening is audited with the location and the time allowed.
        """
        self.open()
        self.assertEqual(
            self.events(),
            [
                (
                    "enrollment_window_opened",
                    "alice",
                    None,
                    "at lab (127.0.0.0/24) for 120s",
                )
            ],
        )

    def test_profile_exists(self):
        """
        An enrolled user gets no new window unless it replaces the
        profile; the refusal is immediate and stores nothing.
        """
        self.open()
        self.enroll()
        audit = self.events()
        failure_of(
            self,
            self.enrollment.open_window("alice", LAB, TIMEOUT, NOW),
            ProfileExists,
        )
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(self.events(), audit)

    def test_hash_source(self):
        """
        L{WindowHashSource} gives the open window's hash, so the challenge
        checker verifies the one-time password.
        """
        source = WindowHashSource(LocalCalls(self.store))
        self.assertIsNone(self.successResultOf(source.hash_for("alice")))
        self.open()
        self.assertEqual(
            self.successResultOf(source.hash_for("alice")),
            self.store.get_window("alice").otp_hash,
        )


class BeginTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    L{Enrollment.begin} admits a device only to an open window, in time,
    from the window's location.
    """

    def test_admitted(self):
        """
        From inside the location, before the deadline, the device gets the
        window, and nothing is counted.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW + TIMEOUT - 1))
        self.assertEqual(window, self.store.get_window("alice"))
        self.assertEqual(window.attempts, 0)

    def test_ipv4_mapped(self):
        """
        A dual-stack listener's IPv4-mapped peer address counts as the
        IPv4 address.
        """
        self.open()
        self.assertEqual(
            result_of(self, self.enrollment.begin("alice", "::ffff:" + INSIDE, NOW)).username,
            "alice",
        )

    def test_no_window(self):
        """
        A user without a window is refused with C{no_window}, audited, and
        nothing else is stored.
        """
        self.assertEqual(
            self.refusal(self.enrollment.begin, "alice", INSIDE, NOW), "no_window"
        )
        self.assertEqual(self.store.list_windows(), [])
        self.assertEqual(
            self.events(), [("enrollment_failed", "alice", INSIDE, "no_window")]
        )

    def test_expired(self):
        """
        At or after the deadline the window is closed and the device is
        refused with C{expired}.
        """
        self.open()
        self.assertEqual(
            self.refusal(self.enrollment.begin, "alice", INSIDE, NOW + TIMEOUT),
            "expired",
        )
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            self.events("enrollment_failed"),
            [("enrollment_failed", "alice", INSIDE, "expired")],
        )

    def test_wrong_location(self):
        """
        From outside the location, even in time, the device is refused
        with C{wrong_location} and the attempt is counted.
        """
        self.open()
        self.assertEqual(
            self.refusal(self.enrollment.begin, "alice", OUTSIDE, NOW), "wrong_location"
        )
        self.assertEqual(self.store.get_window("alice").attempts, 1)
        self.assertEqual(
            self.events("enrollment_failed"),
            [("enrollment_failed", "alice", OUTSIDE, "wrong_location")],
        )

    def test_other_user(self):
        """
        A window admits only the user it names.
        """
        self.open()
        self.assertEqual(
            self.refusal(self.enrollment.begin, "bob", INSIDE, NOW), "no_window"
        )
        self.assertEqual(self.store.get_window("alice").attempts, 0)


class FailTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    L{Enrollment.fail} counts failed attempts and closes the window after
    the last allowed one.
    """

    def fail_once(self, reason="wrong_password", source=INSIDE, now=NOW):
        self.assertEqual(
            self.refusal(self.enrollment.fail, "alice", source, reason, now), reason
        )

    def test_counted(self):
        """
        Each failure is counted and audited with its reason.
        """
        self.open()
        self.fail_once()
        self.fail_once("bad_seal")
        self.assertEqual(self.store.get_window("alice").attempts, 2)
        self.assertEqual(
            self.events("enrollment_failed"),
            [
                ("enrollment_failed", "alice", INSIDE, "wrong_password"),
                ("enrollment_failed", "alice", INSIDE, "bad_seal"),
            ],
        )

    def test_exhausted(self):
        """
        The window survives C{max_attempts - 1} failures; the last one
        closes it with an C{enrollment_window_exhausted} audit and a
        warning (its alert, at the window's location), after which the
        right password no longer helps.
        """
        self.open()
        for _ in range(DEFAULT_MAX_ATTEMPTS - 1):
            self.fail_once()
        self.assertEqual(
            self.store.get_window("alice").attempts, DEFAULT_MAX_ATTEMPTS - 1
        )
        self.assertEqual(self.events("enrollment_window_exhausted"), [])
        with capturedLogs() as logged:
            self.fail_once(source=OUTSIDE)
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            self.events("enrollment_window_exhausted"),
            [("enrollment_window_exhausted", "alice", OUTSIDE, "5 failed attempts")],
        )
        self.assertEqual(
            self.store.audit_events()[-1].locations, (LAB.describe(),)
        )
        [warning] = [
            e
            for e in logged
            if e["log_level"] is LogLevel.warn
            and e["alert_type"] == "enrollment_window_exhausted"
        ]
        self.assertEqual(
            (warning["profile"], warning["source"], warning["locations"]),
            ("alice", OUTSIDE, LAB.describe()),
        )
        self.assertEqual(
            self.refusal(self.enrollment.begin, "alice", INSIDE, NOW), "no_window"
        )

    def test_configured_limit(self):
        """
        The limit is the one the enrollment rules were given.
        """
        self.enrollment = Enrollment(
            self.store, self.master_key, self.pool, max_attempts=2
        )
        self.open()
        self.assertEqual(self.store.get_window("alice").max_attempts, 2)
        self.fail_once()
        self.fail_once()
        self.assertIsNone(self.store.get_window("alice"))

    def test_window_limit_kept(self):
        """
        A window keeps the limit it was opened with, as it keeps its
        deadline: rules restarted with another limit close it after the
        number of attempts the window itself records.
        """
        self.enrollment = Enrollment(
            self.store, self.master_key, self.pool, max_attempts=2
        )
        self.open()
        self.enrollment = Enrollment(
            self.store, self.master_key, self.pool, max_attempts=5
        )
        self.fail_once()
        self.fail_once()
        self.assertIsNone(self.store.get_window("alice"))

    def test_window_gone(self):
        """
        A failure after the window went away is still audited and refused,
        without an error from the store.
        """
        self.fail_once("wrong_password")
        self.assertEqual(
            self.events(), [("enrollment_failed", "alice", INSIDE, "wrong_password")]
        )

    def test_abandoned(self):
        """
        A device that broke off is audited as C{enrollment_abandoned} and
        costs no attempt.
        """
        self.open()
        self.enrollment.abandoned("alice", INSIDE, "cancelled", NOW)
        self.assertEqual(self.store.get_window("alice").attempts, 0)
        self.assertEqual(
            self.events("enrollment_abandoned"),
            [("enrollment_abandoned", "alice", INSIDE, "cancelled")],
        )


class CompleteTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    L{Enrollment.complete} derives the device's first key and commits the
    profile, sealed at rest, in place of the window.
    """

    def test_same_first_key(self):
        """
        The server's key id names the first key the device derives, and its
        confirmation opens under that key and names the key id.
        """
        self.open()
        key_id, confirmation, key = self.enroll()
        self.assertEqual(key_id, keyschedule.key_id(key))
        self.assertEqual(
            open_confirmation(key, confirmation, "alice"), key_id.encode("ascii")
        )

    def test_profile(self):
        """
        The profile holds the fingerprint hash, the key id, generation 0,
        the time, the source address and the location's name.
        """
        self.open()
        key_id, _, _ = self.enroll(now=NOW + 7)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (
                profile.username,
                profile.fingerprint_hash,
                profile.key_id,
                profile.generation,
                profile.enrolled_at,
                profile.location,
                profile.location_name,
            ),
            ("alice", FINGERPRINT, key_id, 0, NOW + 7, INSIDE, "lab"),
        )

    def test_key_sealed_at_rest(self):
        """
        The stored key opens with the master key, and the raw key appears
        in no stored record, in any encoding.
        """
        self.open()
        key_id, _, key = self.enroll()
        profile = self.store.get_profile("alice")
        self.assertEqual(
            self.master_key.open_key("alice", key_id, profile.key_sealed), key
        )
        assert_no_secrets(self, stored_values(self.store), [key])

    def test_window_used_once(self):
        """
        Success removes the window and audits the enrollment; the same
        password then finds no window.
        """
        self.open()
        key_id, _, _ = self.enroll()
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            self.events("enrolled"), [("enrolled", "alice", INSIDE, f"key id {key_id}")]
        )
        self.assertEqual(
            self.refusal(self.enrollment.begin, "alice", INSIDE, NOW + 2), "no_window"
        )

    def test_window_reused_after_begin(self):
        """
        Two devices admitted to the same window cannot both complete it:
        the second finds no window and its profile is not written.
        """
        self.open()
        sealed, _ = self.payload()
        first = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        second = result_of(self, self.enrollment.begin("alice", "127.0.0.6", NOW))
        key_id, _ = result_of(self, self.enrollment.complete(first, INSIDE, sealed, NOW))
        self.assertEqual(
            self.refusal(self.enrollment.complete, second, "127.0.0.6", sealed, NOW),
            "no_window",
        )
        self.assertEqual(self.store.get_profile("alice").key_id, key_id)

    def test_bad_seal(self):
        """
        Data sealed under another password does not open: C{bad_seal},
        counted, and no profile.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        sealed, _ = self.payload(password="not-the-password")
        self.assertEqual(
            self.refusal(self.enrollment.complete, window, INSIDE, sealed, NOW),
            "bad_seal",
        )
        self.assertEqual(self.store.get_window("alice").attempts, 1)
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(
            self.events("enrollment_failed"),
            [("enrollment_failed", "alice", INSIDE, "bad_seal")],
        )

    def test_bad_seal_binding(self):
        """
        Data sealed with the right secret but for another purpose,
        direction or profile, or tampered with, is a bad seal too.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        secret = keyschedule.password_secret(window.otp_hash, "alice")
        plaintext = FINGERPRINT + RANDOM
        variants = [
            dict(
                profile="alice",
                purpose="enroll-confirm",
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
            ),
            dict(
                profile="alice",
                purpose="enroll-data",
                direction=keyschedule.Direction.SERVER_TO_CLIENT,
            ),
            dict(
                profile="bob",
                purpose="enroll-data",
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
            ),
        ]
        sealed = [keyschedule.seal(secret, plaintext, counter=0, **v) for v in variants]
        good, _ = self.payload()
        sealed.append(good[:-1] + bytes([good[-1] ^ 1]))
        for data in sealed:
            self.assertEqual(
                self.refusal(self.enrollment.complete, window, INSIDE, data, NOW),
                "bad_seal",
            )
        self.assertEqual(self.store.get_window("alice").attempts, len(sealed))
        self.assertIsNone(self.store.get_profile("alice"))

    def test_wrong_size_payload(self):
        """
        A payload that opens but is not a fingerprint hash and random data
        (64 bytes) is a bad seal.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        secret = keyschedule.password_secret(window.otp_hash, "alice")
        sealed = keyschedule.seal(
            secret,
            FINGERPRINT + RANDOM[:-1],
            profile="alice",
            purpose="enroll-data",
            direction=keyschedule.Direction.CLIENT_TO_SERVER,
            counter=0,
        )
        self.assertEqual(
            self.refusal(self.enrollment.complete, window, INSIDE, sealed, NOW),
            "bad_seal",
        )
        self.assertIsNone(self.store.get_profile("alice"))

    def test_bad_seal_exhausts(self):
        """
        Bad seals count toward the limit like wrong passwords.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        sealed, _ = self.payload(password="not-the-password")
        for _ in range(DEFAULT_MAX_ATTEMPTS):
            self.refusal(self.enrollment.complete, window, INSIDE, sealed, NOW)
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(len(self.events("enrollment_window_exhausted")), 1)

    def test_expired_meanwhile(self):
        """
        A window whose deadline passed between the password check and the
        data is closed and the data refused with C{expired}.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW + TIMEOUT - 1))
        sealed, _ = self.payload()
        self.assertEqual(
            self.refusal(
                self.enrollment.complete, window, INSIDE, sealed, NOW + TIMEOUT
            ),
            "expired",
        )
        self.assertIsNone(self.store.get_window("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(
            self.events("enrollment_failed"),
            [("enrollment_failed", "alice", INSIDE, "expired")],
        )

    def test_cancelled_meanwhile(self):
        """
        A window IT cancelled after the device was admitted cannot be
        completed: C{no_window}, and no profile.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        sealed, _ = self.payload()
        result_of(self, self.enrollment.cancel("alice", NOW))
        self.assertEqual(
            self.refusal(self.enrollment.complete, window, INSIDE, sealed, NOW),
            "no_window",
        )
        self.assertIsNone(self.store.get_profile("alice"))

    def test_reopened_meanwhile(self):
        """
        A window IT reopened with a new password after the device was
        admitted is not used up by data sealed under the old password: the
        data is refused, the new window stays open and no profile is
        written.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", INSIDE, NOW))
        sealed, _ = self.payload()
        self.open(password="the-new-password", now=NOW + 1)
        failure_of(
            self,
            self.enrollment.complete(window, INSIDE, sealed, NOW + 2),
            EnrollmentRefused,
        )
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertIsNotNone(self.store.get_window("alice"))


    def test_replace(self):
        """
        A window opened with C{replace} re-enrolls an enrolled user: the
        new profile and key take the old one's place.
        """
        self.open()
        old_id, _, _ = self.enroll()
        self.open(password="second-password", replace=True)
        self.assertTrue(self.store.get_window("alice").replace)
        new_id, _, key = self.enroll(password="second-password", random_data=bytes(32))
        self.assertNotEqual(new_id, old_id)
        profile = self.store.get_profile("alice")
        self.assertEqual(profile.key_id, new_id)
        self.assertEqual(
            self.master_key.open_key("alice", new_id, profile.key_sealed), key
        )


class WindowsTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    L{Enrollment.windows} lists the open windows, closing expired ones;
    L{Enrollment.cancel} closes one.
    """

    def test_list(self):
        """
        Open windows are listed by user name.
        """
        self.open("carol")
        self.open("alice")
        self.assertEqual(
            [w.username for w in result_of(self, self.enrollment.windows(NOW + 1))],
            ["alice", "carol"],
        )

    def test_prunes_expired(self):
        """
        A window past its deadline is closed, audited and left out; the
        others stay and are not audited.
        """
        self.open("alice")
        self.open("bob", now=NOW + 60)
        [window] = result_of(self, self.enrollment.windows(NOW + TIMEOUT))
        self.assertEqual(window.username, "bob")
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            [(e, u) for e, u, _, _ in self.events("enrollment_window_expired")],
            [("enrollment_window_expired", "alice")],
        )

    def test_pruned_reason(self):
        """
        The audit record of a window closed at its deadline names why: the
        deadline passed with no enrollment.
        """
        self.open()
        result_of(self, self.enrollment.windows(NOW + TIMEOUT))
        self.assertEqual(
            self.events("enrollment_window_expired"),
            [
                (
                    "enrollment_window_expired",
                    "alice",
                    None,
                    "deadline passed with no enrollment",
                )
            ],
        )

    def test_cancel(self):
        """
        Cancelling closes the window and is audited.
        """
        self.open()
        self.assertTrue(result_of(self, self.enrollment.cancel("alice", NOW + 3)))
        self.assertIsNone(self.store.get_window("alice"))
        self.assertEqual(
            self.events("enrollment_window_cancelled"),
            [("enrollment_window_cancelled", "alice", None, "by IT")],
        )

    def test_operator_named(self):
        """
        The records of opening and cancelling name the operator who asked.
        """
        self.open(operator="alice (console link)")
        result_of(self, self.enrollment.cancel("alice", NOW + 3, "the admin socket"))
        self.assertEqual(
            [reason for _, _, _, reason in self.events()],
            [
                "at lab (127.0.0.0/24) for 120s, by alice (console link)",
                "by the admin socket",
            ],
        )

    def test_cancel_nothing(self):
        """
        Cancelling a window that is not open says so and audits nothing.
        """
        self.assertFalse(result_of(self, self.enrollment.cancel("alice", NOW)))
        self.assertEqual(self.events(), [])


class AuditTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    The audit log and the log events say what happened and why, and hold
    no secret.
    """

    def test_reasons_and_no_secrets(self):
        """
        Through every kind of event (opened, each failure, exhausted,
        abandoned, enrolled, cancelled, expired), every audit record names its
        reason, failures name one of the documented codes, and neither the
        records nor the log events hold the password, its hash or digest,
        the challenge response, the password secret, the payload, the
        fingerprint hash or the first key.
        """
        with capturedLogs() as logged:
            self.open()
            window = self.store.get_window("alice")
            rsalt = schemes.new_rsalt()
            response = schemes.client_response(
                PASSWORD, schemes.salt_of(window.otp_hash), rsalt
            )
            self.refusal(self.enrollment.begin, "bob", INSIDE, NOW)
            self.refusal(self.enrollment.begin, "alice", OUTSIDE, NOW)
            self.refusal(self.enrollment.fail, "alice", INSIDE, "wrong_password", NOW)
            bad, _ = self.payload(password="not-the-password")
            self.refusal(self.enrollment.complete, window, INSIDE, bad, NOW)
            self.enrollment.abandoned("alice", INSIDE, "cancelled", NOW)
            sealed, key = self.payload()
            self.enroll()
            self.open("bob", password="bob-password")
            for _ in range(DEFAULT_MAX_ATTEMPTS):
                self.refusal(self.enrollment.begin, "bob", OUTSIDE, NOW)
            self.open("carol", password="carol-password")
            result_of(self, self.enrollment.cancel("carol", NOW))
            self.open("dave", password="dave-password")
            self.refusal(self.enrollment.begin, "dave", INSIDE, NOW + TIMEOUT)
            self.open("erin", password="erin-password")
            result_of(self, self.enrollment.windows(NOW + TIMEOUT))

        events = self.store.audit_events()
        self.assertEqual(
            {e.event for e in events},
            {
                "enrollment_window_opened",
                "enrollment_failed",
                "enrollment_window_exhausted",
                "enrollment_abandoned",
                "enrolled",
                "enrollment_window_cancelled",
                "enrollment_window_expired",
            },
        )
        self.assertEqual(
            {e.reason for e in events if e.event == "enrollment_failed"},
            FAILURE_REASONS,
        )
        for event in events:
            self.assertTrue(event.reason, event)
        digest = window.otp_hash.rsplit("$", 1)[1]
        secret = keyschedule.password_secret(window.otp_hash, "alice")
        self.assertTrue(logged)
        assert_no_secrets(
            self,
            events + logged,
            [
                PASSWORD,
                "bob-password",
                "carol-password",
                "dave-password",
                "erin-password",
                window.otp_hash,
                digest,
                response,
                secret,
                sealed,
                bad,
                FINGERPRINT,
                key,
            ],
        )


class EnrollmentAlertTests(EnrollmentTestsMixin, SynchronousTestCase):
    """
    A refused enrollment proves nothing, so its C{enrollment_failed}
    alerts reach the sinks gathered per source; a window closing after
    too many failures is a change of state and goes out at once.
    """

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.sink = RecordingSink()
        audit = AuditLog(self.store, [self.sink], clock=self.clock)
        self.enrollment = Enrollment(
            self.store, self.master_key, self.pool, audit=audit
        )

    def test_timing_probe(self):
        """
        100 probes for a user without a window from one source are 100
        audit records, but two alerts: the first at once and one standing
        for the other 99 when the interval ends.
        """
        for _ in range(100):
            self.refusal(self.enrollment.begin, "alice", OUTSIDE, NOW)
        self.assertEqual(len(self.events("enrollment_failed")), 100)
        self.assertEqual(self.sink.counted(), [("enrollment_failed", 1)])
        self.clock.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            self.sink.counted(), [("enrollment_failed", 1), ("enrollment_failed", 99)]
        )
        self.assertEqual(self.sink.alerts[-1].source, OUTSIDE)

    def test_wrong_passwords(self):
        """
        Wrong passwords until the window closes: the failures are
        gathered, each closing window is raised at once.
        """
        for _ in range(2):
            self.open()
            for _ in range(DEFAULT_MAX_ATTEMPTS):
                self.refusal(
                    self.enrollment.fail, "alice", INSIDE, "wrong_password", NOW
                )
        self.assertEqual(
            self.sink.counted(),
            [("enrollment_failed", 1)] + [("enrollment_window_exhausted", 1)] * 2,
        )
        self.clock.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            self.sink.counted()[-1], ("enrollment_failed", 2 * DEFAULT_MAX_ATTEMPTS - 1)
        )
