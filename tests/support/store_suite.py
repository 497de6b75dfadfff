"""
One test suite for every L{IUserStore}, L{IEnrollmentStore},
L{IRotationStore} and L{IRegistryStore} implementation.

A test module mixes L{UserStoreTestsMixin}, L{EnrollmentStoreTestsMixin},
L{RotationStoreTestsMixin} and L{RegistryStoreTestsMixin} each into a
trial test case of its own and defines C{make_store}; every implementation
then answers to the same tests, so they cannot drift apart.
"""

from dataclasses import replace

from passlib.hash import sha512_crypt
from zope.interface.verify import verifyObject

from suto_server.core.schemes import UnsupportedScheme
from suto_server.store import chain
from suto_server.store.errors import (
    ProfileExists,
    StoreError,
    UnknownProfile,
    UnknownUser,
    UnknownWindow,
    UserExists,
)
from suto_server.store.interfaces import (
    IAuditStore,
    IBlacklistStore,
    IProfileStore,
    IStore,
    IUserRecord,
    IUserStore,
    IWindowStore,
)
from suto_server.store.records import (
    MAX_LOCATIONS,
    MAX_NAME,
    MAX_NETWORKS,
    MAX_REASON,
    MAX_SEALED_KEY,
    MAX_TIME,
    RETIRED_KEY_HISTORY,
    AuditEvent,
    BlacklistEntry,
    EnrollmentWindow,
    Move,
    Profile,
    RotationCommit,
    UserRecord,
)

# Real hashes, made once: hashing is slow and the tests only store them.
_SHA512 = sha512_crypt.using(rounds=5000)
HASH = _SHA512.hash("pw")
OTHER_HASH = _SHA512.hash("other")
HASH_SCHEME = "sha512_crypt"

# Empty, plain text, locked, traditional DES, an unknown scheme, a setting
# without its digest, a cost above the limit, not a str.
UNSUPPORTED_HASHES = [
    "",
    "pw",
    "*",
    "!" + HASH,
    "abJnggxhB/yWI",
    "$99$salt$checksum",
    HASH[: HASH.rindex("$")],
    "$6$rounds=999999999$salt$" + HASH[-86:],
    None,
]

BAD_NAMES = [
    "",
    "-alice",
    "a" * 65,
    "al ice",
    "alice\n",
    "al/ice",
    "al:ice",
    "al@ice",
    "\u00e5lice",
    b"alice",
    None,
    7,
]
EDGE_NAMES = ["a", "a" * 64, "_", ".x", "x-", "A.b_c-9"]


def _accepted(error, call, values):
    """
    @return: those of C{values} for which C{call(value)} did not raise
        C{error}, so that a failing test names every value let through.
    """
    accepted = []
    for value in values:
        try:
            call(value)
        except error:
            continue
        accepted.append(value)
    return accepted


