# -*- test-case-name: tests.console.test_listing -*-
"""
The console's listings (search, sort, pages) and its rotation rate.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.console.guard import ConsoleError
from suto_server.console.listing import Listing, endpoints_listing
from suto_server.console.rotations import HOURS, RotationHistory, RotationRate


def row(user, location=None, address="10.0.0.1", rotated=None, age=1.0):
    return {
        "user": user,
        "location": location,
        "address": address,
        "state": "connected",
        "last_rotation": rotated,
        "key_age": age,
    }


class EndpointsListingTests(SynchronousTestCase):
    def test_search(self):
        """
        The search matches a part of the user, address or location name,
        in any case.
        """
        rows = [
            row("alice"),
            row("bob", location="Lab-2"),
            row("carol", address="10.9.9.9"),
        ]
        found = endpoints_listing(rows, "LAB", "user", "asc")
        self.assertEqual([r["user"] for r in found.rows], ["bob"])
        found = endpoints_listing(rows, "10.9", "user", "asc")
        self.assertEqual([r["user"] for r in found.rows], ["carol"])

    def test_sort(self):
        """
        Rows sort by the key either way; rows without it come last.
        """
        rows = [
            row("a", rotated="2026-01-02"),
            row("b"),
            row("c", rotated="2026-01-01"),
        ]
        asc = endpoints_listing(rows, None, "last_rotation", "asc")
        desc = endpoints_listing(rows, None, "last_rotation", "desc")
        self.assertEqual([r["user"] for r in asc.rows], ["c", "a", "b"])
        self.assertEqual([r["user"] for r in desc.rows], ["a", "c", "b"])

    def test_refused(self):
        """
        An unknown sort key or order is a console error.
        """
        self.assertRaises(ConsoleError, endpoints_listing, [], None, "key_id", "asc")
        self.assertRaises(ConsoleError, endpoints_listing, [], None, "user", "up")


class PageTests(SynchronousTestCase):
    def test_pages(self):
        """
        Pages are numbered from 1; one past the end is the last one; an
        empty listing has one empty page.
        """
        listing = Listing(list(range(120)), {})
        page = listing.page(3, 50)
        self.assertEqual(
            (page.rows, page.number, page.count), (list(range(100, 120)), 3, 3)
        )
        self.assertEqual(listing.page(9, 50).number, 3)
        self.assertEqual(Listing([], {}).page(1, 50).count, 1)


class RotationRateTests(SynchronousTestCase):
    def test_rate(self):
        """
        The rate is the count's growth over the last minute, per minute.
        """
        clock, total = Clock(), [0]
        rate = RotationRate(clock, lambda: total[0])
        self.assertEqual(rate.per_minute(), 0.0)
        clock.advance(30)
        total[0] = 10
        self.assertEqual(rate.per_minute(), 20.0)
        clock.advance(60)
        total[0] = 16
        # The first sample is now older than the window and forgotten.
        self.assertEqual(rate.per_minute(), 6.0)


class RotationHistoryTests(SynchronousTestCase):
    def test_hourly(self):
        """
        Rotations are counted per hour for the last day, oldest first;
        hours past the day are forgotten.
        """
        history = RotationHistory()
        start = 1_800_000_000 - 1_800_000_000 % 3600
        history.record("alice", start)
        history.record("alice", start + 10)
        history.record("alice", start + 3 * 3600)
        hourly = history.hourly("alice", start + 3 * 3600 + 5)
        self.assertEqual(len(hourly), HOURS)
        self.assertEqual(hourly[-4:], [2, 0, 0, 1])
        self.assertEqual(sum(hourly), 3)
        self.assertEqual(
            history.hourly("alice", start + 26 * 3600), [1] + [0] * (HOURS - 1)
        )
        self.assertEqual(sum(history.hourly("alice", start + 27 * 3600)), 0)
        self.assertIsNone(history.hourly("bob", start))

    def test_later_record_after_a_gap(self):
        """
        A rotation after more than a day of silence starts a fresh day.
        """
        history = RotationHistory()
        history.record("alice", 0)
        history.record("alice", 30 * 3600)
        self.assertEqual(sum(history.hourly("alice", 30 * 3600)), 1)
