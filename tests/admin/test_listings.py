# -*- test-case-name: tests.admin.test_listings -*-
"""
Every listing of C{suto-admin} (C{user list}, C{windows}, C{blacklist},
C{alerts}, C{audit}, C{clients}, C{history}, C{status}): with C{--json},
one JSON document with the admin API's keys, RFC 3339 times and
C{host:port} addresses; as text, a header row naming the columns first.
The daemon's answers come from the admin API's own resources, rendered
in this thread (L{site_call}).
"""

import json
import os

from twisted.internet.defer import succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import client, reports
from suto_server.admin.api import admin_site
from suto_server.audit.log import AuditLog
from suto_server.core.version import VERSION
from suto_server.settings import Listeners
from suto_server.store.memory import MemoryStore
from suto_server.store.records import AuditEvent
from tests.support.admin import FakeAuthenticator, run_admin
from tests.support.admin_calls import site_call
from tests.support.server import make_server

#: 2023-11-14T22:13:20Z.
NOW = 1_700_000_000.0

#: An RFC 3339 UTC time to the second, as every listing shows times.
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class FakeDesk:
    """
    The enrollment windows, as L{suto_server.rules.windows.WindowDesk}
    lists them.
    """

    def list(self):
        return [
            {
                "user": "alice",
                "location": "lab-east (10.2.3.0/24)",
                "seconds_left": 90.4,
                "attempts": 1,
                "max_attempts": 5,
                "replace": True,
            }
        ]


class FakeReconnection:
    """
    The blacklist, as L{suto_server.rules.reconnection.Reconnection}
    reports it.
    """

    def blacklist_report(self):
        return [
            {
                "user": "bob",
                "time": "2023-11-14T22:13:20Z",
                "reason": "an old key came back",
                "source": "10.9.0.4",
                "alert": "reconnect_failed",
            }
        ]


CLIENTS = [
    {
        "user": "alice",
        "address": "10.2.3.17",
        "location": "lab-east",
        "state": "offline",
        "offline_since": "2023-11-14T22:15:00Z",
        "last_seen": "2023-11-14T22:13:20Z",
        "last_rotation": None,
        "key_id": "00112233",
        "generation": 1,
        "key_age": 3600.0,
    }
]

HISTORY = {
    "user": "alice",
    "moves": [
        {
            "time": "2023-11-14T22:13:50Z",
            "from": "10.2.3.17",
            "from_location": "lab-east",
            "to": "10.9.0.4",
            "to_location": None,
        }
    ],
    "alerts": [],
    "page": 1,
    "more": False,
}