class UserStoreTestsMixin:
    """
    Tests of L{IUserStore} behaviour.  Mix into a trial C{TestCase} that
    defines C{make_store()}, returning a new, empty, open store.
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)

    def test_provides_interface(self):
        """
        The store provides L{IStore} and so L{IUserStore} completely.
        """
        self.assertTrue(verifyObject(IStore, self.store))
        self.assertTrue(verifyObject(IUserStore, self.store))

    def test_empty(self):
        """
        A new store lists no accounts and has no hash for anyone.
        """
        self.assertEqual(self.store.list_users(), [])
        self.assertIsNone(self.store.hash_for("alice"))

    def test_add_user(self):
        """
        An added account's hash is returned by C{hash_for} and the account is
        listed with its scheme and times, but without its hash.
        """
        self.store.add_user("alice", HASH, 1000.5)
        self.assertEqual(self.store.hash_for("alice"), HASH)
        records = self.store.list_users()
        self.assertEqual(
            records, [UserRecord("alice", HASH_SCHEME, 1000.5, 1000.5)]
        )
        self.assertTrue(verifyObject(IUserRecord, records[0]))
        self.assertNotIn(HASH, repr(records))

    def test_add_existing_user(self):
        """
        Adding a name that is taken raises L{UserExists} and leaves the
        existing account as it was.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertRaises(
            UserExists, self.store.add_user, "alice", OTHER_HASH, 2000.0
        )
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [UserRecord("alice", HASH_SCHEME, 1000.0, 1000.0)],
        )

    def test_hash_for_unknown_user(self):
        """
        C{hash_for} returns L{None} for a name that has no account, while
        other accounts exist.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertIsNone(self.store.hash_for("bob"))

    def test_list_sorted_by_name(self):
        """
        C{list_users} returns the accounts sorted by name, by code point
        (capitals first), whatever the order they were added in.
        """
        for name in ["carol", "alice", "Zed", "bob", "_x"]:
            self.store.add_user(name, HASH, 1000.0)
        self.assertEqual(
            [record.username for record in self.store.list_users()],
            ["Zed", "_x", "alice", "bob", "carol"],
        )

    def test_set_password_hash(self):
        """
        C{set_password_hash} replaces the hash and moves C{updated} to the
        given time, keeping C{created}; other accounts are untouched.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.store.add_user("bob", HASH, 1500.0)
        self.store.set_password_hash("alice", OTHER_HASH, 2000.0)
        self.assertEqual(self.store.hash_for("alice"), OTHER_HASH)
        self.assertEqual(self.store.hash_for("bob"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [
                UserRecord("alice", HASH_SCHEME, 1000.0, 2000.0),
                UserRecord("bob", HASH_SCHEME, 1500.0, 1500.0),
            ],
        )

    def test_set_password_hash_unknown_user(self):
        """
        Setting the hash of a name without an account raises L{UnknownUser}
        and creates nothing.
        """
        self.assertRaises(
            UnknownUser, self.store.set_password_hash, "alice", HASH, 1000.0
        )
        self.assertEqual(self.store.list_users(), [])

    def test_remove_user(self):
        """
        A removed account is gone from C{hash_for} and C{list_users}, other
        accounts stay, and the name can be added again.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.store.add_user("bob", HASH, 1000.0)
        self.store.remove_user("alice")
        self.assertIsNone(self.store.hash_for("alice"))
        self.assertEqual(
            [record.username for record in self.store.list_users()], ["bob"]
        )
        self.store.add_user("alice", OTHER_HASH, 3000.0)
        self.assertEqual(self.store.hash_for("alice"), OTHER_HASH)

    def test_remove_unknown_user(self):
        """
        Removing a name without an account raises L{UnknownUser}.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertRaises(UnknownUser, self.store.remove_user, "bob")
        self.assertEqual(self.store.hash_for("alice"), HASH)

    def test_add_unsupported_scheme(self):
        """
        An account whose hash is of no scheme SUTO can verify is refused
        with L{UnsupportedScheme}, and nothing is stored.
        """
        self.assertEqual(
            _accepted(
                UnsupportedScheme,
                lambda password_hash: self.store.add_user(
                    "alice", password_hash, 1000.0
                ),
                UNSUPPORTED_HASHES,
            ),
            [],
        )
        self.assertEqual(self.store.list_users(), [])

    def test_set_unsupported_scheme(self):
        """
        Replacing a hash with one of no scheme SUTO can verify is refused
        with L{UnsupportedScheme}, and the old hash stays.
        """
        self.store.add_user("alice", HASH, 1000.0)
        self.assertEqual(
            _accepted(
                UnsupportedScheme,
                lambda password_hash: self.store.set_password_hash(
                    "alice", password_hash, 2000.0
                ),
                UNSUPPORTED_HASHES,
            ),
            [],
        )
        self.assertEqual(self.store.hash_for("alice"), HASH)
        self.assertEqual(
            self.store.list_users(),
            [UserRecord("alice", HASH_SCHEME, 1000.0, 1000.0)],
        )

    def test_bad_names(self):
        """
        Every method that takes a name raises L{ValueError} for one the wire
        could not carry (or that is not a L{str}), and stores nothing.
        """
        calls = {
            "add_user": lambda name: self.store.add_user(name, HASH, 1000.0),
            "set_password_hash": lambda name: self.store.set_password_hash(
                name, HASH, 1000.0
            ),
            "remove_user": self.store.remove_user,
            "hash_for": self.store.hash_for,
        }
        for method, call in calls.items():
            self.assertEqual(
                (method, _accepted(ValueError, call, BAD_NAMES)), (method, [])
            )
        self.assertEqual(self.store.list_users(), [])

    def test_edge_names(self):
        """
        Names at the edges of the rule (one or 64 characters, starting with
        C{_} or C{.}, ending with C{-}) are accepted.
        """
        for name in EDGE_NAMES:
            self.store.add_user(name, HASH, 1000.0)
        self.assertEqual(
            [record.username for record in self.store.list_users()],
            sorted(EDGE_NAMES),
        )

    def test_closed(self):
        """
        After C{close}, every method, C{close} included, raises
        L{StoreError}.
        """
        store = self.make_store()
        store.add_user("alice", HASH, 1000.0)
        store.close()
        calls = {
            "add_user": lambda: store.add_user("bob", HASH, 1000.0),
            "set_password_hash": lambda: store.set_password_hash(
                "alice", HASH, 1000.0
            ),
            "remove_user": lambda: store.remove_user("alice"),
            "list_users": store.list_users,
            "hash_for": lambda: store.hash_for("alice"),
            "close": store.close,
        }
        self.assertEqual(
            _accepted(StoreError, lambda method: calls[method](), calls), []
        )


WINDOW = EnrollmentWindow(
    username="alice",
    otp_hash=HASH,
    networks=("10.2.3.0/24", "2001:db8:9::/64"),
    location_name="lab-east",
    opened_at=1000.0,
    deadline=1900.0,
    attempts=0,
    max_attempts=5,
    replace=False,
)

PROFILE = Profile(
    username="alice",
    fingerprint_hash=bytes(range(32)),
    key_sealed=bytes(range(100, 160)),
    key_id="0123456789abcdef" * 2,
    generation=0,
    enrolled_at=1200.5,
    location="10.2.3.17",
    location_name="lab-east",
)

# Each differs from WINDOW in one field the store must refuse.
BAD_WINDOWS = [
    replace(WINDOW, username="-alice"),
    replace(WINDOW, username=None),
    replace(WINDOW, otp_hash="plain"),
    replace(WINDOW, otp_hash="!" + HASH),
    replace(WINDOW, otp_hash=None),
    replace(WINDOW, networks=()),
    replace(WINDOW, networks=["10.2.3.0/24"]),
    replace(WINDOW, networks=("10.2.3.0/24",) * (MAX_NETWORKS + 1)),
    replace(WINDOW, networks=("10.2.3.0/24,10.9.0.0/24",)),
    replace(WINDOW, networks=("10.2.3.7/24",)),
    replace(WINDOW, networks=("10.2.3.0/255.255.255.0",)),
    replace(WINDOW, networks=("2001:DB8:9::/64",)),
    replace(WINDOW, networks=("lab-east",)),
    replace(WINDOW, networks=("",)),
    replace(WINDOW, networks=(None,)),
    replace(WINDOW, location_name=""),
    replace(WINDOW, location_name="x" * (MAX_NAME + 1)),
    replace(WINDOW, location_name="lab\neast"),
    replace(WINDOW, location_name=7),
    replace(WINDOW, opened_at="1000"),
    replace(WINDOW, opened_at=float("nan")),
    replace(WINDOW, opened_at=-1.0),
    replace(WINDOW, deadline=float("inf")),
    replace(WINDOW, deadline=MAX_TIME + 1),
    replace(WINDOW, deadline=True),
    replace(WINDOW, deadline=999.0),
    replace(WINDOW, attempts=-1),
    replace(WINDOW, attempts=1.0),
    replace(WINDOW, attempts=2**63),
    replace(WINDOW, max_attempts=0),
    replace(WINDOW, max_attempts=None),
    replace(WINDOW, replace=1),
    replace(WINDOW, replace=None),
    PROFILE,
    None,
]

# Each differs from PROFILE in one field the store must refuse.
BAD_PROFILES = [
    replace(PROFILE, username="al ice"),
    replace(PROFILE, fingerprint_hash=bytes(31)),
    replace(PROFILE, fingerprint_hash=bytes(33)),
    replace(PROFILE, fingerprint_hash=bytearray(32)),
    replace(PROFILE, fingerprint_hash="0" * 32),
    replace(PROFILE, key_sealed=b""),
    replace(PROFILE, key_sealed=bytes(MAX_SEALED_KEY + 1)),
    replace(PROFILE, key_sealed=None),
    replace(PROFILE, key_id="0123456789ABCDEF" * 2),
    replace(PROFILE, key_id="0123456789abcdef"),
    replace(PROFILE, key_id="0123456789abcdef" * 2 + "\n"),
    replace(PROFILE, key_id=b"0123456789abcdef" * 2),
    replace(PROFILE, generation=-1),
    replace(PROFILE, generation=False),
    replace(PROFILE, generation=2**63),
    replace(PROFILE, enrolled_at=None),
    replace(PROFILE, enrolled_at=float("-inf")),
    replace(PROFILE, location="lab-east"),
    replace(PROFILE, location="10.2.3.0/24"),
    replace(PROFILE, location=None),
    replace(PROFILE, location_name=""),
    replace(PROFILE, location=7),
    replace(PROFILE, location="fe80::1%\nforged"),
    replace(PROFILE, location="fe80::1%" + "x" * MAX_NAME),
    replace(PROFILE, location_name="\x00"),
    replace(PROFILE, generation=1, previous_key_sealed=b"old"),
    replace(PROFILE, generation=1, previous_key_id="f" * 32),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"old",
        previous_key_id=PROFILE.key_id,
    ),
    replace(PROFILE, previous_key_sealed=b"old", previous_key_id="f" * 32),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"",
        previous_key_id="f" * 32,
    ),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=bytes(MAX_SEALED_KEY + 1),
        previous_key_id="f" * 32,
    ),
    replace(
        PROFILE,
        generation=1,
        previous_key_sealed=b"old",
        previous_key_id="F" * 32,
    ),
    replace(PROFILE, current_confirmed=1),
    replace(PROFILE, current_confirmed=None),
    replace(PROFILE, rotated_at=-1),
    replace(PROFILE, rotated_at="1300"),
    replace(PROFILE, last_seen=float("nan")),
    replace(PROFILE, last_seen=MAX_TIME + 1),
    replace(PROFILE, last_address="lab-east"),
    replace(PROFILE, last_address=7),
    replace(PROFILE, rotation_failures=-1),
    replace(PROFILE, rotation_failures=1.0),
    replace(PROFILE, rotation_failures=True),
    WINDOW,
    None,
]

AUDIT = AuditEvent(
    time=1000.0,
    event="enrollment_failed",
    username="alice",
    source="10.2.3.17",
    reason="wrong_location",
)

BAD_AUDIT_EVENTS = [
    replace(AUDIT, time=None),
    replace(AUDIT, time=float("nan")),
    replace(AUDIT, time=-0.5),
    replace(AUDIT, event=""),
    replace(AUDIT, event="Enrollment failed"),
    replace(AUDIT, event="e" * 65),
    replace(AUDIT, event=None),
    replace(AUDIT, username="al/ice"),
    replace(AUDIT, username=b"alice"),
    replace(AUDIT, source=""),
    replace(AUDIT, source="x" * (MAX_NAME + 1)),
    replace(AUDIT, source="10.2.3.17\r\nforged"),
    replace(AUDIT, source=17),
    replace(AUDIT, reason=None),
    replace(AUDIT, reason="r" * (MAX_REASON + 1)),
    replace(AUDIT, reason="ok\nenrolled alice"),
    replace(AUDIT, locations=["10.2.3.17"]),
    replace(AUDIT, locations="10.2.3.17"),
    replace(AUDIT, locations=("",)),
    replace(AUDIT, locations=("lab\nforged",)),
    replace(AUDIT, locations=("x" * (MAX_NAME + 1),)),
    replace(AUDIT, locations=(b"lab",)),
    replace(AUDIT, locations=("lab",) * (MAX_LOCATIONS + 1)),
    PROFILE,
    None,
]

