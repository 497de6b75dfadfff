"""
The port-tracking registry as operators see it: L{SutoServer}'s wiring of
tracking, its C{clients} and C{history} reports, the admin API's
C{/v1/clients} and C{/v1/history} resources (driven with DummyRequest),
and C{suto-admin clients} / C{suto-admin history} against a real admin
socket.
"""

import ipaddress
import json
from dataclasses import replace

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.test.requesthelper import DummyRequest

from suto_server import tap
from suto_server.admin.api import admin_site
from suto_server.audit.paging import LISTING_PAGE
from suto_server.core.timestamps import iso_utc
from suto_server.locations import Location, Locations
from suto_server.net.checks import CheckService
from suto_server.service import SutoServer
from suto_server.settings import ENROLLMENT_OFF, EnrollmentSettings, Network
from suto_server.store.memory import MemoryStore
from suto_server.store.records import AuditEvent
from tests.support.admin import AdminCommandMixin, answer, render
from tests.support.coroutines import result_of
from tests.support.folders import socket_folder
from tests.support.masterkey import new_master_key
from tests.support.store_suite.values import PROFILE, WINDOW
from tests.support.udp import MemoryUDPReactor

NOW = 1_700_000_000.0
OLD = PROFILE.location
NEW = "10.9.0.4"
LOCATIONS = Locations(
    {"lab-east": Location((ipaddress.ip_network("10.2.3.0/24"),), "lab-east")}
)


def make_server(test, store=None):
    """
    A server that rotates keys, on a memory reactor (kept as
    C{test.reactor}) at L{NOW} plus 90 s, with alice enrolled at L{OLD} and
    live there, and bob enrolled at L{NEW} and moved to L{OLD} since.
    """
    clock = test.reactor = MemoryUDPReactor()
    clock.advance(NOW + 90)
    store = store or MemoryStore()
    server = SutoServer(
        clock,
        store=store,
        enrollment=EnrollmentSettings(new_master_key(test)),
        network=Network(
            hello_port=3030,
            hello_interface="127.0.0.1",
            check_timeout=1.5,
            locations=LOCATIONS,
        ),
    )
    store.open_window(WINDOW)
    store.complete_enrollment(replace(PROFILE, enrolled_at=NOW, last_seen=NOW))
    store.open_window(replace(WINDOW, username="bob"))
    store.complete_enrollment(
        replace(
            PROFILE,
            username="bob",
            enrolled_at=NOW,
            last_seen=NOW,
            location=NEW,
            last_address=NEW,
        )
    )
    store.record_move("bob", NOW + 30, NEW, OLD, None, "lab-east")
    server.audit.record(
        NOW + 30, "location_changed", "bob", OLD, "moved", (NEW, f"{OLD} (lab-east)")
    )
    server.audit.record(NOW + 40, "enrolled", "bob", OLD, "not an alert")
    server.live.attach("alice", OLD, NOW + 60, "connection")
    return server


def registry_site(server):
    """
    An admin site serving only C{server}'s registry (and the resources
    every site has).
    """
    return admin_site(
        None, 2020, dict, list, clients=server.clients, history=server.history
    )


