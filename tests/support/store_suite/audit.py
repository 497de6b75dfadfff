"""
The shared suite of L{IAuditStore}: the hash-chained audit log.
"""

from dataclasses import replace

from zope.interface.verify import verifyObject

from suto_server.store import chain
from suto_server.store.errors import StoreError
from suto_server.store.interfaces import IAuditStore
from suto_server.store.records import (
    MAX_LOCATIONS,
    MAX_NAME,
    MAX_REASON,
    AuditEvent,
)
from tests.support.store_suite.base import StoreTestsBase
from tests.support.store_suite.values import (
    AUDIT,
    PROFILE,
    WINDOW,
    not_refused,
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


class AuditStoreTestsMixin(StoreTestsBase):
    """
    Tests of L{IAuditStore} behaviour.
    """

    def test_provides_interface(self):
        """
        The store provides L{IAuditStore} completely.
        """
        self.assertTrue(verifyObject(IAuditStore, self.store))

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

    def test_audit_events_matching(self):
        """
        C{audit_events_matching} selects by user, type and time, newest
        first, a page at a time; C{count_audit_events} counts the same.
        """
        records = [
            (3, "alice", "enrolled"),
            (1, "bob", "enrolled"),
            (2, "alice", "unblocked"),
            (5, "alice", "enrolled"),
            (4, None, "enrolled"),
        ]
        for time, user, event in records:
            self.store.append_audit(
                replace(AUDIT, time=float(time), username=user, event=event)
            )

        def times(**filters):
            return [e.time for e in self.store.audit_events_matching(**filters)]

        self.assertEqual(times(), [5.0, 4.0, 3.0, 2.0, 1.0])
        self.assertEqual(times(username="alice"), [5.0, 3.0, 2.0])
        self.assertEqual(times(username="alice", event="enrolled"), [5.0, 3.0])
        self.assertEqual(times(since=2, until=4), [4.0, 3.0, 2.0])
        self.assertEqual(times(newest=2, skip=1), [4.0, 3.0])
        self.assertEqual(times(username="carol"), [])
        self.assertEqual(self.store.count_audit_events(), 5)
        self.assertEqual(self.store.count_audit_events(username="alice", since=3), 2)

    def test_audit_events_of_types(self):
        """
        C{types} selects the events of any of several types (the alerts),
        newest first and a page at a time, with the other filters; with
        C{event} only that type, if it is among them; C{count_audit_events}
        counts the same.
        """
        records = [
            (1, "alice", "clone_suspected"),
            (2, "alice", "enrolled"),
            (3, "bob", "blacklisted"),
            (4, "alice", "location_changed"),
            (5, None, "rate_limited"),
            (6, "alice", "unblocked"),
        ]
        for time, user, event in records:
            self.store.append_audit(
                replace(AUDIT, time=float(time), username=user, event=event)
            )
        alerts = {"clone_suspected", "blacklisted", "location_changed", "rate_limited"}

        def times(**filters):
            return [e.time for e in self.store.audit_events_matching(**filters)]

        self.assertEqual(times(types=alerts), [5.0, 4.0, 3.0, 1.0])
        self.assertEqual(times(types=sorted(alerts), newest=2, skip=1), [4.0, 3.0])
        self.assertEqual(times(types=alerts, username="alice"), [4.0, 1.0])
        self.assertEqual(times(types=alerts, since=2, until=4), [4.0, 3.0])
        self.assertEqual(times(types=alerts, event="blacklisted"), [3.0])
        self.assertEqual(times(types=alerts, event="enrolled"), [])
        self.assertEqual(times(types=("unblocked",)), [6.0])
        self.assertEqual(self.store.count_audit_events(types=alerts), 4)
        self.assertEqual(
            self.store.count_audit_events(types=alerts, username="alice"), 2
        )

    def test_audit_types_refused(self):
        """
        C{types} that is not a collection of 1 to C{MAX_AUDIT_TYPES} event
        types raises L{ValueError}, for a listing and a count alike.
        """
        for types in [
            "blacklisted", b"blacklisted", (), 3, {"blacklisted", 3},
            ["a\nb"], ["e" * (MAX_NAME + 1)], [f"t{n}" for n in range(65)],
        ]:
            self.assertRaises(
                ValueError, self.store.audit_events_matching, types=types
            )
            self.assertRaises(ValueError, self.store.count_audit_events, types=types)

    def test_audit_events_matching_refused(self):
        """
        Filters or pages out of bounds raise L{ValueError}.
        """
        matching = self.store.audit_events_matching
        for arguments in [
            {"newest": 0}, {"newest": True}, {"newest": 1.5}, {"skip": 1},
            {"newest": 1, "skip": -1}, {"username": ""}, {"username": "a\nb"},
            {"event": 3}, {"since": -1}, {"until": float("nan")},
        ]:
            self.assertRaises(ValueError, matching, **arguments)
        self.assertRaises(ValueError, self.store.count_audit_events, until="now")

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

    def test_bad_audit_events(self):
        """
        Appending an audit event with a field of the wrong type or out of
        bounds (or something that is not an event) raises L{ValueError}
        and appends nothing.
        """
        self.assertEqual(
            not_refused(ValueError, self.store.append_audit, BAD_AUDIT_EVENTS),
            [],
        )
        self.assert_unchanged([], [])

    def test_closed(self):
        """
        After C{close}, every audit method raises L{StoreError}.
        """
        store = self.make_store()
        store.open_window(WINDOW)
        store.close()
        calls = {
            "append_audit": lambda: store.append_audit(AUDIT),
            "audit_events": store.audit_events,
            "audit_events_matching": store.audit_events_matching,
            "count_audit_events": store.count_audit_events,
            "verify_audit": store.verify_audit,
        }
        self.assertEqual(
            not_refused(StoreError, lambda method: calls[method](), calls), []
        )