class ListingTests(SynchronousTestCase):
    """
    The listings that ask the daemon, against a daemon's admin site.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        store = MemoryStore()
        store.append_audit(AuditEvent(NOW, "user_added", "dora", None, "by root"))
        moved = AuditEvent(NOW + 1, "location_changed", "dora", "10.9.0.4", "moved")
        store.append_audit(moved)
        reactor = MemoryReactorClock()
        self.server = make_server(
            reactor, listeners=Listeners(metrics=TCP4ServerEndpoint(reactor, 9464))
        )
        self.server.privilegedStartService()
        site = admin_site(
            FakeAuthenticator(),
            2020,
            self.server.status,
            list,
            desk=FakeDesk(),
            audit=AuditLog(store, []),
            reconnection=FakeReconnection(),
            clients=lambda: succeed(CLIENTS),
            history=lambda user, page: succeed(HISTORY if user == "alice" else None),
        )
        call = site_call(site)
        self.patch(client, "call", call)
        self.patch(reports, "call", call)

    def admin(self, *argv):
        code, out, err = run_admin("--data", self.data, *argv)
        self.assertEqual((code, err), (0, ""))
        return out

    def listing(self, argv, keys):
        """
        C{argv} with C{--json} prints one JSON list of objects with exactly
        C{keys}, and no POSIX time (a float named for a time).

        @return: that list.
        """
        records = json.loads(self.admin(*argv, "--json"))
        self.assertIsInstance(records, list)
        self.assertTrue(records)
        for record in records:
            self.assertEqual(set(record), set(keys))
            self.assertEqual(
                [v for v in record.values() if isinstance(v, float) and v > NOW / 2],
                [],
            )
        return records

    def assert_header(self, argv, header, rows=1):
        """
        The text of C{argv} is the row C{header}, then C{rows} rows.
        """
        lines = self.admin(*argv).splitlines()
        self.assertEqual((lines[0], len(lines) - 1), (header, rows))

    def test_windows(self):
        """
        C{windows --json} lists the windows with the API's keys.
        """
        [window] = self.listing(
            ("windows",),
            ("user", "location", "seconds_left", "attempts", "max_attempts", "replace"),
        )
        self.assertEqual(window, FakeDesk().list()[0])
        self.assert_header(
            ("windows",), "USER\tLOCATION\tTIME_LEFT\tATTEMPTS\tREPLACE"
        )

    def test_blacklist(self):
        """
        C{blacklist --json} lists the entries with RFC 3339 times.
        """
        [entry] = self.listing(
            ("blacklist",), ("user", "time", "reason", "source", "alert")
        )
        self.assertRegex(entry["time"], RFC3339)
        self.assert_header(("blacklist",), "USER\tTIME\tALERT\tSOURCE\tREASON")

    def test_alerts(self):
        """
        C{alerts --json} lists the alerts with RFC 3339 times and no POSIX
        C{timestamp}.
        """
        [alert] = self.listing(
            ("alerts",),
            ("type", "time", "profile", "source", "locations", "reason", "count"),
        )
        self.assertEqual(
            (alert["type"], alert["time"]), ("location_changed", "2023-11-14T22:13:21Z")
        )
        self.assert_header(
            ("alerts",), "TIME\tTYPE\tPROFILE\tSOURCE\tLOCATIONS\tREASON"
        )

    def test_audit(self):
        """
        C{audit --json} lists the records with RFC 3339 times and their
        hashes; C{--since} still applies.
        """
        events = self.listing(
            ("audit",),
            ("time", "event", "user", "source", "reason", "locations", "hash"),
        )
        self.assertEqual(
            [e["event"] for e in events], ["user_added", "location_changed"]
        )
        for event in events:
            self.assertRegex(event["time"], RFC3339)
        since = json.loads(
            self.admin("audit", "--since", "2023-11-14T22:13:21Z", "--json")
        )
        self.assertEqual([e["event"] for e in since], ["location_changed"])
        self.assert_header(
            ("audit",), "TIME\tEVENT\tUSER\tSOURCE\tLOCATIONS\tREASON", rows=2
        )

    def test_clients(self):
        """
        C{clients} prints its header row before the profiles.
        """
        self.assertEqual(self.listing(("clients",), CLIENTS[0]), CLIENTS)
        self.assert_header(("clients",), "USER\tLOCATION\tSTATE\tLAST_ROTATION\tKEY")

    def test_history(self):
        """
        C{history USER} prints its header row before the moves and
        alerts; C{--json} is the report as one object.
        """
        self.assertEqual(json.loads(self.admin("history", "alice", "--json")), HISTORY)
        self.assert_header(
            ("history", "alice"), "TIME\tEVENT\tSOURCE\tLOCATIONS\tREASON"
        )

    def test_status(self):
        """
        C{status --json} prints the status as one object: listeners as
        C{host:port}, the version, and no repr anywhere.
        """
        out = self.admin("status", "--json")
        status = json.loads(out)
        self.assertIsInstance(status, dict)
        self.assertEqual(
            status["listeners"], [{"name": "metrics", "address": "0.0.0.0:9464"}]
        )
        self.assertEqual(status["version"], VERSION)
        self.assertNotIn("Address(", out)
        text = self.admin("status")
        self.assertIn(f"version: {VERSION}\n", text)
        self.assertIn("listening: metrics on 0.0.0.0:9464\n", text)


class UserListTests(SynchronousTestCase):
    """
    C{user list}, which reads the store itself.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        self.assertEqual(run_admin("--data", self.data, "init")[0], 0)
        for user in ("dora", "fred"):
            code, _, err = run_admin(
                "--data", self.data, "user", "add", user, "--password-stdin",
                "--rounds", "1000", stdin="pw\n",
            )
            self.assertEqual((code, err), (0, ""))

    def test_json(self):
        """
        C{user list --json} lists the accounts: name, scheme, RFC 3339
        creation time, and why a hash is unusable (L{None} here).
        """
        code, out, err = run_admin("--data", self.data, "user", "list", "--json")
        self.assertEqual((code, err), (0, ""))
        accounts = json.loads(out)
        self.assertEqual(
            [(a["user"], a["scheme"], a["unusable"]) for a in accounts],
            [("dora", "sha512_crypt", None), ("fred", "sha512_crypt", None)],
        )
        for account in accounts:
            self.assertEqual(set(account), {"user", "scheme", "created", "unusable"})
            self.assertRegex(account["created"], RFC3339)

    def test_header(self):
        """
        The text starts with its header row, then one row per account.
        """
        code, out, _ = run_admin("--data", self.data, "user", "list")
        self.assertEqual(
            (code, out.splitlines()[0], len(out.splitlines())),
            (0, "USER\tSCHEME\tCREATED\tUNUSABLE", 3),
        )
