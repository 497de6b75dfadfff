"""
Tests for L{suto_server.audit.log} and L{suto_server.store.chain}: the hash
chain and how it shows a removed, moved or edited record; recording and
alerting; tampering with a real SQLite file; and the admin API and command
line over the audit log.
"""

import hashlib
import json
import os
import sqlite3
import struct
import time
from dataclasses import replace

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest
from zope.interface import implementer

from suto_server.admin.api import admin_site
from suto_server.audit.alerts import Alert
from suto_server.audit.interfaces import IAlertSink
from suto_server.audit.log import AuditLog
from suto_server.audit.paging import LISTING_PAGE, MOST_PAGES
from suto_server.store import chain
from suto_server.store.errors import StoreError
from suto_server.store.memory import MemoryStore
from suto_server.store.records import MAX_NAME, AuditEvent
from suto_server.store.sqlite import SQLiteStore
from tests.support.admin import AdminCommandMixin
from tests.support.alerts import RecordingSink
from tests.support.folders import socket_folder

NOW = 1_700_000_000.0

EVENTS = [
    AuditEvent(NOW, "enrollment_window_opened", "alice", None, "at lab", ("lab",)),
    AuditEvent(NOW + 1, "enrollment_failed", "bob", "10.0.0.9", "no_window"),
    AuditEvent(NOW + 2, "enrolled", "alice", "10.2.3.17", "key id 00", ("lab",)),
    AuditEvent(
        NOW + 3,
        "clone_suspected",
        "alice",
        "10.9.0.4",
        "superseded key",
        ("10.9.0.4", "10.2.3.17"),
    ),
    AuditEvent(NOW + 4, "rotation_failed", "alice", "10.2.3.17", "no ack"),
]

#: What C{suto-admin audit verify} first says of a store holding L{EVENTS}.
_COUNTED = "5 record(s), the last at 2023-11-14T22:13:24Z\n"


@implementer(IAlertSink)
class RaisingSink:
    """
    Breaks its promise never to raise.
    """

    def deliver(self, alert):
        raise RuntimeError("sink broken")


@implementer(IAlertSink)
class FailingSink:
    """
    Returns a L{Deferred} that fails.
    """

    def deliver(self, alert):
        return defer.fail(RuntimeError("delivery broken"))


def chained(events):
    """
    @return: C{events} as a store keeps them, chained in order.
    """
    stored = []
    previous = chain.GENESIS
    for event in events:
        stored.append(chain.chained(previous, event))
        previous = stored[-1].hash
    return stored


