"""
C{suto-admin alerts}, C{audit} and C{audit verify} with the daemon down
(L{suto_server.admin.reports}): they read the data folder's store
read-only and say so; and what C{audit verify} says of the records.  The
answers of a running daemon are in L{tests.audit.test_log}.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.paging import LISTING_PAGE
from suto_server.datafolder import DATABASE_FILE
from suto_server.store.open import open_store
from suto_server.store.records import AuditEvent
from tests.support.admin import run_admin
from tests.support.store_suite.values import HASH

NOW = 1_700_000_000.0


class DaemonDownTests(SynchronousTestCase):
    """
    With no daemon answering on the admin socket, the listings come from
    the store itself, opened read-only.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        code, _, err = run_admin("--data", self.data, "init")
        self.assertEqual((code, err), (0, ""))
        self.database = os.path.join(self.data, DATABASE_FILE)
        store = open_store(self.database)
        for event in (
            AuditEvent(NOW, "enrolled", "alice", "10.2.3.17", "key id 00"),
            AuditEvent(
                NOW + 1,
                "clone_suspected",
                "alice",
                "10.9.0.4",
                "superseded key",
                ("10.9.0.4", "10.2.3.17"),
            ),
        ):
            store.append_audit(event)
        store.close()

    def admin(self, *argv):
        return run_admin("--data", self.data, *argv)

    def assert_said_read_only(self, err):
        """
        Standard error holds one line saying the daemon did not answer and
        the store was read instead.
        """
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("did not answer", err)
        self.assertIn(f"reading {self.database} read-only", err)

    def test_audit(self):
        """
        C{audit} lists the store's records, C{--since} included.
        """
        code, out, err = self.admin("audit")
        self.assertEqual(
            (code, out),
            (
                0,
                "TIME\tEVENT\tUSER\tSOURCE\tLOCATIONS\tREASON\n"
                "2023-11-14T22:13:20Z\tenrolled\talice\t10.2.3.17\t-\tkey id 00\n"
                "2023-11-14T22:13:21Z\tclone_suspected\talice\t10.9.0.4\t"
                "10.9.0.4, 10.2.3.17\tsuperseded key\n",
            ),
        )
        self.assert_said_read_only(err)
        code, out, _ = self.admin("audit", "--since", "2023-11-14T22:13:21Z")
        self.assertEqual((code, out.count("\n")), (0, 2))

    def test_alerts(self):
        """
        C{alerts} lists the alerts among the store's records.
        """
        code, out, err = self.admin("alerts")
        self.assertEqual(
            (code, out),
            (
                0,
                "TIME\tTYPE\tPROFILE\tSOURCE\tLOCATIONS\tREASON\n"
                "2023-11-14T22:13:21Z\tclone_suspected\talice\t10.9.0.4\t"
                "10.9.0.4, 10.2.3.17\tsuperseded key\n",
            ),
        )
        self.assert_said_read_only(err)

    def test_pages(self):
        """
        A listing read from the store is its newest page, saying on
        standard error which page is older; C{--page} reads that one.
        """
        store = open_store(self.database)
        store.append_audits(
            [
                AuditEvent(NOW + 2 + n, "blacklisted", "bob", None, f"#{n}")
                for n in range(LISTING_PAGE)
            ]
        )
        store.close()
        code, out, err = self.admin("alerts")
        lines = out.splitlines()
        self.assertEqual((code, len(lines)), (0, LISTING_PAGE + 1))
        self.assertTrue(lines[1].endswith("\t#0"))
        self.assertIn("older records are on --page 2\n", err)
        code, out, err = self.admin("alerts", "--page", "2")
        self.assertEqual(code, 0)
        self.assertIn("superseded key", out)
        self.assertEqual(len(out.splitlines()), 2)
        self.assertNotIn("--page", err)
        code, out, err = self.admin("audit", "--page", "3", "--json")
        self.assertEqual((code, out), (0, "[]\n"))
        code, _, err = self.admin("audit", "--page", "0")
        self.assertEqual(code, 2)
        self.assertIn("not a page number", err)

    def test_verify(self):
        """
        C{audit verify} checks the store's chain and counts its records,
        changing nothing in the file.
        """
        with open(self.database, "rb") as handle:
            before = handle.read()
        code, out, err = self.admin("audit", "verify")
        self.assertEqual(
            (code, out),
            (
                0,
                "2 record(s), the last at 2023-11-14T22:13:21Z\n"
                "the audit log is intact\n",
            ),
        )
        self.assert_said_read_only(err)
        with open(self.database, "rb") as handle:
            self.assertEqual(handle.read(), before)

    def test_no_store(self):
        """
        A data folder without a store gives one line naming it after the
        one about the daemon, and exit 1.
        """
        os.remove(self.database)
        code, out, err = self.admin("audit")
        self.assertEqual((code, out, err.count("\n")), (1, "", 2))
        self.assertIn(f"no database at {self.database}", err)


class VerifyCountTests(SynchronousTestCase):
    """
    C{audit verify --file} says how many records the log holds, and
    fails on a store whose accounts or profiles have no record.
    """

    def setUp(self):
        self.path = os.path.abspath(self.mktemp()) + ".db"
        self.store = open_store(self.path)
        self.addCleanup(self.store.close)

    def test_empty(self):
        """
        A store with nothing at all in it has an intact, empty log.
        """
        self.assertEqual(
            run_admin("audit", "verify", "--file", self.path),
            (0, "no records\nthe audit log is intact\n", ""),
        )

    def test_accounts_without_records(self):
        """
        A store holding an account but no audit record, which no use of
        SUTO makes, is refused with one line and exit 1.
        """
        self.store.add_user("alice", HASH, NOW)
        code, out, err = run_admin("audit", "verify", "--file", self.path)
        self.assertEqual(
            (code, out),
            (1, ""),
        )
        self.assertEqual(
            err,
            "suto-admin: no audit record in a store with accounts or "
            "profiles: a copy that lost its write-ahead log? (copy a live "
            "store with suto-admin backup)\n",
        )