#: The hash of L{AUDIT} as the first record of a chain: every store must
#: link the same way, or a log moved from one to another would not verify.
AUDIT_FIRST_HASH = bytes.fromhex(
    "7950c8b40f69adfb6f73cddb73b3a23cd2ab99015639feae288c1b4d96c557e5"
)


def _window(username, **changes):
    """
    @return: L{WINDOW} for C{username}, with C{changes}.
    """
    return replace(WINDOW, username=username, **changes)


def _profile(username, **changes):
    """
    @return: L{PROFILE} for C{username}, with C{changes}.
    """
    return replace(PROFILE, username=username, **changes)


class EnrollmentStoreTestsMixin:
    """
    Tests of L{IEnrollmentStore} behaviour.  Mix into a trial C{TestCase}
    that defines C{make_store()}, returning a new, empty, open store.
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)

    def assert_unchanged(self, windows, profiles, events=()):
        """
        The store holds exactly C{windows}, C{profiles} and audit C{events}.
        """
        self.assertEqual(
            (
                self.store.list_windows(),
                self.store.list_profiles(),
                self.store.audit_events(),
            ),
            (list(windows), list(profiles), list(events)),
        )

    def test_provides_interface(self):
        """
        The store provides L{IWindowStore} and L{IAuditStore} completely.
        """
        self.assertTrue(verifyObject(IWindowStore, self.store))
        self.assertTrue(verifyObject(IAuditStore, self.store))

    def test_empty(self):
        """
        A new store has no windows, no profiles and an empty audit log.
        """
        self.assertIsNone(self.store.get_window("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assert_unchanged([], [])

    def test_open_window(self):
        """
        An opened window is given back field for field by C{get_window} and
        C{list_windows}; its networks come back as the same tuple.
        """
        self.store.open_window(WINDOW)
        window = self.store.get_window("alice")
        self.assertEqual(window, WINDOW)
        self.assertEqual(window.networks, ("10.2.3.0/24", "2001:db8:9::/64"))
        self.assertEqual(self.store.list_windows(), [WINDOW])

    def test_window_edge_values(self):
        """
        A window with one network, no location name, the most networks
        allowed, opened and closing at the ends of the time range, with
        C{replace} set, is kept as it was given.
        """
        windows = [
            _window(
                "a",
                networks=("127.0.0.1/32",),
                location_name=None,
                opened_at=0,
                deadline=0,
            ),
            _window(
                "b",
                networks=tuple(f"10.{i}.0.0/16" for i in range(MAX_NETWORKS)),
                location_name="x" * MAX_NAME,
                opened_at=0.25,
                deadline=MAX_TIME,
                max_attempts=1,
                replace=True,
            ),
            _window("c", networks=("::/0",), attempts=7, max_attempts=7),
        ]
        for window in windows:
            self.store.open_window(window)
        self.assertEqual(self.store.list_windows(), windows)
        self.assertEqual(self.store.get_window("b"), windows[1])

    def test_window_hides_password_hash(self):
        """
        A window as listed does not show its one-time password's hash when
        printed or logged.
        """
        self.store.open_window(WINDOW)
        self.assertNotIn(HASH, repr(self.store.list_windows()))
        self.assertEqual(self.store.get_window("alice").otp_hash, HASH)

    def test_reopen_window(self):
        """
        Opening a window for a user who has one replaces it whole: the new
        password, deadline and attempt count hold, and there is still one
        window.
        """
        self.store.open_window(WINDOW)
        self.store.record_failed_attempt("alice")
        reopened = replace(
            WINDOW, otp_hash=OTHER_HASH, opened_at=2000.0, deadline=2600.0
        )
        self.store.open_window(reopened)
        self.assertEqual(self.store.list_windows(), [reopened])

    def test_list_windows_sorted(self):
        """
        C{list_windows} returns the windows sorted by name, by code point,
        whatever the order they were opened in.
        """
        for name in ["carol", "alice", "Zed", "bob", "_x"]:
            self.store.open_window(_window(name))
        self.assertEqual(
            [window.username for window in self.store.list_windows()],
            ["Zed", "_x", "alice", "bob", "carol"],
        )

    def test_record_failed_attempt(self):
        """
        Each failed attempt adds one to the window's count and returns the
        new count; other windows are not touched.
        """
        self.store.open_window(WINDOW)
        self.store.open_window(_window("bob"))
        self.assertEqual(
            [self.store.record_failed_attempt("alice") for _ in range(3)],
            [1, 2, 3],
        )
        self.assertEqual(
            self.store.list_windows(),
            [replace(WINDOW, attempts=3), _window("bob")],
        )

    def test_record_failed_attempt_unknown_window(self):
        """
        Counting a failed attempt for a user without a window raises
        L{UnknownWindow} and opens none.
        """
        self.store.open_window(WINDOW)
        self.assertRaises(
            UnknownWindow, self.store.record_failed_attempt, "bob"
        )
        self.assert_unchanged([WINDOW], [])

    def test_close_window(self):
        """
        C{close_window} removes the user's window and says so; closing it
        again finds nothing.  Other windows and profiles stay.
        """
        self.store.open_window(WINDOW)
        self.store.open_window(_window("bob"))
        self.store.open_window(_window("carol"))
        self.store.complete_enrollment(_profile("carol"))
        self.assertTrue(self.store.close_window("alice"))
        self.assertFalse(self.store.close_window("alice"))
        self.assertIsNone(self.store.get_window("alice"))
        self.assert_unchanged([_window("bob")], [_profile("carol")])

    def test_complete_enrollment(self):
        """
        Completing an enrollment stores the profile, field for field, and
        closes the window; other windows stay.
        """
        self.store.open_window(WINDOW)
        self.store.open_window(_window("bob"))
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)
        self.assertIsNone(self.store.get_window("alice"))
        self.assert_unchanged([_window("bob")], [PROFILE])

    def test_profile_hides_secrets(self):
        """
        A profile as listed does not show its fingerprint hash or its
        sealed keys, current and previous, when printed or logged.
        """
        profile = replace(
            PROFILE,
            generation=1,
            previous_key_sealed=bytes(range(200, 256)),
            previous_key_id="f" * 32,
        )
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(profile)
        shown = repr(self.store.list_profiles())
        self.assertIn(profile.key_id, shown)
        self.assertIn(profile.previous_key_id, shown)
        for secret in [
            profile.fingerprint_hash,
            profile.key_sealed,
            profile.previous_key_sealed,
        ]:
            self.assertNotIn(repr(secret), shown)
            self.assertNotIn(secret.hex(), shown)

    def test_profile_edge_values(self):
        """
        Profiles with no location name, an IPv6 location, a late
        generation, the largest sealed keys allowed and rotation state at
        its bounds are kept as given.
        """
        profiles = [
            _profile("a", location_name=None, enrolled_at=0),
            _profile(
                "b",
                location="2001:db8:9::17",
                generation=2**63 - 1,
                key_sealed=bytes(MAX_SEALED_KEY),
                enrolled_at=MAX_TIME,
            ),
            _profile("c", key_sealed=b"\x00", fingerprint_hash=bytes(32)),
            _profile(
                "d",
                generation=1,
                previous_key_sealed=bytes(MAX_SEALED_KEY),
                previous_key_id="f" * 32,
                current_confirmed=False,
                rotated_at=MAX_TIME,
                last_seen=0,
                last_address="fe80::1%eth0",
                rotation_failures=2**63 - 1,
            ),
        ]
        for profile in profiles:
            self.store.open_window(_window(profile.username))
            self.store.complete_enrollment(profile)
        self.assert_unchanged([], profiles)

    def test_window_used_once(self):
        """
        A window can be completed once: completing it again raises
        L{UnknownWindow} and leaves the first profile.
        """
        self.store.open_window(replace(WINDOW, replace=True))
        self.store.complete_enrollment(PROFILE)
        other = replace(PROFILE, key_id="f" * 32)
        self.assertRaises(
            UnknownWindow, self.store.complete_enrollment, other
        )
        self.assert_unchanged([], [PROFILE])

    def test_complete_without_window(self):
        """
        Completing an enrollment for a user without a window raises
        L{UnknownWindow} and stores nothing, even while another user's
        window is open.
        """
        self.store.open_window(_window("bob"))
        self.assertRaises(
            UnknownWindow, self.store.complete_enrollment, PROFILE
        )
        self.assert_unchanged([_window("bob")], [])

    def test_complete_existing_profile(self):
        """
        Completing a window that was not opened to replace the user's
        existing profile raises L{ProfileExists}; the old profile and the
        window (with its attempt count) both stay as they were.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        window = replace(WINDOW, deadline=5000.0)
        self.store.open_window(window)
        self.store.record_failed_attempt("alice")
        newer = replace(PROFILE, key_id="f" * 32, enrolled_at=3000.0)
        self.assertRaises(
            ProfileExists, self.store.complete_enrollment, newer
        )
        self.assert_unchanged([replace(window, attempts=1)], [PROFILE])

    def test_complete_replacing_profile(self):
        """
        Completing a window opened with C{replace} replaces the user's
        existing profile, and closes the window.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.store.open_window(replace(WINDOW, replace=True))
        newer = replace(
            PROFILE,
            fingerprint_hash=bytes(32),
            key_sealed=b"new",
            key_id="f" * 32,
            enrolled_at=3000.0,
            location="10.2.3.18",
            location_name=None,
        )
        self.store.complete_enrollment(newer)
        self.assert_unchanged([], [newer])

    def test_replacing_window_without_profile(self):
        """
        A window opened with C{replace} for a user who has no profile
        simply enrolls them.
        """
        self.store.open_window(replace(WINDOW, replace=True))
        self.store.complete_enrollment(PROFILE)
        self.assert_unchanged([], [PROFILE])

    def test_profiles_are_not_accounts(self):
        """
        Enrollment needs no password account, and removing an account of
        the same name leaves the profile.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.assertIsNone(self.store.hash_for("alice"))
        self.store.add_user("alice", HASH, 1000.0)
        self.store.remove_user("alice")
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_list_profiles_sorted(self):
        """
        C{list_profiles} returns the profiles sorted by name.
        """
        for name in ["carol", "alice", "Zed", "bob"]:
            self.store.open_window(_window(name))
            self.store.complete_enrollment(_profile(name))
        self.assertEqual(
            [profile.username for profile in self.store.list_profiles()],
            ["Zed", "alice", "bob", "carol"],
        )

    def test_remove_profile(self):
        """
        C{remove_profile} forgets the user's profile and says so; removing
        it again finds nothing.  Other profiles stay, and the user can
        enroll again without C{replace}.
        """
        for name in ["alice", "bob"]:
            self.store.open_window(_window(name))
            self.store.complete_enrollment(_profile(name))
        self.assertTrue(self.store.remove_profile("alice"))
        self.assertFalse(self.store.remove_profile("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertEqual(self.store.list_profiles(), [_profile("bob")])
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_audit(self):
        """
        Audit events come back field for field, oldest first; events of
        the same time keep the order they were appended in, whatever the
        order of their times.
        """
        events = [
            AuditEvent(30.0, "enrolled", "alice", "10.2.3.17", "key id f"),
            AuditEvent(10.0, "enrollment_failed", "bob", None, "no_window"),
            AuditEvent(20.0, "b_second", None, "::1", ""),
            AuditEvent(20.0, "a_third", "carol", None, "x" * MAX_REASON),
            AuditEvent(20.0, "c_fourth", None, None, "r"),
            AuditEvent(0, "first", None, None, "at the epoch"),
        ]
        for event in events:
            self.store.append_audit(event)
        self.assertEqual(
            self.store.audit_events(),
            [events[5], events[1], events[2], events[3], events[4], events[0]],
        )

    def test_audit_since(self):
        """
        C{audit_events(since)} returns the events at or after C{since},
        oldest first.
        """
        events = [replace(AUDIT, time=float(time)) for time in [3, 1, 2, 2]]
        for event in events:
            self.store.append_audit(event)
        self.assertEqual(
            [event.time for event in self.store.audit_events(since=2)],
            [2.0, 2.0, 3.0],
        )
        self.assertEqual(self.store.audit_events(since=3.5), [])
        self.assertEqual(len(self.store.audit_events(since=0)), 4)

    def test_audit_locations(self):
        """
        An event's locations come back as the same tuple: none, one, or as
        many as the store keeps.
        """
        events = [
            AUDIT,
            replace(AUDIT, locations=("10.2.3.17 (bldg2-f3-jack17)",)),
            replace(
                AUDIT,
                locations=tuple(f"lab-{n}" for n in range(MAX_LOCATIONS)),
            ),
            replace(AUDIT, locations=("x" * MAX_NAME, "10.9.0.0/24, lab")),
        ]
        for event in events:
            self.store.append_audit(event)
        self.assertEqual(
            [event.locations for event in self.store.audit_events()],
            [event.locations for event in events],
        )

    def test_audit_chain(self):
        """
        Each appended event is chained to the one appended before it,
        whatever the order of their times: the first to 32 zero bytes,
        each with the hash L{chain.link} gives.  C{append_audit} returns
        the event as stored, and C{audit_events} gives the hashes back.
        """
        events = [
            replace(AUDIT, time=30.0),
            replace(AUDIT, time=10.0, username=None, locations=("lab",)),
            replace(AUDIT, time=20.0, source=None, reason=""),
        ]
        stored = [self.store.append_audit(event) for event in events]
        self.assertEqual(stored, events)
        previous = chain.GENESIS
        for event in stored:
            self.assertEqual(
                (event.previous_hash, event.hash),
                (previous, chain.link(previous, event)),
            )
            previous = event.hash
        self.assertEqual(
            [
                (event.previous_hash, event.hash)
                for event in self.store.audit_events()
            ],
            [
                (event.previous_hash, event.hash)
                for event in [stored[1], stored[2], stored[0]]
            ],
        )
        self.assertEqual(self.store.verify_audit(), [])

    def test_append_audits(self):
        """
        A batch of events is chained in the order given, after what was
        appended before it, exactly as appending them one by one would;
        an empty batch appends nothing.
        """
        events = [replace(AUDIT, time=float(n), reason=f"r{n}") for n in range(4)]
        one_by_one = self.make_store()
        self.addCleanup(one_by_one.close)
        expected = [one_by_one.append_audit(event) for event in events]
        self.assertEqual(self.store.append_audits([]), [])
        stored = [self.store.append_audit(events[0])]
        stored += self.store.append_audits(events[1:])
        self.assertEqual(
            [(e.previous_hash, e.hash) for e in stored],
            [(e.previous_hash, e.hash) for e in expected],
        )
        self.assertEqual(self.store.audit_events(), expected)
        self.assertEqual(self.store.verify_audit(), [])

    def test_append_audits_all_or_none(self):
        """
        A batch holding one bad event raises L{ValueError} and appends
        none of the others.
        """
        for bad in BAD_AUDIT_EVENTS[:3]:
            self.assertRaises(
                ValueError, self.store.append_audits, [AUDIT, bad, AUDIT]
            )
        self.assert_unchanged([], [])

    def test_audit_chain_vector(self):
        """
        The first record's hash is the one every store computes for it.
        """
        self.assertEqual(
            self.store.append_audit(AUDIT).hash, AUDIT_FIRST_HASH
        )

    def test_audit_chain_is_the_stores(self):
        """
        Hashes an event carries when appended are ignored: the store
        chains it itself, so no caller can fork the chain.
        """
        forged = replace(AUDIT, previous_hash=b"p" * 32, hash=b"h" * 32)
        stored = self.store.append_audit(forged)
        self.assertEqual(
            (stored.previous_hash, stored.hash),
            (chain.GENESIS, AUDIT_FIRST_HASH),
        )
        self.assertEqual(self.store.verify_audit(), [])

    def test_verify_empty(self):
        """
        An empty audit log is intact.
        """
        self.assertEqual(self.store.verify_audit(), [])

    def test_audit_bad_since(self):
        """
        A C{since} that is not a time raises L{ValueError}.
        """
        self.store.append_audit(AUDIT)
        for since in ["1000", float("nan"), -1, True, b"0"]:
            self.assertRaises(ValueError, self.store.audit_events, since)

    def test_bad_windows(self):
        """
        Opening a window with a field of the wrong type or out of bounds
        (or something that is not a window) raises L{ValueError} and
        changes nothing, even for a user who has a window already.
        """
        self.store.open_window(WINDOW)
        self.assertEqual(
            _accepted(ValueError, self.store.open_window, BAD_WINDOWS), []
        )
        self.assert_unchanged([WINDOW], [])

    def test_bad_profiles(self):
        """
        Completing an enrollment with a profile with a field of the wrong
        type or out of bounds (or something that is not a profile) raises
        L{ValueError} and leaves the window open.
        """
        self.store.open_window(WINDOW)
        self.assertEqual(
            _accepted(
                ValueError, self.store.complete_enrollment, BAD_PROFILES
            ),
            [],
        )
        self.assert_unchanged([WINDOW], [])

    def test_bad_audit_events(self):
        """
        Appending an audit event with a field of the wrong type or out of
        bounds (or something that is not an event) raises L{ValueError}
        and appends nothing.
        """
        self.assertEqual(
            _accepted(ValueError, self.store.append_audit, BAD_AUDIT_EVENTS),
            [],
        )
        self.assert_unchanged([], [])

    def test_bad_names(self):
        """
        Every method that takes a name raises L{ValueError} for one the
        wire could not carry (or that is not a L{str}).
        """
        self.store.open_window(WINDOW)
        calls = {
            "get_window": self.store.get_window,
            "record_failed_attempt": self.store.record_failed_attempt,
            "close_window": self.store.close_window,
            "get_profile": self.store.get_profile,
            "remove_profile": self.store.remove_profile,
        }
        for method, call in calls.items():
            self.assertEqual(
                (method, _accepted(ValueError, call, BAD_NAMES)), (method, [])
            )
        self.assert_unchanged([WINDOW], [])

    def test_closed(self):
        """
        After C{close}, every enrollment method raises L{StoreError}.
        """
        store = self.make_store()
        store.open_window(WINDOW)
        store.close()
        calls = {
            "open_window": lambda: store.open_window(_window("bob")),
            "get_window": lambda: store.get_window("alice"),
            "list_windows": store.list_windows,
            "record_failed_attempt": lambda: store.record_failed_attempt(
                "alice"
            ),
            "close_window": lambda: store.close_window("alice"),
            "complete_enrollment": lambda: store.complete_enrollment(
                PROFILE
            ),
            "get_profile": lambda: store.get_profile("alice"),
            "list_profiles": store.list_profiles,
            "remove_profile": lambda: store.remove_profile("alice"),
            "append_audit": lambda: store.append_audit(AUDIT),
            "audit_events": store.audit_events,
            "verify_audit": store.verify_audit,
        }
        self.assertEqual(
            _accepted(StoreError, lambda method: calls[method](), calls), []
        )


def numbered_key_id(number):
    """
    @return: a key id, different for every C{number}.
    """
    return f"{number:032x}"


def numbered_seal(number):
    """
    @return: a sealed key standing for the key numbered C{number}.
    """
    return b"sealed-%d" % (number,)


def numbered_rotation(username, old, new, now, **changes):
    """
    @return: a L{RotationCommit} of C{username}'s profile from the key of
        number C{old} at generation C{old} to the key of number C{new},
        with C{changes}.
    """
    commit = RotationCommit(
        username=username,
        expected_key_id=numbered_key_id(old),
        new_key_sealed=numbered_seal(new),
        new_key_id=numbered_key_id(new),
        new_generation=old + 1,
        now=now,
        address="10.2.3.99",
    )
    return replace(commit, **changes)


ROTATION = numbered_rotation("alice", 0, 1, 2000.0)

# Each differs from ROTATION in one field the store must refuse.
BAD_ROTATIONS = [
    replace(ROTATION, username="al ice"),
    replace(ROTATION, username=None),
    replace(ROTATION, expected_key_id="0" * 31),
    replace(ROTATION, expected_key_id=None),
    replace(ROTATION, new_key_sealed=b""),
    replace(ROTATION, new_key_sealed=bytes(MAX_SEALED_KEY + 1)),
    replace(ROTATION, new_key_sealed=bytearray(b"sealed")),
    replace(ROTATION, new_key_id="0" * 31 + "G"),
    replace(ROTATION, new_key_id=numbered_key_id(1).encode("ascii")),
    replace(ROTATION, new_key_id=numbered_key_id(0)),
    replace(ROTATION, new_generation=0),
    replace(ROTATION, new_generation=2**63),
    replace(ROTATION, new_generation=1.0),
    replace(ROTATION, now=float("inf")),
    replace(ROTATION, now=None),
    replace(ROTATION, address="10.2.3.0/24"),
    replace(ROTATION, address="10.2.3.99\n"),
    replace(ROTATION, address="fe80::1%\nforged"),
    replace(ROTATION, address="fe80::1%" + "x" * MAX_NAME),
    replace(ROTATION, address=None),
    PROFILE,
    None,
]


class RotationStoreTestsMixin:
    """
    Tests of L{IRotationStore} behaviour.  Mix into a trial C{TestCase}
    that defines C{make_store()}, returning a new, empty, open store.

    Profiles here start at key number 0 (generation 0); key number M is
    the key of generation M along one chain.
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)
        for name in ["alice", "bob"]:
            self.enroll(name)

    def enrolled(self, username):
        """
        @return: C{username}'s profile as L{enroll} stores it.
        """
        return _profile(
            username, key_sealed=numbered_seal(0), key_id=numbered_key_id(0)
        )

    def enroll(self, username, replacing=False):
        """
        Enroll C{username} with key number 0.
        """
        self.store.open_window(_window(username, replace=replacing))
        self.store.complete_enrollment(self.enrolled(username))

    def rotate(self, username, old, new, now):
        """
        Commit one rotation of C{username} from key C{old} to C{new}.
        """
        rotation = numbered_rotation(username, old, new, now)
        self.assertEqual(self.store.commit_rotations([rotation]), [True])

    def assert_retired(self, username, retired, kept=()):
        """
        The keys numbered in C{retired} are retired from C{username}'s
        profile, and those in C{kept} are not.
        """
        self.assertEqual(
            [
                (
                    number,
                    self.store.is_retired(username, numbered_key_id(number)),
                )
                for number in [*retired, *kept]
            ],
            [(number, True) for number in retired]
            + [(number, False) for number in kept],
        )

    def test_provides_interface(self):
        """
        The store provides L{IProfileStore} completely.
        """
        self.assertTrue(verifyObject(IProfileStore, self.store))

    def test_rotation_hides_sealed_key(self):
        """
        A rotation does not show its sealed key when printed or logged.
        """
        shown = repr(ROTATION)
        self.assertIn(ROTATION.new_key_id, shown)
        self.assertNotIn(repr(ROTATION.new_key_sealed), shown)
        self.assertNotIn(ROTATION.new_key_sealed.hex(), shown)

    def test_enrolled(self):
        """
        A profile stored at enrollment without rotation fields is a device
        that has just enrolled: its key confirmed, no previous key, never
        rotated, last seen when and where it enrolled, no failures, no
        retired keys.
        """
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (
                profile.previous_key_sealed,
                profile.previous_key_id,
                profile.current_confirmed,
                profile.rotated_at,
                profile.last_seen,
                profile.last_address,
                profile.rotation_failures,
            ),
            (None, None, True, None, PROFILE.enrolled_at, PROFILE.location, 0),
        )
        self.assert_retired("alice", [], kept=[0])

    def test_commit(self):
        """
        A committed rotation makes the new key current and unconfirmed,
        keeps the replaced key as the previous one, records when and from
        where, and starts the failure count again; other profiles are not
        touched.
        """
        self.store.record_rotation_failure("alice")
        bob = self.store.get_profile("bob")
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"),
                key_sealed=numbered_seal(1),
                key_id=numbered_key_id(1),
                generation=1,
                previous_key_sealed=numbered_seal(0),
                previous_key_id=numbered_key_id(0),
                current_confirmed=False,
                rotated_at=2000.0,
                last_seen=2000.0,
                last_address="10.2.3.99",
                rotation_failures=0,
            ),
        )
        self.assertEqual(self.store.get_profile("bob"), bob)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_batch(self):
        """
        A batch applies each rotation whose expected key is still current,
        in order, and refuses the others (stale key, wrong generation, no
        such profile), answering for each in order.
        """
        self.enroll("carol")
        results = self.store.commit_rotations(
            [
                numbered_rotation("alice", 0, 1, 2000.0),
                numbered_rotation("bob", 5, 6, 2000.0),
                numbered_rotation("carol", 0, 7, 2000.0, new_generation=2),
                numbered_rotation("carol", 0, 1, 2000.0),
                numbered_rotation("alice", 0, 2, 2000.0),
                numbered_rotation("dave", 0, 1, 2000.0),
            ]
        )
        self.assertEqual(results, [True, False, False, True, False, False])
        self.assertEqual(
            [
                (profile.username, profile.key_id, profile.generation)
                for profile in self.store.list_profiles()
            ],
            [
                ("alice", numbered_key_id(1), 1),
                ("bob", numbered_key_id(0), 0),
                ("carol", numbered_key_id(1), 1),
            ],
        )
        self.assertIsNone(self.store.get_profile("dave"))

    def test_batch_in_order(self):
        """
        A later rotation in a batch sees the earlier ones: two steps of one
        profile in one batch both apply, and the first new key is then the
        previous one, the original key retired.
        """
        results = self.store.commit_rotations(
            [
                numbered_rotation("alice", 0, 1, 2000.0),
                numbered_rotation("alice", 1, 2, 2001.0),
            ]
        )
        self.assertEqual(results, [True, True])
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.previous_key_id, profile.generation),
            (numbered_key_id(2), numbered_key_id(1), 2),
        )
        self.assert_retired("alice", [0], kept=[1, 2])

    def test_empty_batch(self):
        """
        An empty batch commits nothing and answers with an empty list.
        """
        self.assertEqual(self.store.commit_rotations([]), [])
        self.assertEqual(
            self.store.get_profile("alice"), self.enrolled("alice")
        )

    def test_commit_over_unconfirmed(self):
        """
        Committing over an unconfirmed key retires the previous key it
        replaces.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("alice", 1, 2, 2100.0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.previous_key_sealed, profile.previous_key_id),
            (numbered_seal(1), numbered_key_id(1)),
        )
        self.assert_retired("alice", [0], kept=[1, 2])

    def test_commit_confirms(self):
        """
        A rotation committed over an unconfirmed key is its confirmation:
        it leaves the profile and the retired keys as confirming that key
        first and then committing would have, in one transaction.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("bob", 0, 1, 2000.0)
        self.rotate("alice", 1, 2, 2100.0)
        self.assertTrue(
            self.store.confirm_current("bob", numbered_key_id(1), 2100.0, "::1")
        )
        self.rotate("bob", 1, 2, 2100.0)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(self.store.get_profile("bob"), username="alice"),
        )
        self.assert_retired("alice", [0], kept=[1, 2])
        self.assert_retired("bob", [0], kept=[1, 2])

    def test_confirm_current(self):
        """
        Confirming the current key marks it confirmed, retires and drops
        the previous key, and records when and from where; the key, its
        generation and the rotation time stay.
        """
        self.rotate("alice", 0, 1, 2000.0)
        rotated = self.store.get_profile("alice")
        self.assertTrue(
            self.store.confirm_current(
                "alice", numbered_key_id(1), 2060.0, "::1"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                rotated,
                previous_key_sealed=None,
                previous_key_id=None,
                current_confirmed=True,
                last_seen=2060.0,
                last_address="::1",
            ),
        )
        self.assert_retired("alice", [0], kept=[1])

    def test_confirm_confirmed(self):
        """
        Confirming a key already confirmed only records when and from
        where, and retires nothing.
        """
        self.assertTrue(
            self.store.confirm_current(
                "alice", numbered_key_id(0), 2060.0, "::1"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"), last_seen=2060.0, last_address="::1"
            ),
        )
        self.assert_retired("alice", [], kept=[0])

    def test_confirm_not_current(self):
        """
        Confirming a key that is not the profile's current one (its
        previous key, another profile's key, any other) or a profile that
        does not exist answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.rotate("bob", 0, 5, 2000.0)
        before = self.store.list_profiles()
        for username, number in [
            ("alice", 0),
            ("alice", 5),
            ("alice", 9),
            ("dave", 1),
        ]:
            self.assertEqual(
                (
                    username,
                    number,
                    self.store.confirm_current(
                        username, numbered_key_id(number), 2060.0, "::1"
                    ),
                ),
                (username, number, False),
            )
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_roll_back(self):
        """
        Rolling back to the previous key of an unconfirmed rotation makes
        it current again with its own generation and seal, confirmed, with
        no previous key; the abandoned key is retired, and when and from
        where are recorded.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.assertTrue(
            self.store.roll_back(
                "alice", numbered_key_id(0), 2060.0, "10.2.3.50"
            )
        )
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(
                self.enrolled("alice"),
                rotated_at=2000.0,
                last_seen=2060.0,
                last_address="10.2.3.50",
            ),
        )
        self.assert_retired("alice", [1], kept=[0])

    def test_roll_back_then_rotate(self):
        """
        After a roll back the profile rotates from the key it went back
        to, at the generation after it.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.store.roll_back("alice", numbered_key_id(0), 2060.0, "10.2.3.50")
        self.rotate("alice", 0, 2, 2061.0)
        profile = self.store.get_profile("alice")
        self.assertEqual(
            (profile.key_id, profile.generation, profile.previous_key_id),
            (numbered_key_id(2), 1, numbered_key_id(0)),
        )

    def test_no_roll_back_once_confirmed(self):
        """
        Once the current key is confirmed its predecessor is gone: rolling
        back to it answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        self.store.confirm_current("alice", numbered_key_id(1), 2060.0, "::1")
        confirmed = self.store.get_profile("alice")
        self.assertFalse(
            self.store.roll_back("alice", numbered_key_id(0), 2120.0, "::1")
        )
        self.assertEqual(self.store.get_profile("alice"), confirmed)

    def test_roll_back_refused(self):
        """
        Rolling back to a key that is not the previous one (the current
        key, another key, a profile that never rotated, a profile that does
        not exist) answers L{False} and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        for username, number in [
            ("alice", 1),
            ("alice", 7),
            ("bob", 0),
            ("dave", 0),
        ]:
            self.assertEqual(
                (
                    username,
                    number,
                    self.store.roll_back(
                        username, numbered_key_id(number), 2060.0, "::1"
                    ),
                ),
                (username, number, False),
            )
        self.assertEqual(self.store.list_profiles(), before)
        self.assert_retired("alice", [], kept=[0, 1])

    def test_retired_history(self):
        """
        Each profile keeps the last L{RETIRED_KEY_HISTORY} (16) keys it
        retired and forgets older ones; another profile's retirements
        neither count towards that nor show in it.
        """
        self.assertEqual(RETIRED_KEY_HISTORY, 16)
        last = RETIRED_KEY_HISTORY + 3
        for number in range(last):
            now = 2000.0 + number
            self.rotate("alice", number, number + 1, now)
            self.store.confirm_current(
                "alice", numbered_key_id(number + 1), now, "::1"
            )
        self.rotate("bob", 0, 100, 2000.0)
        self.store.confirm_current("bob", numbered_key_id(100), 2000.0, "::1")
        self.assert_retired(
            "alice", range(last - RETIRED_KEY_HISTORY, last), kept=[0, 1, 2]
        )
        self.assert_retired("alice", [], kept=[last, 100])
        self.assert_retired("bob", [0], kept=[1, last - 1])

    def test_record_rotation_failure(self):
        """
        Failed rotations are counted per profile, and a committed rotation
        starts the count again.
        """
        self.assertEqual(
            [self.store.record_rotation_failure("alice") for _ in range(3)],
            [1, 2, 3],
        )
        self.assertEqual(self.store.get_profile("alice").rotation_failures, 3)
        self.assertEqual(self.store.get_profile("bob").rotation_failures, 0)
        self.rotate("alice", 0, 1, 2000.0)
        self.assertEqual(self.store.record_rotation_failure("alice"), 1)

    def test_record_rotation_failure_unknown(self):
        """
        Counting a failed rotation of a profile that does not exist raises
        L{UnknownProfile} and creates nothing.
        """
        before = self.store.list_profiles()
        self.assertRaises(
            UnknownProfile, self.store.record_rotation_failure, "dave"
        )
        self.assertEqual(self.store.list_profiles(), before)

    def test_retired_keys_go_with_profile(self):
        """
        Removing a profile, or enrolling over it, forgets its retired keys
        along with it: they belonged to a device that is no longer
        enrolled.
        """
        for username in ["alice", "bob"]:
            self.rotate(username, 0, 1, 2000.0)
            self.store.confirm_current(
                username, numbered_key_id(1), 2001.0, "::1"
            )
            self.assert_retired(username, [0])
        self.store.remove_profile("alice")
        self.enroll("alice")
        self.enroll("bob", replacing=True)
        self.assert_retired("alice", [], kept=[0, 1])
        self.assert_retired("bob", [], kept=[0, 1])

    def test_bad_rotations(self):
        """
        A rotation with a field of the wrong type or out of bounds (or
        something that is not a rotation) raises L{ValueError}, alone or
        with a good rotation in its batch, and nothing is committed.
        """
        for bad in BAD_ROTATIONS:
            self.assertRaises(
                ValueError, self.store.commit_rotations, [bad]
            )
            self.assertRaises(
                ValueError, self.store.commit_rotations, [ROTATION, bad]
            )
        self.assertEqual(
            self.store.get_profile("alice"), self.enrolled("alice")
        )

    def test_bad_arguments(self):
        """
        Every other rotation method raises L{ValueError} for a name the
        wire could not carry, a malformed key id, a time out of range or
        an address that is not one, and changes nothing.
        """
        self.rotate("alice", 0, 1, 2000.0)
        before = self.store.list_profiles()
        good = {
            "username": "alice",
            "key_id": numbered_key_id(1),
            "now": 2060.0,
            "address": "::1",
        }
        bad = {
            "username": BAD_NAMES,
            "key_id": [
                "A" * 32,
                numbered_key_id(1)[1:],
                numbered_key_id(1) + "\n",
                None,
            ],
            "now": [-1, float("nan"), "2060"],
            "address": ["", "::1\n", "fe80::1%\n", "somewhere", None, 7],
        }
        calls = {
            "confirm_current": (
                self.store.confirm_current,
                ["username", "key_id", "now", "address"],
            ),
            "roll_back": (
                self.store.roll_back,
                ["username", "key_id", "now", "address"],
            ),
            "is_retired": (self.store.is_retired, ["username", "key_id"]),
            "record_rotation_failure": (
                self.store.record_rotation_failure,
                ["username"],
            ),
        }
        for method, (call, arguments) in calls.items():
            for argument in arguments:

                def one(value, call=call, arguments=arguments, name=argument):
                    call(**{**{a: good[a] for a in arguments}, name: value})

                accepted = _accepted(ValueError, one, bad[argument])
                self.assertEqual(
                    (method, argument, accepted), (method, argument, [])
                )
        self.assertEqual(self.store.list_profiles(), before)

    def test_closed(self):
        """
        After C{close}, every rotation method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "commit_rotations": lambda: store.commit_rotations([ROTATION]),
            "confirm_current": lambda: store.confirm_current(
                "alice", numbered_key_id(0), 2000.0, "::1"
            ),
            "roll_back": lambda: store.roll_back(
                "alice", numbered_key_id(0), 2000.0, "::1"
            ),
            "record_rotation_failure": lambda: store.record_rotation_failure(
                "alice"
            ),
            "is_retired": lambda: store.is_retired(
                "alice", numbered_key_id(0)
            ),
        }
        self.assertEqual(
            _accepted(StoreError, lambda method: calls[method](), calls), []
        )


MOVE = Move(
    username="alice",
    time=3000.0,
    old_address="10.2.3.17",
    new_address="10.9.0.4",
    old_location_name="bldg2-f3-jack17",
    new_location_name="lab-east",
)

# Each differs from MOVE in one field the store must refuse.
BAD_MOVES = [
    replace(MOVE, username="al ice"),
    replace(MOVE, username=None),
    replace(MOVE, time=-1),
    replace(MOVE, time=float("nan")),
    replace(MOVE, time="3000"),
    replace(MOVE, old_address="lab-east"),
    replace(MOVE, old_address=None),
    replace(MOVE, new_address="10.9.0.0/24"),
    replace(MOVE, new_address="10.9.0.4\nforged"),
    replace(MOVE, old_location_name=""),
    replace(MOVE, old_location_name="x" * (MAX_NAME + 1)),
    replace(MOVE, new_location_name="lab\x00"),
    replace(MOVE, new_location_name=7),
]


class RegistryStoreTestsMixin:
    """
    Tests of L{IRegistryStore} behaviour.  Mix into a trial C{TestCase}
    that defines C{make_store()}, returning a new, empty, open store.
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)

    def record(self, move):
        """
        Record C{move} through the store's own signature.
        """
        self.store.record_move(
            move.username,
            move.time,
            move.old_address,
            move.new_address,
            move.old_location_name,
            move.new_location_name,
        )

    def test_provides_interface(self):
        """
        The store provides L{IProfileStore} completely.
        """
        self.assertTrue(verifyObject(IProfileStore, self.store))

    def test_no_moves(self):
        """
        A profile that never moved has no moves.
        """
        self.assertEqual(self.store.moves("alice"), [])

    def test_moves(self):
        """
        A profile's moves come back field for field, in the order they
        were recorded (not the order of their times), and only its own.
        """
        moves = [
            MOVE,
            replace(
                MOVE,
                time=2000.0,
                old_address="10.9.0.4",
                new_address="2001:db8::7",
                old_location_name="lab-east",
                new_location_name=None,
            ),
            replace(MOVE, time=MAX_TIME, old_location_name=None),
        ]
        bob = replace(MOVE, username="bob")
        for move in [moves[0], bob, moves[1], moves[2]]:
            self.record(move)
        self.assertEqual(self.store.moves("alice"), moves)
        self.assertEqual(self.store.moves("bob"), [bob])

    def test_moves_outlive_the_profile(self):
        """
        A profile's moves stay after the profile is removed: they are its
        history.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.record(MOVE)
        self.store.remove_profile("alice")
        self.assertEqual(self.store.moves("alice"), [MOVE])

    def test_move_sets_current_location(self):
        """
        Recording a move makes its new address and time the profile's
        current location and last sighting at once, leaving the rest of
        the profile as it was; a move of a profile that is gone changes
        no other profile.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.record(MOVE)
        self.assertEqual(
            self.store.get_profile("alice"),
            replace(PROFILE, last_address=MOVE.new_address, last_seen=MOVE.time),
        )
        self.record(replace(MOVE, username="bob"))
        self.assertIsNone(self.store.get_profile("bob"))
        self.assertEqual(self.store.get_profile("alice").last_address, "10.9.0.4")

    def test_bad_move_keeps_location(self):
        """
        A refused move leaves the profile's current location as it was.
        """
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        _accepted(ValueError, self.record, BAD_MOVES)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)

    def test_bad_moves(self):
        """
        Recording a move with an argument of the wrong type or out of
        bounds raises L{ValueError} and records nothing.
        """
        self.assertEqual(_accepted(ValueError, self.record, BAD_MOVES), [])
        self.assertEqual(self.store.moves("alice"), [])

    def test_bad_names(self):
        """
        C{moves} raises L{ValueError} for a name the wire could not carry.
        """
        self.assertEqual(
            _accepted(ValueError, self.store.moves, BAD_NAMES), []
        )

    def test_closed(self):
        """
        After C{close}, every registry method raises L{StoreError}.
        """
        store = self.make_store()
        store.close()
        calls = {
            "record_move": lambda: store.record_move(
                "alice", 3000.0, "10.2.3.17", "10.9.0.4", None, None
            ),
            "moves": lambda: store.moves("alice"),
        }
        self.assertEqual(
            _accepted(StoreError, lambda method: calls[method](), calls), []
        )


