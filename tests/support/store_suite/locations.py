"""
The shared suite of L{IProfileStore.locations}: every profile's last
address, read a page at a time, which the connection gate's table of
expected addresses is built from at start-up
(L{suto_server.rules.expected.KnownLocations.of}).
"""

from suto_server.store.records import LOCATIONS_PAGE
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import BAD_NAMES, numbered_key_id


class LocationStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IProfileStore.locations}.
    """

    enrolled_at_start = ("carol", "alice", "Zed", "bob", "dave")

    def test_empty(self):
        """
        A store without profiles has no locations, whatever the page.
        """
        for name in self.enrolled_at_start:
            self.store.remove_profile(name)
        self.assertEqual(self.store.locations(None, LOCATIONS_PAGE), [])
        self.assertEqual(self.store.locations("alice", 1), [])

    def test_pages(self):
        """
        Each page names the next profiles after the name it is given, in
        the order of C{list_profiles}, so paging from L{None} until a short
        page names every profile exactly once.
        """
        pages, after = [], None
        while True:
            page = self.store.locations(after, 2)
            pages.append(page)
            if len(page) < 2:
                break
            after = page[-1][0]
        self.assertEqual(
            pages,
            [
                [("Zed", "10.2.3.17"), ("alice", "10.2.3.17")],
                [("bob", "10.2.3.17"), ("carol", "10.2.3.17")],
                [("dave", "10.2.3.17")],
            ],
        )
        self.assertEqual(
            [location for page in pages for location in page],
            [
                (profile.username, profile.last_address)
                for profile in self.store.list_profiles()
            ],
        )

    def test_after_any_name(self):
        """
        The name a page starts after need not be a profile's: the page
        starts at the first name sorting after it.
        """
        self.assertEqual(
            [name for name, _ in self.store.locations("b", LOCATIONS_PAGE)],
            ["bob", "carol", "dave"],
        )
        self.assertEqual(self.store.locations("dave", LOCATIONS_PAGE), [])

    def test_last_address(self):
        """
        A profile's location is where it was last used from, not where it
        enrolled: a confirmed key and a recorded move both change it.
        """
        self.store.confirm_current("bob", numbered_key_id(0), 1300.0, "10.9.0.1")
        self.store.record_move(
            "carol", 1400.0, "10.2.3.17", "2001:db8::5", None, None
        )
        self.assertEqual(
            self.store.locations("alice", 2),
            [("bob", "10.9.0.1"), ("carol", "2001:db8::5")],
        )

    def test_refuses_bad_pages(self):
        """
        A page after something that is not a user name (L{None} being
        the first page), or of a size that is not a count from 1 to
        L{LOCATIONS_PAGE}, is refused with L{ValueError}.
        """
        for after in [name for name in BAD_NAMES if name is not None]:
            with self.subTest(after=after):
                self.assertRaises(ValueError, self.store.locations, after, 1)
        for count in [0, -1, LOCATIONS_PAGE + 1, 1.0, True, None, "2"]:
            with self.subTest(count=count):
                self.assertRaises(ValueError, self.store.locations, None, count)
