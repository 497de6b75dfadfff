# -*- test-case-name: tests.admin.test_storecopy -*-
"""
Tests for C{suto-admin store copy} (L{suto_server.admin.storecopy}), run
with injected streams on real stores: SQLite files in temporary folders
and schemas on a real PostgreSQL server (L{tests.support.postgres}).  A
daemon serving the copy is in L{tests.end_to_end.test_store_copy}.
"""

import os
import sqlite3

from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import storecopy
from suto_server.core.commandline import CommandError
from suto_server.datalock import DataFolderLock
from suto_server.masterkey import MasterKey
from suto_server.store.open import open_store
from suto_server.store.records import AuditEvent
from tests.support.admin import run_admin
from tests.support.deployments import populate
from tests.support.postgres import new_location
from tests.support.store_suite.values import PROFILE, profile_for, window_for

KEY_ID = PROFILE.key_id

KEY = bytes(range(32))

EVENT = AuditEvent(time=9.0, event="x", username=None, source=None, reason="r")


class StoreCopyTests(SynchronousTestCase):
    """
    A populated SQLite deployment in C{self.source}, copied around.
    """

    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.base, "data"))
        self.source = os.path.join(self.base, "data", "suto.db")
        with self.opened(self.source) as store:
            populate(store)

    def opened(self, location, read_only=False):
        """
        @return: the store at C{location}, closed at the end of a C{with}.
        """
        store = open_store(location, read_only=read_only)

        class Closing:
            def __enter__(self):
                return store

            def __exit__(self, *exc):
                store.close()

        return Closing()

    def dump(self, location):
        """
        @return: every carried table of the store at C{location}.
        """
        with self.opened(location, read_only=True) as store:
            return list(store.dump())

    def copy(self, source, destination, *extra, status=0):
        """
        Run C{suto-admin store copy}, expecting C{status}.

        @return: its standard output and standard error.
        """
        code, out, err = run_admin(
            "store", "copy", "--from", source, "--to", destination, *extra
        )
        self.assertEqual(code, status, err)
        return out, err

    def test_round_trip(self):
        """
        SQLite to PostgreSQL and back: the copy of the copy holds every
        row of the original, its audit chain is intact, and each copy
        prints how many rows each table holds.
        """
        postgres = new_location(self)
        back = os.path.join(self.base, "back.db")
        out, err = self.copy(self.source, postgres)
        self.assertEqual(err, "")
        lines = out.splitlines()
        self.assertEqual(lines[0], "table\trows")
        self.assertIn("profiles\t3", lines)
        self.assertIn("audit\t7", lines)
        self.assertIn(
            f"copied {self.source} to {postgres}: every table matches, and "
            "the audit log is intact",
            lines,
        )
        self.assertIn("master.key", lines[-1])
        self.assertEqual(self.dump(postgres), self.dump(self.source))
        self.copy(postgres, back)
        self.assertEqual(self.dump(back), self.dump(self.source))
        with self.opened(back) as store:
            self.assertEqual(store.verify_audit(), [])
            self.assertEqual(
                [p.key_id for p in store.list_profiles()],
                [p.key_id for p in open_store(self.source, True).list_profiles()],
            )
        self.assertEqual(os.stat(back).st_mode & 0o777, 0o600)

    def test_refuses_filled_destination(self):
        """
        A destination that holds anything is refused, unchanged, unless
        C{--replace} is given; then it holds the copy and nothing else.
        """
        other = os.path.join(self.base, "other.db")
        with self.opened(other) as store:
            store.append_audit(EVENT)
        before = self.dump(other)
        _, err = self.copy(self.source, other, status=1)
        self.assertIn("already holds a deployment (1 row(s))", err)
        self.assertIn("--replace", err)
        self.assertEqual(self.dump(other), before)
        out, _ = self.copy(self.source, other, "--replace")
        self.assertIn(f"replaced what {other} held", out)
        self.assertEqual(self.dump(other), self.dump(self.source))

    def test_refuses_same_store(self):
        """
        A store is never copied onto itself.
        """
        alias = os.path.join(self.base, "data", "..", "data", "suto.db")
        _, err = self.copy(self.source, alias, status=1)
        self.assertIn("the same store", err)

    def test_refuses_served_source(self):
        """
        While a daemon holds the data folder of a SQLite source, the copy
        is refused and nothing is made at the destination: the daemon
        would go on rotating keys the copy never learns of.
        """
        lock = DataFolderLock.acquire(os.path.dirname(self.source))
        self.addCleanup(lock.release)
        destination = os.path.join(self.base, "copy.db")
        _, err = self.copy(self.source, destination, status=1)
        self.assertIn("a daemon serves the source", err)
        self.assertFalse(os.path.exists(destination))

    def test_refuses_served_destination(self):
        """
        A SQLite destination in a folder a daemon holds is refused.
        """
        folder = os.path.join(self.base, "served")
        os.mkdir(folder)
        lock = DataFolderLock.acquire(folder)
        self.addCleanup(lock.release)
        destination = os.path.join(folder, "suto.db")
        _, err = self.copy(self.source, destination, status=1)
        self.assertIn("a daemon serves the destination", err)
        self.assertFalse(os.path.exists(destination))

    def test_refuses_broken_audit_log(self):
        """
        A source whose audit chain is broken is not copied: the copy
        would carry the break along as if it were sound.
        """
        connection = sqlite3.connect(self.source)
        with connection:
            connection.execute("UPDATE audit SET reason = 'edited' WHERE id = 3")
        connection.close()
        destination = os.path.join(self.base, "copy.db")
        _, err = self.copy(self.source, destination, status=1)
        self.assertIn(f"the audit log of {self.source} is broken", err)
        self.assertFalse(os.path.exists(destination))

    def test_failed_load_leaves_nothing(self):
        """
        A copy the destination refuses (here a column its schema lacks)
        changes nothing there, and a SQLite file made for it is removed.
        """
        connection = sqlite3.connect(self.source)
        connection.execute("ALTER TABLE users ADD COLUMN extra TEXT")
        connection.close()
        destination = os.path.join(self.base, "copy.db")
        _, err = self.copy(self.source, destination, status=1)
        self.assertIn("not copied", err)
        self.assertFalse(os.path.exists(destination))

    def test_master_key(self):
        """
        With C{--master-key}, the copy goes ahead only when that key
        opens every profile's key: another deployment's key is refused,
        naming the profile it cannot open, and nothing is made.
        """
        path = os.path.join(self.base, "master.key")
        key = MasterKey.load_or_create(path)
        source = os.path.join(self.base, "sealed.db")
        with self.opened(source) as store:
            store.open_window(window_for("alice"))
            store.complete_enrollment(
                profile_for("alice", key_sealed=key.seal_key("alice", KEY_ID, KEY))
            )
        self.copy(source, os.path.join(self.base, "copy.db"), "--master-key", path)
        other = os.path.join(self.base, "other.key")
        MasterKey.load_or_create(other)
        refused = os.path.join(self.base, "refused.db")
        _, err = self.copy(source, refused, "--master-key", other, status=1)
        self.assertIn(
            f"the master key {other} does not open the key of alice: not copied", err
        )
        self.assertFalse(os.path.exists(refused))

    def test_refuses_password_in_uri(self):
        """
        A PostgreSQL location carrying a password is refused without
        being shown.
        """
        _, err = self.copy(
            self.source, "postgresql://suto:s3cret@db.example/suto", status=1
        )
        self.assertIn("must not carry a password", err)
        self.assertNotIn("s3cret", err)

    def test_missing_source(self):
        """
        A source that holds no store is refused, and makes none.
        """
        missing = os.path.join(self.base, "missing.db")
        _, err = self.copy(missing, os.path.join(self.base, "copy.db"), status=1)
        self.assertIn(f"cannot open {missing}", err)
        self.assertFalse(os.path.exists(missing))

    def test_usage(self):
        """
        Both locations are required.
        """
        code, _, err = run_admin("store", "copy", "--from", self.source)
        self.assertEqual(code, 2)
        self.assertIn("--to", err)