BLACKLISTED = BlacklistEntry(
    username="alice",
    time=5000.0,
    reason="the reconnection did not open under the offline key",
    source="10.9.0.4",
    alert="reconnect_failed",
)


class OfflineStoreTestsMixin:
    """
    Tests of L{IOfflineStore} behaviour.  Mix into a trial C{TestCase}
    that defines C{make_store()}, returning a new, empty, open store.
    Profiles start at key number 0, last seen when they enrolled (1200.5).
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)
        for name in ["alice", "bob"]:
            self.store.open_window(_window(name))
            self.store.complete_enrollment(
                _profile(
                    name, key_sealed=numbered_seal(0), key_id=numbered_key_id(0)
                )
            )

    def test_provides_interface(self):
        """
        The store provides L{IBlacklistStore} completely.
        """
        self.assertTrue(verifyObject(IBlacklistStore, self.store))

    def test_silent_profiles(self):
        """
        Profiles last seen before the given time are silent, in order of
        name; one seen since (here by a rotation) is not.
        """
        self.assertEqual(self.store.silent_profiles(1200.5), [])
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice", "bob"])
        self.store.commit_rotations([numbered_rotation("bob", 0, 1, 1500.0)])
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice"])

    def test_mark_offline_silent_before(self):
        """
        Given the sweep's cut-off, marking skips a profile seen since the
        sweep found it silent (it rotated meanwhile, on another thread),
        and marks the one still silent; a bad cut-off changes nothing.
        """
        self.assertEqual(self.store.silent_profiles(1300.0), ["alice", "bob"])
        self.store.commit_rotations([numbered_rotation("bob", 0, 1, 1500.0)])
        self.assertEqual(
            self.store.mark_offline(["alice", "bob"], 2000.0, silent_before=1300.0),
            ["alice"],
        )
        self.assertIsNone(self.store.offline_since("bob"))
        self.assertRaises(
            ValueError,
            self.store.mark_offline,
            ["bob"],
            2000.0,
            silent_before=float("nan"),
        )
        self.assertIsNone(self.store.offline_since("bob"))

    def test_mark_offline(self):
        """
        Marking profiles offline records the time once: a second marking
        keeps the first time and reports nothing new; a name without a
        profile is skipped.  Offline profiles are no longer silent.
        """
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(
            self.store.mark_offline(["alice", "carol"], 2000.0), ["alice"]
        )
        self.assertEqual(self.store.mark_offline(["alice", "bob"], 3000.0), ["bob"])
        self.assertEqual(self.store.offline_since("alice"), 2000.0)
        self.assertEqual(self.store.offline_since("bob"), 3000.0)
        self.assertIsNone(self.store.offline_since("carol"))
        self.assertEqual(
            self.store.offline_profiles(), {"alice": 2000.0, "bob": 3000.0}
        )
        self.assertEqual(self.store.silent_profiles(4000.0), [])

    def test_rotation_ends_offline_spell(self):
        """
        A committed rotation ends the profile's offline spell and, when it
        ends a reconnection, spends its offline step: only a newer step is
        remembered after it.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=70)]
        )
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(self.store.last_offline_step("alice"), 70)
        self.store.mark_offline(["alice"], 2200.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 1, 2, 2300.0, offline_step=60)]
        )
        self.assertEqual(self.store.last_offline_step("alice"), 70)
        self.assertIsNone(self.store.last_offline_step("bob"))

    def test_refused_rotation_keeps_offline_spell(self):
        """
        A rotation whose compare-and-swap fails changes nothing: the
        profile stays offline and no step is spent.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.assertEqual(
            self.store.commit_rotations(
                [numbered_rotation("alice", 5, 6, 2100.0, offline_step=70)]
            ),
            [False],
        )
        self.assertEqual(self.store.offline_since("alice"), 2000.0)
        self.assertIsNone(self.store.last_offline_step("alice"))

    def test_removed_profile_forgets_offline_state(self):
        """
        Removing a profile removes its offline spell and steps with it.
        """
        self.store.mark_offline(["alice"], 2000.0)
        self.store.commit_rotations(
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=70)]
        )
        self.store.mark_offline(["alice"], 2200.0)
        self.store.remove_profile("alice")
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertIsNone(self.store.last_offline_step("alice"))

    def test_blacklist(self):
        """
        A blacklist entry comes back field for field; a second entry for
        the same profile is not added and the first stays.
        """
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertTrue(self.store.add_to_blacklist(BLACKLISTED))
        self.assertFalse(
            self.store.add_to_blacklist(replace(BLACKLISTED, reason="again"))
        )
        bob = replace(BLACKLISTED, username="bob", source=None, alert="blacklisted")
        self.store.add_to_blacklist(bob)
        self.assertEqual(self.store.blacklist_entry("alice"), BLACKLISTED)
        self.assertEqual(self.store.list_blacklist(), [BLACKLISTED, bob])

    def test_standing(self):
        """
        A profile's standing says, in one read, whether it is blacklisted
        and since when it is offline, as L{blacklist_entry} and
        L{offline_since} do; a name without a profile has neither.
        """
        self.assertEqual(self.store.standing("alice"), (False, None))
        self.store.mark_offline(["alice"], 2000.0)
        self.assertEqual(self.store.standing("alice"), (False, 2000.0))
        self.store.add_to_blacklist(BLACKLISTED)
        self.assertEqual(self.store.standing("alice"), (True, 2000.0))
        self.assertEqual(self.store.standing("bob"), (False, None))
        self.assertEqual(self.store.standing("carol"), (False, None))

    def test_unblock(self):
        """
        Lifting an entry removes it and the profile with its keys, so the
        device must enroll again; lifting a missing entry changes nothing.
        """
        self.store.add_to_blacklist(BLACKLISTED)
        self.assertFalse(self.store.unblock("bob"))
        self.assertIsNotNone(self.store.get_profile("bob"))
        self.assertTrue(self.store.unblock("alice"))
        self.assertIsNone(self.store.blacklist_entry("alice"))
        self.assertIsNone(self.store.get_profile("alice"))
        self.assertFalse(self.store.unblock("alice"))

    def test_blacklist_outlives_removal(self):
        """
        Removing a blacklisted profile leaves its entry: only lifting it
        ends it.
        """
        self.store.add_to_blacklist(BLACKLISTED)
        self.store.remove_profile("alice")
        self.assertEqual(self.store.blacklist_entry("alice"), BLACKLISTED)

    def test_bad_arguments(self):
        """
        Arguments of the wrong type or out of bounds raise L{ValueError}
        and change nothing.
        """
        for bad in [
            replace(BLACKLISTED, username="-alice"),
            replace(BLACKLISTED, time=-1.0),
            replace(BLACKLISTED, reason=""),
            replace(BLACKLISTED, reason="two\nlines"),
            replace(BLACKLISTED, alert="Not An Alert"),
            "alice",
        ]:
            self.assertRaises(ValueError, self.store.add_to_blacklist, bad)
        self.assertRaises(ValueError, self.store.mark_offline, ["-x"], 1.0)
        self.assertRaises(ValueError, self.store.mark_offline, ["alice"], -1.0)
        self.assertRaises(ValueError, self.store.silent_profiles, "soon")
        self.assertRaises(
            ValueError,
            self.store.commit_rotations,
            [numbered_rotation("alice", 0, 1, 2100.0, offline_step=-1)],
        )
        self.assertEqual(self.store.list_blacklist(), [])
        self.assertIsNone(self.store.offline_since("alice"))
