"""
Tests that a rotation's commit trims the profile's retired keys with one
range of their index by profile (C{retired_keys_by_user}), as SQLite's
own query plan says: written as C{id NOT IN} the newest ids, the trim
built a list of those ids and probed it for every key of the profile,
on every rotation of a profile whose history was full.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.records import RETIRED_KEY_HISTORY
from tests.support.sqlite_files import SQLiteFileCase, statement_plans
from tests.support.store_suite.values import (
    enroll_numbered,
    numbered_key_id,
    numbered_rotation,
)


class RetiredTrimIndexTests(SQLiteFileCase, SynchronousTestCase):
    """
    The query plan of the trim in the commit of a rotation of a profile
    whose retired keys fill its history.
    """

    def setUp(self):
        super().setUp()
        self.store = self.open_store()
        enroll_numbered(self.store, "alice")
        self.rotations = RETIRED_KEY_HISTORY + 1
        for number in range(self.rotations):
            self.rotate(number)

    def rotate(self, number):
        """
        Commit alice's rotation from key C{number} to the next one.
        """
        rotation = numbered_rotation("alice", number, number + 1, 2000.0 + number)
        self.assertEqual(self.store.commit_rotations([rotation]), [True])

    def test_trim_is_a_range(self):
        """
        The commit's one C{DELETE} of retired keys searches
        C{retired_keys_by_user} for the profile's ids up to a bound, which
        one search of the same index finds; no list of ids is built.  It
        leaves the newest L{RETIRED_KEY_HISTORY} retired keys.
        """
        plans = statement_plans(
            self.store, self.path, lambda: self.rotate(self.rotations)
        )
        [plan] = [
            plan
            for statement, plan in plans
            if statement.startswith("DELETE FROM retired_keys")
        ]
        self.assertIn(
            "INDEX retired_keys_by_user (username=? AND id<?)", plan[0]
        )
        self.assertTrue(plan[0].startswith("SEARCH retired_keys USING"), plan)
        self.assertEqual(
            [step for step in plan if step.startswith(("SCAN", "LIST"))], []
        )
        newest = self.rotations - 1
        self.assertEqual(
            [
                self.store.is_retired("alice", numbered_key_id(number))
                for number in range(newest - RETIRED_KEY_HISTORY, newest + 2)
            ],
            [False] + [True] * RETIRED_KEY_HISTORY + [False],
        )