class ChainTests(SynchronousTestCase):
    """
    L{chain.link} and L{chain.verify} on lists of records.
    """

    def test_link(self):
        """
        A record's hash is SHA-256 over the length-prefixed previous hash,
        time (a big-endian double), event, user, source, reason and
        locations, the optional user and source and the locations each a
        nested sequence of parts.
        """

        def parts(*values):
            return b"".join(
                len(value).to_bytes(4, "big") + value for value in values
            )

        event = EVENTS[3]
        previous = bytes(range(32))
        expected = hashlib.sha256(
            parts(
                previous,
                struct.pack(">d", NOW + 3),
                b"clone_suspected",
                parts(b"alice"),
                parts(b"10.9.0.4"),
                b"superseded key",
                parts(b"10.9.0.4", b"10.2.3.17"),
            )
        ).digest()
        self.assertEqual(chain.link(previous, event), expected)
        absent = AuditEvent(NOW, "e", None, None, "")
        self.assertEqual(
            chain.link(previous, absent),
            hashlib.sha256(
                parts(
                    previous,
                    struct.pack(">d", NOW),
                    b"e",
                    b"",
                    b"",
                    b"",
                    b"",
                )
            ).digest(),
        )

    def test_every_field_counts(self):
        """
        Changing any field, or the previous hash, changes the hash; an
        absent user, source or location differs from an empty one; the
        same time as an int or a float links the same.
        """
        event = EVENTS[3]
        link = chain.link(chain.GENESIS, event)
        changed = [
            replace(event, time=NOW + 4),
            replace(event, event="location_changed"),
            replace(event, username="bob"),
            replace(event, username=None),
            replace(event, username=""),
            replace(event, source=None),
            replace(event, source=""),
            replace(event, reason="superseded key!"),
            replace(event, locations=("10.9.0.4",)),
            replace(event, locations=("10.2.3.17", "10.9.0.4")),
            replace(event, locations=("10.9.0.4", "10.2.3.17", "")),
        ]
        hashes = {chain.link(chain.GENESIS, other) for other in changed}
        self.assertEqual(len(hashes), len(changed))
        self.assertNotIn(link, hashes)
        self.assertNotEqual(chain.link(bytes(31) + b"\x01", event), link)
        self.assertEqual(
            chain.link(chain.GENESIS, replace(event, time=1_700_000_000)),
            chain.link(chain.GENESIS, replace(event, time=NOW)),
        )

    def test_unencodable(self):
        """
        A record with a field of the wrong type (as a raw edit of the
        database can leave) raises L{ValueError}.
        """
        for bad in [
            replace(EVENTS[0], time="soon"),
            replace(EVENTS[0], event=7),
            replace(EVENTS[0], locations=(None,)),
        ]:
            self.assertRaises(ValueError, chain.link, chain.GENESIS, bad)
        self.assertRaises(ValueError, chain.link, None, EVENTS[0])

    def test_intact(self):
        """
        A chain as the store makes it verifies, as does an empty one.
        """
        self.assertEqual(chain.verify(chained(EVENTS)), [])
        self.assertEqual(chain.verify([]), [])

    def test_removed(self):
        """
        A record removed from the middle shows at the record after it.
        """
        stored = chained(EVENTS)
        del stored[2]
        self.assertEqual(
            chain.verify(stored),
            [
                "record 3 does not follow record 2: a record between them "
                "was removed, or the one before rewritten"
            ],
        )

    def test_removed_first(self):
        """
        The first record removed shows at the new first one.
        """
        self.assertEqual(
            chain.verify(chained(EVENTS)[1:]),
            ["record 1 is not the first: the records before it were removed"],
        )

    def test_reordered(self):
        """
        Two records swapped each show out of order, naming the record each
        was appended after, and so does the record after them.
        """
        stored = chained(EVENTS)
        stored[1], stored[2] = stored[2], stored[1]
        self.assertEqual(
            chain.verify(stored),
            [
                "record 2 is out of order: it was appended after record 3",
                "record 3 is out of order: it was appended after record 1",
                "record 4 is out of order: it was appended after record 2",
            ],
        )
        stored = chained(EVENTS)
        stored.append(stored.pop(0))
        self.assertEqual(
            chain.verify(stored)[-1],
            "record 5 is out of order: it was the first record",
        )

    def test_edited(self):
        """
        A record whose fields changed shows as edited, and only it.
        """
        stored = chained(EVENTS)
        stored[3] = replace(stored[3], reason="nothing happened")
        self.assertEqual(
            chain.verify(stored),
            ["record 4 was edited: its hash does not match it"],
        )

    def test_edited_and_rehashed(self):
        """
        A record edited and given the hash of its new contents shows at
        the record after it.
        """
        stored = chained(EVENTS)
        stored[1] = chain.chained(
            stored[0].hash, replace(stored[1], reason="all fine")
        )
        self.assertEqual(
            chain.verify(stored),
            [
                "record 3 does not follow record 2: a record between them "
                "was removed, or the one before rewritten"
            ],
        )

    def test_unreadable(self):
        """
        A record too damaged to encode shows as edited; verifying does not
        raise.
        """
        stored = chained(EVENTS)
        stored[0] = replace(stored[0], time="soon")
        stored[1] = replace(stored[1], previous_hash=None)
        self.assertEqual(
            chain.verify(stored),
            [
                "record 1 was edited: its hash does not match it",
                "record 2 was edited: its hash does not match it",
            ],
        )


