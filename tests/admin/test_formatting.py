"""
Tests for L{suto_server.admin.formatting}: how C{suto-admin} reads
durations and times and lays out its listings.
"""

import argparse
import time

from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin.formatting import (
    age,
    alert_json,
    as_json,
    cell,
    duration,
    event_json,
    place,
    row,
    since,
)
from suto_server.audit.alerts import Alert
from suto_server.store.records import AuditEvent

#: 2023-11-14T22:13:20Z.
NOW = 1_700_000_000.0


class DurationTests(SynchronousTestCase):
    """
    C{--timeout} of C{suto-admin enroll}.
    """

    def test_units(self):
        """
        A bare number is seconds; C{s}, C{m}, C{h} and C{d} scale it.
        """
        for text, seconds in [
            ("90", 90),
            ("90s", 90),
            ("2m", 120),
            ("1h", 3600),
            ("1d", 86400),
        ]:
            self.assertEqual(duration(text), seconds)

    def test_bounds(self):
        """
        A duration must be more than zero and at most 24 hours; anything
        that is not a duration is refused too.
        """
        for text in ["0", "-1m", "25h", "2d", "soon", ""]:
            self.assertRaises(argparse.ArgumentTypeError, duration, text)


class ListingTests(SynchronousTestCase):
    """
    The columns of C{suto-admin}'s listings.
    """

    def test_cell(self):
        """
        A missing value is C{-}; a list is its items joined by commas.
        """
        self.assertEqual(cell(None), "-")
        self.assertEqual(cell(""), "-")
        self.assertEqual(cell([]), "-")
        self.assertEqual(cell(["lab", "hall"]), "lab, hall")
        self.assertEqual(cell("10.0.0.1"), "10.0.0.1")

    def test_row(self):
        """
        A row is the named fields, in order, separated by tabs.
        """
        record = {"a": "x", "b": None, "c": ["y", "z"], "d": "ignored"}
        self.assertEqual(row(record, ("c", "b", "a")), "y, z\t-\tx")

    def test_place(self):
        """
        An address shows its location name when it has one.
        """
        self.assertEqual(place("10.0.0.1", "lab"), "lab (10.0.0.1)")
        self.assertEqual(place("10.0.0.1", None), "10.0.0.1")
        self.assertEqual(place(None, None), "-")

    def test_age(self):
        """
        An age is shown in its largest whole unit.
        """
        for seconds, text in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (7199, "1h"),
            (3 * 86400, "3d"),
        ]:
            self.assertEqual(age(seconds), text)

    def test_json(self):
        """
        C{--json} output is indented, with sorted keys.
        """
        self.assertEqual(
            as_json({"b": 1, "a": [2]}), '{\n  "a": [\n    2\n  ],\n  "b": 1\n}'
        )


class SinceTests(SynchronousTestCase):
    """
    C{--since} of C{suto-admin alerts} and C{suto-admin audit}.
    """

    def test_duration(self):
        """
        A duration means that long before now.
        """
        for text, seconds in [("1h", 3600), ("7d", 7 * 86400), ("90", 90)]:
            before = time.time()
            moment = since(text)
            after = time.time()
            self.assertTrue(
                before - seconds <= moment <= after - seconds, (text, moment)
            )

    def test_iso(self):
        """
        An ISO 8601 time is UTC unless it names its offset.
        """
        self.assertEqual(since("2023-11-14T22:13:20Z"), NOW)
        self.assertEqual(since("2023-11-14T22:13:20"), NOW)
        self.assertEqual(since("2023-11-14T23:13:20+01:00"), NOW)

    def test_bad(self):
        """
        Anything else, or a duration that is not positive, is refused.
        """
        for text in ["last tuesday", "", "0", "-1h", "nanh", "infd", "2023-13-01"]:
            self.assertRaises(argparse.ArgumentTypeError, since, text)


class RecordJsonTests(SynchronousTestCase):
    """
    L{alert_json} and L{event_json}: alerts and audit records as the admin
    API and C{suto-admin} show them, with RFC 3339 times and no POSIX
    time.
    """

    def test_alert(self):
        """
        An alert is shown as the sinks send it, less its C{timestamp}.
        """
        alert = Alert(
            "clone_suspected", NOW, "alice", ("lab",), "superseded", "10.9.0.4"
        )
        shown = alert_json(alert)
        expected = alert.to_json()
        del expected["timestamp"]
        self.assertEqual(shown, expected)
        self.assertEqual(shown["time"], "2023-11-14T22:13:20Z")

    def test_event(self):
        """
        An audit record is shown with the admin API's names, its hash in
        hexadecimal.
        """
        event = AuditEvent(
            NOW, "enrolled", "alice", "10.2.3.17", "key id 00", ("lab",), hash=b"\x01"
        )
        self.assertEqual(
            event_json(event),
            {
                "time": "2023-11-14T22:13:20Z",
                "event": "enrolled",
                "user": "alice",
                "source": "10.2.3.17",
                "reason": "key id 00",
                "locations": ["lab"],
                "hash": "01",
            },
        )
