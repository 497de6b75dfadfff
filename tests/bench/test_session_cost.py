"""
Tests for L{bench.session_cost}: each figure is measured on the code it
names, and the server's rotations it times complete.
"""

import io
import json
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from bench import session_cost


class ServerRotationTests(SynchronousTestCase):
    """
    The server's side of a rotation, timed in-process.
    """

    def test_rotations_complete(self):
        """
        Every agent's rotations complete against the server (each agent
        opens the server's "ok" and "done" under the key it derived, and
        raises otherwise), and the time they took is a positive number of
        microseconds.
        """
        self.assertGreater(session_cost.server_rotation_microseconds(3, 2), 0)


class MainTests(SynchronousTestCase):
    """
    The command prints every figure, then all of them as JSON.
    """

    def test_figures(self):
        """
        A short run prints one line per figure and a JSON line with each
        figure, all positive.
        """
        out = io.StringIO()
        with redirect_stdout(out):
            session_cost.main(
                [
                    "--rotations", "10",
                    "--repeat", "1",
                    "--sessions", "10",
                    "--connections", "10",
                    "--profiles", "2",
                    "--rounds", "1",
                ]
            )
        *lines, last = out.getvalue().splitlines()
        figures = json.loads(last)
        self.assertEqual(
            set(figures),
            {
                "rotation_us",
                "codec_us",
                "timeouts_us",
                "bytes_per_session",
                "server_rotation_us",
            },
        )
        self.assertEqual(len(lines), len(figures))
        self.assertTrue(all(value > 0 for value in figures.values()))