class AuditLogTests(SynchronousTestCase):
    """
    L{AuditLog.record} appends to the chain and raises alerts.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.sinks = [RecordingSink(), RecordingSink()]
        self.audit = AuditLog(self.store, self.sinks)

    def test_record(self):
        """
        C{record} appends the event, with its locations, chained, and
        returns nothing.
        """
        result = self.audit.record(
            NOW, "enrolled", "alice", "10.2.3.17", "key id 00", ["lab"]
        )
        self.assertIsNone(result)
        [stored] = self.store.audit_events()
        self.assertEqual(
            stored,
            AuditEvent(NOW, "enrolled", "alice", "10.2.3.17", "key id 00", ("lab",)),
        )
        self.assertEqual(stored.previous_hash, chain.GENESIS)
        self.assertEqual(self.successResultOf(self.audit.verify()), [])

    def test_alert_to_every_sink(self):
        """
        An event of an alert type reaches every sink as its alert; other
        events reach none.
        """
        self.audit.record(NOW, "enrolled", "alice", "10.2.3.17", "key id 00")
        self.audit.record(
            NOW + 1,
            "clone_suspected",
            "alice",
            "10.9.0.4",
            "superseded key",
            ("10.9.0.4", "10.2.3.17"),
        )
        alert = Alert(
            "clone_suspected",
            NOW + 1,
            "alice",
            ("10.9.0.4", "10.2.3.17"),
            "superseded key",
            "10.9.0.4",
        )
        self.assertEqual([sink.alerts for sink in self.sinks], [[alert], [alert]])

    def test_sink_failures_contained(self):
        """
        A sink that raises, or whose L{Deferred} fails, is logged; the
        record is kept, the other sinks still get the alert and C{record}
        returns normally.
        """
        recording = RecordingSink()
        audit = AuditLog(self.store, [RaisingSink(), FailingSink(), recording])
        with capturedLogs() as logged:
            audit.record(NOW, "blacklisted", "alice", None, "by IT")
        self.assertEqual([alert.type for alert in recording.alerts], ["blacklisted"])
        self.assertEqual(len(self.store.audit_events()), 1)
        self.assertEqual(
            sorted(event["sink"] for event in logged if "log_failure" in event),
            ["FailingSink", "RaisingSink"],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)

    def test_bad_event(self):
        """
        An event the store would refuse raises L{ValueError}; nothing is
        recorded and no alert raised.
        """
        self.assertRaises(
            ValueError,
            self.audit.record,
            NOW,
            "clone_suspected",
            "al ice",
            None,
            "bad name",
        )
        self.assertRaises(
            ValueError,
            self.audit.record,
            NOW,
            "clone_suspected",
            "alice",
            None,
            "too many",
            ["lab"] * 17,
        )
        self.assertEqual(self.store.audit_events(), [])
        self.assertEqual([sink.alerts for sink in self.sinks], [[], []])

    def test_store_fails(self):
        """
        When the store cannot append, the alert still goes out and the
        store's error is raised.
        """
        self.store.close()
        self.assertRaises(
            StoreError,
            self.audit.record,
            NOW,
            "rate_limited",
            None,
            "10.0.0.9",
            "too many hellos",
        )
        self.assertEqual(
            [alert.type for alert in self.sinks[0].alerts], ["rate_limited"]
        )

    def later_appends(self):
        """
        @return: an L{AuditLog} over C{self.store} whose appends wait for
            the test: a list of (record, L{Deferred}) pairs, and the log.
        """
        given = []

        def append(record):
            d = Deferred()
            given.append((record, d))
            return d

        return given, AuditLog(self.store, self.sinks, append=append)

    def test_append_later(self):
        """
        With an C{append} that answers later, the record is handed to it,
        the alert goes out at once, and C{flushed} fires only once every
        append given so far has landed.
        """
        given, audit = self.later_appends()
        audit.record(NOW, "blacklisted", "alice", None, "by IT")
        audit.record(NOW + 1, "enrolled", "bob", None, "key id 00")
        self.assertEqual(
            [record.event for record, _ in given], ["blacklisted", "enrolled"]
        )
        self.assertEqual([alert.type for alert in self.sinks[0].alerts], ["blacklisted"])
        flushed = audit.flushed()
        given[0][1].callback(None)
        self.assertNoResult(flushed)
        given[1][1].callback(None)
        self.successResultOf(flushed)
        self.successResultOf(audit.flushed())

    def test_later_record_not_waited(self):
        """
        C{flushed} waits for the records given before the call, not for
        one given after it that has not landed yet.
        """
        given, audit = self.later_appends()
        audit.record(NOW, "blacklisted", "alice", None, "by IT")
        flushed = audit.flushed()
        audit.record(NOW + 1, "enrolled", "bob", None, "key id 00")
        given[0][1].callback(None)
        self.successResultOf(flushed)
        waiting = audit.flushed()
        self.assertNoResult(waiting)
        given[1][1].callback(None)
        self.successResultOf(waiting)

    def test_landed_out_of_order(self):
        """
        Records that land in another order than they were given release a
        waiter only once all of those given before its call have landed.
        """
        given, audit = self.later_appends()
        for offset, user in enumerate(["alice", "bob", "carol"]):
            audit.record(NOW + offset, "enrolled", user, None, "key id 00")
        flushed = audit.flushed()
        given[2][1].callback(None)
        given[0][1].callback(None)
        self.assertNoResult(flushed)
        given[1][1].callback(None)
        self.successResultOf(flushed)
        self.successResultOf(audit.flushed())

    def test_waiter_records_again(self):
        """
        A caller whose wait ends may record and wait again at once: its
        new wait holds until its new record lands.
        """
        given, audit = self.later_appends()
        audit.record(NOW, "blacklisted", "alice", None, "by IT")
        again = []

        def record_again(_):
            audit.record(NOW + 1, "enrolled", "bob", None, "key id 00")
            again.append(audit.flushed())

        audit.flushed().addCallback(record_again)
        given[0][1].callback(None)
        [waiting] = again
        self.assertNoResult(waiting)
        given[1][1].callback(None)
        self.successResultOf(waiting)

    def test_append_later_fails(self):
        """
        An append the store fails later is logged as critical, naming the
        event and the store's error and never the event's fields, without
        a traceback, and does not reach the caller; the alert went out
        all the same.
        """
        given, audit = self.later_appends()
        with capturedLogs() as logged:
            audit.record(NOW, "rate_limited", None, "10.0.0.9", "secret reason")
            given[0][1].errback(StoreError("disk full"))
        self.successResultOf(audit.flushed())
        [event] = [event for event in logged if event.get("event") == "rate_limited"]
        self.assertEqual(
            (event["log_level"], event["error"]), (LogLevel.critical, "disk full")
        )
        self.assertNotIn("log_failure", event)
        self.assertNotIn("secret reason", formatEvent(event))
        self.assertEqual([alert.type for alert in self.sinks[0].alerts], ["rate_limited"])

    def test_lost_logged_before_waiters(self):
        """
        A caller waiting for a record the store refused goes on only once
        the critical line about it is logged.
        """
        given, audit = self.later_appends()
        with capturedLogs() as logged:
            audit.record(NOW, "rate_limited", None, "10.0.0.9", "too many")
            seen = []
            audit.flushed().addCallback(lambda _: seen.append(len(logged)))
            given[0][1].errback(StoreError("disk full"))
        [critical] = [
            index
            for index, event in enumerate(logged)
            if event["log_level"] == LogLevel.critical
        ]
        self.assertEqual(seen, [critical + 1])

    def test_append_later_breaks(self):
        """
        An append that fails later for a reason other than the store's is
        logged as critical with its traceback: that is a bug.
        """
        given, audit = self.later_appends()
        with capturedLogs() as logged:
            audit.record(NOW, "rate_limited", None, "10.0.0.9", "secret reason")
            given[0][1].errback(RuntimeError("a bug"))
        self.successResultOf(audit.flushed())
        [event] = [event for event in logged if "log_failure" in event]
        self.assertEqual(
            (event["log_level"], event["event"]), (LogLevel.critical, "rate_limited")
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_long_locations(self):
        """
        A location longer than the store keeps is shortened rather than
        keeping the event out of the log.
        """
        long = ",".join(f"10.{n}.0.0/16" for n in range(100))
        self.audit.record(NOW, "enrollment_failed", "alice", None, "expired", [long])
        [stored] = self.store.audit_events()
        self.assertEqual(
            stored.locations, (long[: MAX_NAME - 3] + "...",)
        )

    def test_structured_log_by_default(self):
        """
        Without sinks given, alerts go to the structured log, as warnings.
        """
        with capturedLogs() as logged:
            AuditLog(self.store).record(
                NOW, "check_forged", "alice", "10.2.3.17", "wrong proof"
            )
        [warning] = [e for e in logged if e["log_level"] is LogLevel.warn]
        self.assertEqual(
            (warning["alert_type"], warning["profile"]), ("check_forged", "alice")
        )

    def test_matching_and_alerts(self):
        """
        C{matching} lists the records the store selects, newest first;
        C{alerts} only the alerts among them, paged by the store.
        """
        for event in EVENTS:
            self.audit.record(
                event.time,
                event.event,
                event.username,
                event.source,
                event.reason,
                event.locations,
            )
        self.assertEqual(self.successResultOf(self.audit.matching()), EVENTS[::-1])
        self.assertEqual(
            self.successResultOf(self.audit.matching(since=NOW + 3)), EVENTS[3:][::-1]
        )
        self.assertEqual(
            [alert.type for alert in self.successResultOf(self.audit.alerts(10))],
            ["clone_suspected", "enrollment_failed"],
        )
        self.assertEqual(
            [a.type for a in self.successResultOf(self.audit.alerts(10, since=NOW + 2))],
            ["clone_suspected"],
        )
        self.assertEqual(
            [a.type for a in self.successResultOf(self.audit.alerts(1, skip=1))],
            ["enrollment_failed"],
        )


def _append_all(store, events=EVENTS):
    for event in events:
        store.append_audit(event)


class SQLiteTamperTests(SynchronousTestCase):
    """
    Records removed, moved or edited in a real SQLite file with raw SQL
    are found by C{verify_audit}.
    """

    def setUp(self):
        directory = self.mktemp()
        os.makedirs(directory)
        self.path = os.path.join(directory, "suto.db")
        self.store = SQLiteStore.open(self.path)
        self.addCleanup(self.store.close)
        _append_all(self.store)

    def tamper(self, *statements):
        """
        Run C{statements} on the file through a connection of their own,
        as an intruder with the file would.
        """
        connection = sqlite3.connect(self.path)
        try:
            with connection:
                for sql, parameters in statements:
                    connection.execute(sql, parameters)
        finally:
            connection.close()

    def test_intact(self):
        """
        An untouched log verifies.
        """
        self.assertEqual(self.store.verify_audit(), [])

    def test_removed(self):
        """
        A record deleted from the middle is found at the record after it,
        and by its missing id.
        """
        self.tamper(("DELETE FROM audit WHERE id = 3", ()))
        self.assertEqual(
            self.store.verify_audit(),
            [
                "record 3 does not follow record 2: a record between them "
                "was removed, or the one before rewritten",
                "the record of id 3 was removed",
            ],
        )

    def test_removed_last(self):
        """
        Records deleted from the end, which leave the chain whole, are
        found by their missing ids, even once more are appended.
        """
        self.tamper(("DELETE FROM audit WHERE id >= 4", ()))
        self.assertEqual(
            self.store.verify_audit(), ["the records of ids 4 to 5 were removed"]
        )
        self.store.append_audit(EVENTS[0])
        self.assertEqual(
            self.store.verify_audit(), ["the records of ids 4 to 5 were removed"]
        )

    def test_reordered(self):
        """
        Two records whose places were swapped are found out of order, as
        is the record after them.
        """
        self.tamper(
            ("UPDATE audit SET id = -2 WHERE id = 2", ()),
            ("UPDATE audit SET id = 2 WHERE id = 3", ()),
            ("UPDATE audit SET id = 3 WHERE id = -2", ()),
        )
        self.assertEqual(
            self.store.verify_audit(),
            [
                "record 2 is out of order: it was appended after record 3",
                "record 3 is out of order: it was appended after record 1",
                "record 4 is out of order: it was appended after record 2",
            ],
        )

    def test_edited(self):
        """
        A record whose reason, user, time or locations were changed is
        found edited.
        """
        for sql in [
            "UPDATE audit SET reason = 'nothing happened' WHERE id = 4",
            "UPDATE audit SET username = 'bob' WHERE id = 4",
            "UPDATE audit SET time = time + 1 WHERE id = 4",
            "UPDATE audit SET locations = '10.9.0.4' WHERE id = 4",
        ]:
            connection = sqlite3.connect(self.path)
            before = connection.execute(
                "SELECT * FROM audit WHERE id = 4"
            ).fetchone()
            connection.close()
            self.tamper((sql, ()))
            self.assertEqual(
                (sql, self.store.verify_audit()),
                (sql, ["record 4 was edited: its hash does not match it"]),
            )
            self.tamper(
                ("DELETE FROM audit WHERE id = 4", ()),
                ("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", before),
            )
        self.assertEqual(self.store.verify_audit(), [])

    def test_edited_and_rehashed(self):
        """
        A record edited and given the hash of its new contents is found at
        the record after it.
        """
        edited = chain.chained(
            self.store.audit_events()[0].hash,
            replace(EVENTS[1], reason="all fine"),
        )
        self.tamper(
            (
                "UPDATE audit SET reason = ?, hash = ? WHERE id = 2",
                (edited.reason, edited.hash),
            )
        )
        self.assertEqual(
            self.store.verify_audit(),
            [
                "record 3 does not follow record 2: a record between them "
                "was removed, or the one before rewritten"
            ],
        )

    def test_damaged(self):
        """
        A record given a value of the wrong type is found edited; reading
        and verifying do not raise.
        """
        self.tamper(("UPDATE audit SET time = 'soon' WHERE id = 1", ()))
        self.assertEqual(
            self.store.verify_audit(),
            ["record 1 was edited: its hash does not match it"],
        )


class AdminAPITests(SynchronousTestCase):
    """
    The admin API's audit resources, driven with L{DummyRequest}.
    """

    def setUp(self):
        self.store = MemoryStore()
        self.audit = AuditLog(self.store, [])
        _append_all(self.store)
        self.site = admin_site(None, 2020, dict, list, audit=self.audit)

    def get(self, path, **arguments):
        """
        @return: the status and the JSON body of C{GET path}.
        """
        segments = path.strip("/").split("/")
        request = DummyRequest(segments)
        request.method = b"GET"
        request.args = {
            name.encode(): [value.encode()] for name, value in arguments.items()
        }
        resource = self.site.resource
        for segment in segments:
            resource = resource.getChildWithDefault(segment.encode(), request)
        body = resource.render(request)
        if body is server.NOT_DONE_YET:
            # Read after the audit log is flushed, here at once.
            self.assertEqual(request.finished, 1)
        else:
            request.write(body)
            request.finish()
        return request.responseCode, json.loads(b"".join(request.written))

    def test_read_after_written(self):
        """
        The audit, alert and verify answers wait until every record made
        before the request is written, so a record written later (on the
        database thread) is in them.
        """
        written = []

        def append(record):
            d = Deferred()
            written.append((record, d))
            return d

        self.audit = AuditLog(self.store, [], append=append)
        self.site = admin_site(None, 2020, dict, list, audit=self.audit)
        self.audit.record(NOW + 9, "blacklisted", "alice", None, "by IT")
        requests = []
        for path in [[b"v1", b"audit"], [b"v1", b"alerts"]]:
            request = DummyRequest(path)
            resource = self.site.resource
            for segment in path:
                resource = resource.getChildWithDefault(segment, request)
            self.assertIs(resource.render(request), server.NOT_DONE_YET)
            requests.append(request)
        self.assertEqual([r.finished for r in requests], [0, 0])
        [(record, d)] = written
        self.store.append_audit(record)
        d.callback(None)
        audit, alerts = [json.loads(b"".join(r.written)) for r in requests]
        self.assertEqual(audit["events"][-1]["event"], "blacklisted")
        self.assertEqual(alerts["alerts"][-1]["type"], "blacklisted")

    def test_alerts(self):
        """
        C{GET /v1/alerts} lists the alerts as their JSON, oldest first;
        C{since} keeps those at or after it.
        """
        code, body = self.get("/v1/alerts")
        self.assertEqual(
            (code, [alert["type"] for alert in body["alerts"]]),
            (200, ["enrollment_failed", "clone_suspected"]),
        )
        self.assertEqual(body["alerts"][1]["locations"], ["10.9.0.4", "10.2.3.17"])
        code, body = self.get("/v1/alerts", since=repr(NOW + 2))
        self.assertEqual(
            [alert["type"] for alert in body["alerts"]], ["clone_suspected"]
        )

    def test_audit(self):
        """
        C{GET /v1/audit} lists every record with its time, event, user,
        source, reason, locations and hash.
        """
        code, body = self.get("/v1/audit", since=repr(NOW + 4))
        stored = self.store.audit_events()[-1]
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "events": [
                        {
                            "time": "2023-11-14T22:13:24Z",
                            "event": "rotation_failed",
                            "user": "alice",
                            "source": "10.2.3.17",
                            "reason": "no ack",
                            "locations": [],
                            "hash": stored.hash.hex(),
                        }
                    ],
                    "page": 1,
                    "more": False,
                },
            ),
        )

    def test_pages(self):
        """
        C{/v1/alerts} and C{/v1/audit} answer a page of the newest
        records, saying whether an older page holds more; C{page} counts
        back from the newest, each page oldest first; a page past the
        last is empty.
        """
        self.store = MemoryStore()
        self.audit = AuditLog(self.store, [])
        self.site = admin_site(None, 2020, dict, list, audit=self.audit)
        for n in range(LISTING_PAGE + 5):
            self.store.append_audit(AuditEvent(NOW + n, "blacklisted", "bob", None, f"#{n}"))
            self.store.append_audit(AuditEvent(NOW + n, "enrolled", "bob", None, f"#{n}"))
        for path, name, field in [
            ("/v1/alerts", "alerts", "reason"),
            ("/v1/audit", "events", "reason"),
        ]:
            code, first = self.get(path)
            self.assertEqual((code, first["page"], first["more"]), (200, 1, True))
            self.assertEqual(len(first[name]), LISTING_PAGE)
            self.assertEqual(first[name][-1][field], f"#{LISTING_PAGE + 4}")
            code, second = self.get(path, page="2")
            self.assertEqual((second["page"], second["more"]), (2, path == "/v1/audit"))
            self.assertEqual(
                len(second[name]), LISTING_PAGE if path == "/v1/audit" else 5
            )
            code, beyond = self.get(path, page="99")
            self.assertEqual((code, beyond[name], beyond["more"]), (200, [], False))
        _, alerts = self.get("/v1/alerts", page="2")
        self.assertEqual(
            [alert["reason"] for alert in alerts["alerts"]], [f"#{n}" for n in range(5)]
        )

    def test_bad_page(self):
        """
        A C{page} that is not a number from 1 to C{MOST_PAGES} is a 400.
        """
        for path in ["/v1/alerts", "/v1/audit"]:
            for page in ["0", "-1", "1.5", "x", "\u00b2", str(MOST_PAGES + 1), "9" * 400]:
                code, body = self.get(path, page=page)
                self.assertEqual(
                    (path, page, code, body),
                    (
                        path,
                        page,
                        400,
                        {"error": f"'page' must be a number from 1 to {MOST_PAGES}"},
                    ),
                )

    def test_bad_since(self):
        """
        A C{since} that is not a POSIX time is a 400.
        """
        for path in ["/v1/alerts", "/v1/audit"]:
            for since in ["yesterday", "nan", "-1", "inf", "1e300"]:
                code, body = self.get(path, since=since)
                self.assertEqual(
                    (path, since, code, body),
                    (path, since, 400, {"error": "'since' must be a POSIX time"}),
                )

    def test_verify(self):
        """
        C{GET /v1/audit/verify} says whether the chain is intact, with the
        problems when it is not.
        """
        self.assertEqual(
            self.get("/v1/audit/verify"), (200, {"intact": True, "problems": []})
        )
        audit = self.store._tables.audit
        del audit[1]
        code, body = self.get("/v1/audit/verify")
        self.assertEqual(
            (code, body["intact"], len(body["problems"])), (200, False, 1)
        )

    def test_without_audit(self):
        """
        A site built without an audit log serves no audit resources.
        """
        site = admin_site(None, 2020, dict, list)
        request = DummyRequest([b"alerts"])
        child = site.resource.getChildWithDefault(b"v1", request)
        self.assertNotIn(b"alerts", child.children)
        self.assertNotIn(b"audit", child.children)


class AdminCommandTests(AdminCommandMixin, TestCase):
    """
    C{suto-admin alerts}, C{suto-admin audit} and C{suto-admin audit
    verify} against an admin API on a real UNIX socket over a SQLite
    store.
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.data = socket_folder(self, "suto-audit-")
        self.path = os.path.join(self.data, "suto.db")
        self.store = SQLiteStore.open(self.path)
        self.addCleanup(self.store.close)
        _append_all(self.store)
        site = admin_site(None, 2020, dict, list, audit=AuditLog(self.store, []))
        yield self.listen_admin(site)

    @defer.inlineCallbacks
    def test_alerts(self):
        """
        C{suto-admin alerts} prints one line per alert: time, type,
        profile, source, locations, reason; C{--since} takes an ISO time.
        """
        result = yield self.run_admin("alerts")
        self.assertEqual(
            result,
            (
                0,
                "TIME\tTYPE\tPROFILE\tSOURCE\tLOCATIONS\tREASON\n"
                "2023-11-14T22:13:21Z\tenrollment_failed\tbob\t10.0.0.9\t-\t"
                "no_window\n"
                "2023-11-14T22:13:23Z\tclone_suspected\talice\t10.9.0.4\t"
                "10.9.0.4, 10.2.3.17\tsuperseded key\n",
                "",
            ),
        )
        code, out, _ = yield self.run_admin(
            "alerts", "--since", "2023-11-14T22:13:22Z"
        )
        self.assertEqual((code, out.count("\n")), (0, 2))
        self.assertIn("clone_suspected", out)

    @defer.inlineCallbacks
    def test_audit_since_duration(self):
        """
        C{suto-admin audit --since 1h} lists only the records of the last
        hour.
        """
        self.store.append_audit(
            AuditEvent(time.time(), "enrolled", "carol", "10.2.3.19", "key id 01")
        )
        code, out, err = yield self.run_admin("audit", "--since", "1h")
        self.assertEqual((code, err), (0, ""))
        [_, line] = out.splitlines()
        self.assertEqual(
            line.split("\t")[1:], ["enrolled", "carol", "10.2.3.19", "-", "key id 01"]
        )
        code, out, _ = yield self.run_admin("audit")
        self.assertEqual((code, len(out.splitlines())), (0, len(EVENTS) + 2))

    @defer.inlineCallbacks
    def test_verify(self):
        """
        C{suto-admin audit verify} exits 0 on an intact log; after a record
        is removed from the file it exits 1 and prints the problems.
        """
        result = yield self.run_admin("audit", "verify")
        self.assertEqual(result, (0, f"{_COUNTED}the audit log is intact\n", ""))
        connection = sqlite3.connect(self.path)
        with connection:
            connection.execute("DELETE FROM audit WHERE id = 2")
        connection.close()
        code, out, err = yield self.run_admin("audit", "verify")
        self.assertEqual(
            (code, out, err),
            (
                1,
                "4 record(s), the last at 2023-11-14T22:13:24Z\n"
                "record 2 does not follow record 1: a record between them was "
                "removed, or the one before rewritten\n"
                "the record of id 2 was removed\n",
                "suto-admin: the audit log is broken: 2 problem(s)\n",
            ),
        )

    @defer.inlineCallbacks
    def test_verify_file(self):
        """
        C{suto-admin audit verify --file} checks a copy of the database
        without a daemon and without changing the copy: intact, it exits
        0; with a record edited, 1 with the problem; a file that is not
        there, 1 with one line.
        """
        copy = os.path.join(self.data, "copy.db")
        source = sqlite3.connect(self.path)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        target.execute("PRAGMA journal_mode = DELETE")
        target.close()
        result = yield self.run_admin("audit", "verify", "--file", copy)
        self.assertEqual(result, (0, f"{_COUNTED}the audit log is intact\n", ""))
        connection = sqlite3.connect(copy)
        with connection:
            connection.execute("UPDATE audit SET reason = 'all fine' WHERE id = 3")
        connection.close()
        with open(copy, "rb") as handle:
            before = handle.read()
        code, out, err = yield self.run_admin("audit", "verify", "--file", copy)
        self.assertEqual(
            (code, out, err),
            (
                1,
                f"{_COUNTED}record 3 was edited: its hash does not match it\n",
                "suto-admin: the audit log is broken: 1 problem(s)\n",
            ),
        )
        with open(copy, "rb") as handle:
            self.assertEqual(handle.read(), before)
        self.assertFalse(os.path.exists(copy + "-wal"))
        absent = os.path.join(self.data, "absent.db")
        result = yield self.run_admin("audit", "verify", "--file", absent)
        self.assertEqual(result, (1, "", f"suto-admin: no database at {absent}\n"))
