"""
The shared suite of L{IWindowStore}: enrollment windows, and using one up
to store a profile.
"""

from dataclasses import replace

from zope.interface.verify import verifyObject

from suto_server.store.errors import (
    ProfileExists,
    StoreError,
    UnknownWindow,
)
from suto_server.store.interfaces import IWindowStore
from suto_server.store.records import (
    MAX_NAME,
    MAX_NETWORKS,
    MAX_TIME,
)
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    BAD_NAMES,
    HASH,
    OTHER_HASH,
    PROFILE,
    WINDOW,
    not_refused,
    profile_for,
    window_for,
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


class WindowStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IWindowStore} behaviour.
    """

    def test_provides_interface(self):
        """
        The store provides L{IWindowStore} completely.
        """
        self.assertTrue(verifyObject(IWindowStore, self.store))

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
            window_for(
                "a",
                networks=("127.0.0.1/32",),
                location_name=None,
                opened_at=0,
                deadline=0,
            ),
            window_for(
                "b",
                networks=tuple(f"10.{i}.0.0/16" for i in range(MAX_NETWORKS)),
                location_name="x" * MAX_NAME,
                opened_at=0.25,
                deadline=MAX_TIME,
                max_attempts=1,
                replace=True,
            ),
            window_for("c", networks=("::/0",), attempts=7, max_attempts=7),
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
            self.store.open_window(window_for(name))
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
        self.store.open_window(window_for("bob"))
        self.assertEqual(
            [self.store.record_failed_attempt("alice") for _ in range(3)],
            [1, 2, 3],
        )
        self.assertEqual(
            self.store.list_windows(),
            [replace(WINDOW, attempts=3), window_for("bob")],
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
        self.store.open_window(window_for("bob"))
        self.store.open_window(window_for("carol"))
        self.store.complete_enrollment(profile_for("carol"))
        self.assertTrue(self.store.close_window("alice"))
        self.assertFalse(self.store.close_window("alice"))
        self.assertIsNone(self.store.get_window("alice"))
        self.assert_unchanged([window_for("bob")], [profile_for("carol")])

    def test_complete_enrollment(self):
        """
        Completing an enrollment stores the profile, field for field, and
        closes the window; other windows stay.
        """
        self.store.open_window(WINDOW)
        self.store.open_window(window_for("bob"))
        self.store.complete_enrollment(PROFILE)
        self.assertEqual(self.store.get_profile("alice"), PROFILE)
        self.assertIsNone(self.store.get_window("alice"))
        self.assert_unchanged([window_for("bob")], [PROFILE])

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

    def test_complete_reopened_window(self):
        """
        Completing an enrollment for the window with one one-time
        password's hash, when the window was reopened with another
        password meanwhile, raises L{UnknownWindow} and changes nothing:
        the reopened window stays, with its count; given the hash of the
        window that is open, it enrolls.
        """
        reopened = replace(WINDOW, otp_hash=OTHER_HASH, replace=True)
        self.store.open_window(reopened)
        self.store.record_failed_attempt("alice")
        self.assertRaises(
            UnknownWindow, self.store.complete_enrollment, PROFILE, otp_hash=HASH
        )
        self.assert_unchanged([replace(reopened, attempts=1)], [])
        self.store.complete_enrollment(PROFILE, otp_hash=OTHER_HASH)
        self.assert_unchanged([], [PROFILE])

    def test_complete_without_window(self):
        """
        Completing an enrollment for a user without a window raises
        L{UnknownWindow} and stores nothing, even while another user's
        window is open.
        """
        self.store.open_window(window_for("bob"))
        self.assertRaises(
            UnknownWindow, self.store.complete_enrollment, PROFILE
        )
        self.assert_unchanged([window_for("bob")], [])

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

    def test_bad_windows(self):
        """
        Opening a window with a field of the wrong type or out of bounds
        (or something that is not a window) raises L{ValueError} and
        changes nothing, even for a user who has a window already.
        """
        self.store.open_window(WINDOW)
        self.assertEqual(
            not_refused(ValueError, self.store.open_window, BAD_WINDOWS), []
        )
        self.assert_unchanged([WINDOW], [])

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
        }
        for method, call in calls.items():
            self.assertEqual(
                (method, not_refused(ValueError, call, BAD_NAMES)), (method, [])
            )
        self.assert_unchanged([WINDOW], [])

    def test_closed(self):
        """
        After C{close}, every window method raises L{StoreError}.
        """
        store = self.make_store()
        store.open_window(WINDOW)
        store.close()
        calls = {
            "open_window": lambda: store.open_window(window_for("bob")),
            "get_window": lambda: store.get_window("alice"),
            "list_windows": store.list_windows,
            "record_failed_attempt": lambda: store.record_failed_attempt(
                "alice"
            ),
            "close_window": lambda: store.close_window("alice"),
            "complete_enrollment": lambda: store.complete_enrollment(
                PROFILE
            ),
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