class WiringTests(SynchronousTestCase):
    """
    L{SutoServer} builds the check service, the live sessions and the
    tracking rules, and reports the registry.
    """

    def setUp(self):
        self.server = make_server(self)

    def test_tracking(self):
        """
        The server's tracking sends its checks from the hello interface to
        the hello port at the profile's old address, waits the configured
        timeout, then moves the profile and makes the newcomer live; the
        check service is a child of the server.
        """
        reactor = self.reactor
        self.server.live.detach("alice", "connection")
        decisions = []
        defer.Deferred.fromCoroutine(
            self.server.tracking.admit(
                self.server.store.get_profile("alice"),
                bytes(32),
                NEW,
                "newcomer",
                reactor.seconds(),
                proven=True,
            )
        ).addCallback(decisions.append)
        [(port, protocol)] = reactor.udp
        [(_, destination)] = protocol.transport.written
        self.assertEqual((port.address.host, destination), ("127.0.0.1", (OLD, 3030)))
        reactor.advance(1.4)
        self.assertEqual(decisions, [])
        reactor.advance(0.1)
        self.assertEqual(decisions, [True])
        self.assertEqual(self.server.store.get_profile("alice").last_address, NEW)
        self.assertEqual(self.server.live.get("alice").connection, "newcomer")
        self.assertEqual(
            len([s for s in self.server if isinstance(s, CheckService)]), 1
        )

    def test_no_tracking_without_rotation(self):
        """
        A server that does not rotate keys (no master key) tracks nothing
        and has no check service.
        """
        server = SutoServer(
            MemoryReactorClock(), store=MemoryStore(), enrollment=ENROLLMENT_OFF
        )
        self.assertIsNone(server.tracking)
        self.assertEqual([s for s in server if isinstance(s, CheckService)], [])

    def test_status_connected(self):
        """
        C{status()} counts the live rotation connections as C{connected}.
        """
        self.assertEqual(result_of(self, self.server.status())["connected"], 1)
        self.server.live.detach("alice", "connection")
        self.assertEqual(result_of(self, self.server.status())["connected"], 0)

    def test_clients(self):
        """
        C{clients()} has one row per profile: address, location name,
        state (connected, disconnected, or offline since the time it was
        marked), last sighting, last rotation, key id and key age; and no
        key material.
        """
        rows = {row["user"]: row for row in result_of(self, self.server.clients())}
        self.assertEqual(
            rows["alice"],
            {
                "user": "alice",
                "address": OLD,
                "location": "lab-east",
                "state": "connected",
                "offline_since": None,
                "last_seen": "2023-11-14T22:13:20Z",
                "last_rotation": None,
                "key_id": PROFILE.key_id,
                "generation": 0,
                "key_age": 90.0,
            },
        )
        self.assertEqual(
            (rows["bob"]["address"], rows["bob"]["state"], rows["bob"]["last_seen"]),
            (OLD, "disconnected", "2023-11-14T22:13:50Z"),
        )
        self.server.store.mark_offline(["bob"], 1700000100.0)
        [bob] = [row for row in result_of(self, self.server.clients()) if row["user"] == "bob"]
        self.assertEqual(
            (bob["state"], bob["offline_since"]), ("offline", "2023-11-14T22:15:00Z")
        )
        text = json.dumps(rows)
        self.assertNotIn(PROFILE.key_sealed.hex(), text)
        self.assertNotIn(PROFILE.fingerprint_hash.hex(), text)

    def test_client(self):
        """
        C{client(user)} is that profile's row of C{clients()}, offline mark
        included, and L{None} for a user with no profile.
        """
        self.server.store.mark_offline(["bob"], 1700000100.0)
        rows = {row["user"]: row for row in result_of(self, self.server.clients())}
        for user in ("alice", "bob"):
            self.assertEqual(result_of(self, self.server.client(user)), rows[user])
        self.assertEqual(rows["bob"]["state"], "offline")
        self.assertIsNone(result_of(self, self.server.client("nobody")))

    def test_history(self):
        """
        C{history(user)} has the profile's moves and its alerts only;
        nothing for a user the store knows nothing of.
        """
        report = result_of(self, self.server.history("bob"))
        self.assertEqual(
            report["moves"],
            [
                {
                    "time": "2023-11-14T22:13:50Z",
                    "from": NEW,
                    "from_location": None,
                    "to": OLD,
                    "to_location": "lab-east",
                }
            ],
        )
        self.assertEqual(
            [alert["type"] for alert in report["alerts"]], ["location_changed"]
        )
        self.assertEqual(
            report["alerts"][0]["locations"], [NEW, f"{OLD} (lab-east)"]
        )
        self.assertEqual(result_of(self, self.server.history("alice"))["moves"], [])
        self.assertIsNone(result_of(self, self.server.history("carol")))

    def test_history_paged(self):
        """
        C{history(user, page)} reads a page of the profile's alerts, the
        newest by default, oldest first, and says whether an older page
        holds more; its other records and other profiles' alerts take no
        room on a page.  Its one move is on the first page only.
        """
        for n in range(LISTING_PAGE + 1):
            self.server.store.append_audit(
                AuditEvent(NOW + 100 + n, "reconnect_failed", "bob", NEW, f"#{n}")
            )
            self.server.store.append_audit(
                AuditEvent(NOW + 100 + n, "reconnected", "bob", NEW, "fine")
            )
            self.server.store.append_audit(
                AuditEvent(NOW + 100 + n, "reconnect_failed", "alice", NEW, "x")
            )
        first = result_of(self, self.server.history("bob"))
        self.assertEqual((first["page"], first["more"]), (1, True))
        self.assertEqual(
            [alert["reason"] for alert in first["alerts"]],
            [f"#{n}" for n in range(1, LISTING_PAGE + 1)],
        )
        second = result_of(self, self.server.history("bob", 2))
        self.assertEqual((second["page"], second["more"]), (2, False))
        self.assertEqual(
            [alert["reason"] for alert in second["alerts"]], ["moved", "#0"]
        )
        self.assertEqual((len(first["moves"]), second["moves"]), (1, []))

    def test_history_moves_paged(self):
        """
        C{history(user, page)} reads a page of the profile's moves too, the
        newest first page by default, oldest first, and says whether an
        older page holds more: a profile that moved all day is never read
        whole.
        """
        places = [OLD, NEW]
        for n in range(LISTING_PAGE):
            old, new = places[n % 2], places[(n + 1) % 2]
            self.assertTrue(
                self.server.store.record_move(
                    "bob", NOW + 100 + n, old, new, None, None, seen=old
                )
            )
        first = result_of(self, self.server.history("bob"))
        self.assertEqual((first["page"], first["more"]), (1, True))
        self.assertEqual(
            [move["time"] for move in first["moves"]],
            [iso_utc(NOW + 100 + n) for n in range(LISTING_PAGE)],
        )
        second = result_of(self, self.server.history("bob", 2))
        self.assertEqual((second["page"], second["more"]), (2, False))
        self.assertEqual(
            [(move["from"], move["to"]) for move in second["moves"]], [(NEW, OLD)]
        )

    def test_check_timeout_option(self):
        """
        C{--check-timeout} defaults to 3 seconds and must be positive.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["check-timeout"], 3.0)
        options.parseOptions(["--check-timeout", "0.5"])
        self.assertEqual(options["check-timeout"], 0.5)
        self.assertRaises(
            usage.UsageError, tap.Options().parseOptions, ["--check-timeout", "0"]
        )


class RegistryResourcesTests(SynchronousTestCase):
    """
    C{GET /v1/clients} and C{GET /v1/history?user=U}.
    """

    def setUp(self):
        self.server = make_server(self)
        self.site = registry_site(self.server)

    def get(self, path, args=None):
        request = render(self.site, b"GET", path, args=args)
        return request.responseCode, answer(request)

    def test_clients(self):
        """
        C{/v1/clients} answers the server's rows.
        """
        self.assertEqual(
            self.get("/v1/clients"), (200, {"clients": result_of(self, self.server.clients())})
        )

    def test_clients_takes_no_arguments(self):
        """
        C{/v1/clients} refuses any query argument with 400.
        """
        code, body = self.get("/v1/clients", {b"user": [b"alice"]})
        self.assertEqual(code, 400)
        self.assertIn("error", body)

    def test_history(self):
        """
        C{/v1/history?user=bob} answers bob's history.
        """
        self.assertEqual(
            self.get("/v1/history", {b"user": [b"bob"]}),
            (200, result_of(self, self.server.history("bob"))),
        )

    def test_history_page(self):
        """
        C{/v1/history?user=bob&page=2} answers that page of bob's alerts;
        a page that is no number is a 400.
        """
        self.assertEqual(
            self.get("/v1/history", {b"user": [b"bob"], b"page": [b"2"]}),
            (200, result_of(self, self.server.history("bob", 2))),
        )
        code, body = self.get("/v1/history", {b"user": [b"bob"], b"page": [b"0"]})
        self.assertEqual(code, 400)
        self.assertIn("'page'", body["error"])

    def test_history_unknown(self):
        """
        A user the store knows nothing of is a 404.
        """
        code, body = self.get("/v1/history", {b"user": [b"carol"]})
        self.assertEqual((code, body), (404, {"error": "nothing is known of carol"}))

    def test_history_bad_requests(self):
        """
        A missing, repeated, invalid or non-ASCII user, or another
        argument, is a 400 with an explanation.
        """
        for args in (
            {},
            {b"user": []},
            {b"user": [b"alice", b"bob"]},
            {b"user": [b"-rf"]},
            {b"user": [b"al ice"]},
            {b"user": [b""]},
            {b"user": ["élise".encode()]},
            {b"user": [b"alice"], b"since": [b"1"]},
        ):
            code, body = self.get("/v1/history", args)
            self.assertEqual(code, 400, args)
            self.assertIn("error", body)

    def test_without_registry(self):
        """
        A site built without the registry serves neither resource.
        """
        site = admin_site(None, 2020, dict, list)
        request = DummyRequest([b"v1"])
        child = site.resource.getChildWithDefault(b"v1", request)
        self.assertNotIn(b"clients", child.children)
        self.assertNotIn(b"history", child.children)


class RegistryCommandTests(AdminCommandMixin, TestCase):
    """
    C{suto-admin clients} and C{suto-admin history} against an admin API
    on a real UNIX socket.
    """

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.data = socket_folder(self, "suto-reg-")
        self.server = make_server(self)
        site = registry_site(self.server)
        yield self.listen_admin(site)

    @defer.inlineCallbacks
    def test_clients(self):
        """
        C{suto-admin clients} prints one line per profile: user, location,
        state (an offline one with the time it was marked), last rotation,
        key id with its age.
        """
        self.server.store.mark_offline(["bob"], 1700000100.0)
        result = yield self.run_admin("clients")
        key_id = PROFILE.key_id
        self.assertEqual(
            result,
            (
                0,
                "USER\tLOCATION\tSTATE\tLAST_ROTATION\tKEY\n"
                f"alice\tlab-east ({OLD})\tconnected\t-\t{key_id} (1m old)\n"
                f"bob\tlab-east ({OLD})\toffline since 2023-11-14T22:15:00Z\t-\t"
                f"{key_id} (1m old)\n",
                "",
            ),
        )

    @defer.inlineCallbacks
    def test_clients_json(self):
        """
        C{suto-admin clients --json} prints the same rows as JSON.
        """
        code, out, err = yield self.run_admin("clients", "--json")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(json.loads(out), result_of(self, self.server.clients()))

    @defer.inlineCallbacks
    def test_history(self):
        """
        C{suto-admin history USER} prints its moves and alerts by time.
        """
        result = yield self.run_admin("history", "bob")
        self.assertEqual(
            result,
            (
                0,
                "TIME\tEVENT\tSOURCE\tLOCATIONS\tREASON\n"
                f"2023-11-14T22:13:50Z\tmoved\t{NEW} -> lab-east ({OLD})\n"
                f"2023-11-14T22:13:50Z\tlocation_changed\t{OLD}\t"
                f"{NEW}, {OLD} (lab-east)\tmoved\n",
                "",
            ),
        )

    @defer.inlineCallbacks
    def test_history_json(self):
        """
        C{suto-admin history USER --json} prints the report as JSON.
        """
        code, out, _ = yield self.run_admin("history", "bob", "--json")
        self.assertEqual((code, json.loads(out)), (0, result_of(self, self.server.history("bob"))))

    @defer.inlineCallbacks
    def test_history_unknown(self):
        """
        For a user the server knows nothing of, C{history} says so and
        exits 1.
        """
        code, out, err = yield self.run_admin("history", "carol")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("nothing is known of carol", err)