class VerificationTests(SynchronousTestCase):
    """
    L{storecopy} checks a copy once it is made.
    """

    def setUp(self):
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.source = open_store(os.path.join(base, "source.db"))
        self.addCleanup(self.source.close)
        populate(self.source)
        self.destination = open_store(os.path.join(base, "copy.db"))
        self.addCleanup(self.destination.close)
        self.digests = {}
        self.destination.load(storecopy._noting(self.source.dump(), self.digests))

    def verify(self):
        storecopy._verify(self.source, self.destination, self.digests, "copy.db")

    def test_verified(self):
        """
        A copy of a source left alone checks out.
        """
        self.verify()

    def test_source_changed(self):
        """
        A source written to while it was copied (a daemon still serving
        it) fails the check with L{storecopy.UNVERIFIED}.
        """
        self.source.append_audit(EVENT)
        error = self.assertRaises(CommandError, self.verify)
        self.assertEqual(error.status, storecopy.UNVERIFIED)
        self.assertIn("the source changed while it was copied", str(error))

    def test_destination_differs(self):
        """
        A copy whose rows are not the source's fails the check, naming
        the tables that differ.
        """
        self.destination.remove_profile("bob")
        error = self.assertRaises(CommandError, self.verify)
        self.assertEqual(error.status, storecopy.UNVERIFIED)
        self.assertIn("offline, profiles differ", str(error))
