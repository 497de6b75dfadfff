"""
Tests that the offline sweep's read (C{silent_profiles}) searches the
profiles by their last-seen time (C{profiles_by_last_seen}), as SQLite's
own query plan says: with an C{ORDER BY username} in the statement SQLite
walked the whole table in its primary key's order every sweep, a cost
that grew with the fleet (18 ms a sweep at 100,000 profiles) however few
of them had fallen silent.
"""

from twisted.trial.unittest import SynchronousTestCase

from tests.support.masterkey import new_master_key
from tests.support.rotation import NOW, enroll
from tests.support.sqlite_files import SQLiteFileCase, statement_plan


class SweepIndexTests(SQLiteFileCase, SynchronousTestCase):
    """
    The query plan of the sweep's read on a store holding a few profiles,
    one of them marked offline.
    """

    def setUp(self):
        super().setUp()
        self.store = self.open_store()
        master_key = new_master_key(self)
        for user in ("carol", "alice", "bob"):
            enroll(self.store, master_key, user)
        self.store.mark_offline(["bob"], NOW + 100)

    def test_searches_by_last_seen(self):
        """
        The sweep's read searches C{profiles_by_last_seen} for the
        profiles last seen before its time, scans no table, and gives the
        silent profiles not marked offline by name.
        """
        silent = []
        plan = statement_plan(
            self.store,
            self.path,
            lambda: silent.extend(self.store.silent_profiles(NOW + 100)),
        )
        self.assertEqual(silent, ["alice", "carol"])
        self.assertIn(
            "SEARCH profiles USING INDEX profiles_by_last_seen (last_seen<?)", plan
        )
        self.assertEqual([step for step in plan if step.startswith("SCAN")], [])
