"""
Which addresses the server waits to hear from: profiles' registered
locations, read from the store and followed through the audit log, and
the targets of pending classic requests.
"""

from dataclasses import replace

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.rules.expected import ExpectedSources, KnownLocations
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.memory import MemoryStore
from suto_server.store.records import LOCATIONS_PAGE, AuditEvent
from tests.support.store_suite.values import PROFILE, WINDOW


def _event(event, user, source):
    return AuditEvent(0.0, event, user, source, "reason", ())


class KnownLocationsTests(SynchronousTestCase):
    def test_of_store(self):
        """
        The locations start as the last addresses of the store's profiles;
        a store that keeps no profiles gives none.
        """
        store = MemoryStore()
        store.open_window(WINDOW)
        store.complete_enrollment(PROFILE)
        known = KnownLocations.of(store)
        self.assertIn(PROFILE.location, known)
        self.assertIn("::ffff:" + PROFILE.location, known)
        self.assertNotIn("10.2.3.18", known)
        self.assertNotIn(PROFILE.location, KnownLocations.of(object()))

    def test_of_store_in_pages(self):
        """
        The locations are read a page at a time, through the store's
        C{locations} and never its whole profiles: every profile of a
        store holding more than one page is known, the last page's too,
        at its last address.
        """
        store = MemoryStore()
        count = LOCATIONS_PAGE + 1
        for index in range(count):
            name = f"user{index:05d}"
            store.open_window(replace(WINDOW, username=name))
            address = f"10.9.{index // 250}.{index % 250}"
            store.complete_enrollment(
                replace(PROFILE, username=name, last_address=address)
            )
        # Reading the profiles whole would fail.
        store.list_profiles = None
        known = KnownLocations.of(store)
        for index in (0, LOCATIONS_PAGE - 1, LOCATIONS_PAGE):
            self.assertIn(f"10.9.{index // 250}.{index % 250}", known)
            self.assertTrue(
                known.registered_at(
                    f"user{index:05d}", f"10.9.{index // 250}.{index % 250}"
                )
            )
        self.assertNotIn(PROFILE.location, known)

    def test_packed_addresses(self):
        """
        An IPv4 address and the IPv6 address of the same 4 bytes' value
        are different places, and an IPv6 location matches any host of its
        /64.
        """
        known = KnownLocations([("alice", "::a02:311"), ("bob", "2001:db8::1%eth0")])
        self.assertNotIn("10.2.3.17", known)
        self.assertIn("::a02:311", known)
        self.assertIn("2001:db8::1", known)
        self.assertTrue(known.registered_at("bob", "2001:db8::99"))
        self.assertFalse(known.registered_at("bob", "2001:db8:0:1::1"))
        self.assertFalse(known.registered_at("alice", "10.2.3.17"))

    def test_follows_enrollments_and_moves(self):
        """
        An enrollment adds its source; a move replaces the profile's old
        address by its new one; other events change nothing.
        """
        known = KnownLocations()
        known.audited(_event("enrolled", "alice", "192.0.2.1"))
        self.assertIn("192.0.2.1", known)
        known.audited(_event("location_changed", "alice", "192.0.2.2"))
        self.assertNotIn("192.0.2.1", known)
        self.assertIn("192.0.2.2", known)
        known.audited(_event("clone_suspected", "alice", "192.0.2.3"))
        known.audited(_event("enrolled", None, "192.0.2.4"))
        self.assertNotIn("192.0.2.3", known)
        self.assertNotIn("192.0.2.4", known)

    def test_shared_address(self):
        """
        An address two profiles share stays known until both have left.
        """
        known = KnownLocations([("alice", "192.0.2.1"), ("bob", "192.0.2.1")])
        known.moved("alice", "192.0.2.2")
        self.assertIn("192.0.2.1", known)
        known.moved("bob", "192.0.2.2")
        self.assertNotIn("192.0.2.1", known)
        known.moved("bob", "192.0.2.2")
        known.moved("alice", "192.0.2.3")
        self.assertIn("192.0.2.2", known)

    def test_not_addresses_ignored(self):
        """
        A location that is not an IP address (none should be) is ignored,
        and asking about one is answered no.
        """
        known = KnownLocations([("alice", "somewhere")])
        self.assertNotIn("somewhere", known)
        self.assertNotIn("/run/suto/admin.sock", known)


class ExpectedSourcesTests(SynchronousTestCase):
    def setUp(self):
        self.rendezvous = Rendezvous(task.Clock())
        self.expected = ExpectedSources(
            self.rendezvous, KnownLocations([("alice", "198.51.100.7")])
        )

    def test_either_kind(self):
        """
        A pending request's target and a profile's location are expected;
        other hosts, and peers that are no IP address, are not.
        """
        self.rendezvous.open("bob", ["192.0.2.7"])
        self.assertTrue(self.expected.expects("192.0.2.7"))
        self.assertTrue(self.expected.expects("198.51.100.7"))
        self.assertFalse(self.expected.expects("203.0.113.1"))
        self.assertFalse(self.expected.expects(None))

    def test_audited(self):
        """
        The audit log's moves reach the known locations.
        """
        self.expected.audited(_event("location_changed", "alice", "198.51.100.8"))
        self.assertFalse(self.expected.expects("198.51.100.7"))
        self.assertTrue(self.expected.expects("198.51.100.8"))

    def test_of_store(self):
        """
        Built from a store, it knows where the store's profiles were last
        seen, not where they enrolled.
        """
        store = MemoryStore()
        store.open_window(WINDOW)
        store.complete_enrollment(replace(PROFILE, last_address="10.2.3.20"))
        expected = ExpectedSources.of(self.rendezvous, store)
        self.assertTrue(expected.expects("10.2.3.20"))
        self.assertFalse(expected.expects(PROFILE.location))
