"""
C{bench/pam_startup.py}: one run of each row makes a table of every row
and a JSON line with the same figures.
"""

import io
import json

from twisted.trial.unittest import SynchronousTestCase

from bench.pam_startup import BASELINE, commands, main


class PamStartupTests(SynchronousTestCase):
    def test_one_run(self):
        """
        Every row is measured, the baseline's ratio is 1, and the last
        line is the JSON of the table.
        """
        out = io.StringIO()
        self.assertEqual(main(["--runs", "1"], out), 0)
        lines = out.getvalue().splitlines()
        records = json.loads(lines[-1])["pam_startup"]
        self.assertEqual([r["name"] for r in records], [name for name, _, _ in commands()])
        self.assertEqual(len(lines), len(records) + 2)
        baseline = next(r for r in records if r["name"] == BASELINE)
        self.assertEqual(baseline["ratio"], 1.0)
        for record in records:
            self.assertGreater(record["best_ms"], 0)
            self.assertLessEqual(record["best_ms"], record["median_ms"])
