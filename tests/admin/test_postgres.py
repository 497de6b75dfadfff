# -*- test-case-name: tests.admin.test_postgres -*-
"""
C{suto-admin} on a deployment whose store is a PostgreSQL database: the
commands that work on the store reach it through C{--store} or the
daemon's configuration file; C{backup} and C{restore}, which copy a SQLite
file, refuse it.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.store.open import open_store
from tests.support.admin import run_admin
from tests.support.postgres import new_location


class PostgresDeploymentTests(SynchronousTestCase):
    """
    A data folder for the keys and a PostgreSQL database for the store.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        self.location = new_location(self)

    def admin(self, *argv, stdin="", store=None, status=0):
        """
        Run C{suto-admin --data DATA --store URI argv}, expecting C{status}.

        @return: its standard output and standard error.
        """
        store = store or self.location
        code, out, err = run_admin(
            "--data", self.data, "--store", store, *argv, stdin=stdin
        )
        self.assertEqual(code, status, err)
        return out, err

    def users(self, *argv):
        """
        @return: the users C{suto-admin argv user list} lists.
        """
        code, out, err = run_admin(*argv, "user", "list")
        self.assertEqual((code, err), (0, ""))
        return [line.split("\t")[0] for line in out.splitlines()[1:]]

    def test_init(self):
        """
        C{init} makes the data folder with its master key, and the store's
        schema in the database rather than a SQLite file.
        """
        out, err = self.admin("init")
        self.assertEqual(
            (out, err),
            (
                f"created {self.data}: store {self.location}, master key "
                f"{MASTER_KEY_FILE}\n",
                "",
            ),
        )
        self.assertTrue(os.path.exists(os.path.join(self.data, MASTER_KEY_FILE)))
        self.assertFalse(os.path.exists(os.path.join(self.data, DATABASE_FILE)))
        store = open_store(self.location, read_only=True)
        self.addCleanup(store.close)
        self.assertEqual(store.list_users(), [])

    def test_accounts(self):
        """
        C{user add}, C{list} and C{del} work on the database, each change
        audited there, and C{audit verify} with the daemon down reads it.
        """
        self.admin("init")
        self.assertEqual(
            self.admin("user", "add", "alice", "--password-stdin", stdin="pw\n")[0],
            "added alice (sha512_crypt)\n",
        )
        self.assertEqual(
            self.users("--data", self.data, "--store", self.location), ["alice"]
        )
        self.admin("user", "del", "alice")
        self.assertEqual(self.users("--data", self.data, "--store", self.location), [])
        out, err = self.admin("audit", "verify")
        self.assertEqual(out.splitlines()[1:], ["the audit log is intact"], (out, err))
        self.assertIn("2 record(s)", out)
        self.assertIn(f"reading {self.location} read-only", err)

    def test_from_configuration(self):
        """
        The daemon's configuration file names the store as it names the
        data folder; C{--store} wins over it.
        """
        self.admin("init")
        self.admin("user", "add", "alice", "--password-stdin", stdin="pw\n")
        config = os.path.abspath(self.mktemp())
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(f'data = "{self.data}"\nstore = "{self.location}"\n')
        self.assertEqual(self.users("--config", config), ["alice"])
        other = new_location(self)
        self.admin("init", store=other)
        self.assertEqual(self.users("--config", config, "--store", other), [])

    def test_data_given(self):
        """
        With C{--data} the configuration file is not read, its store
        neither: the store is that folder's SQLite file.
        """
        code, _, err = run_admin("--data", self.data, "init")
        self.assertEqual((code, err), (0, ""))
        self.admin("init", store=self.location)
        self.admin("user", "add", "alice", "--password-stdin", stdin="pw\n")
        config = os.path.abspath(self.mktemp())
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(f'store = "{self.location}"\n')
        self.assertEqual(self.users("--data", self.data, "--config", config), [])
        self.assertEqual(
            self.users(
                "--config", config, "--data", self.data, "--store", self.location
            ),
            ["alice"],
        )

    def test_backup_refused(self):
        """
        C{backup} and C{restore} refuse a PostgreSQL store with one line
        pointing to pg_dump and pg_restore, creating nothing.
        """
        self.admin("init")
        destination = os.path.abspath(self.mktemp())
        for argv in (("backup", destination), ("restore", destination)):
            out, err = self.admin(*argv, status=1)
            self.assertEqual(out, "")
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("pg_dump", err)
            self.assertIn("pg_restore", err)
        self.assertFalse(os.path.exists(destination))

    def test_refused_locations(self):
        """
        C{--store} takes only a PostgreSQL URI (a usage error otherwise),
        and one without a password: with one, the command fails with one
        line saying where the password belongs.
        """
        os.makedirs(self.data)
        code, out, err = run_admin("--store", "suto.db", "user", "list")
        self.assertEqual(code, 2)
        self.assertIn("PostgreSQL connection URI", err)
        for argv in (("user", "list"), ("alerts",), ("audit", "verify")):
            out, err = self.admin(
                *argv, store="postgresql://suto:secret@db.invalid/suto", status=1
            )
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("PGPASSFILE", err)
            self.assertNotIn("secret", err)
