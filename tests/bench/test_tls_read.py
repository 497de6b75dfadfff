"""
Tests for L{bench.tls_read}: both read paths are timed over the listener's
connections, every answer checked.
"""

import io
import json
from contextlib import redirect_stdout

from twisted.trial.unittest import SynchronousTestCase

from bench import tls_read


class RecordsTests(SynchronousTestCase):
    """
    L{tls_read._records} counts the TLS records in a run of bytes.
    """

    def test_count(self):
        """
        Records are counted by the lengths their headers give.
        """
        one = b"\x17\x03\x03\x00\x02ab"
        other = b"\x17\x03\x03\x00\x00"
        self.assertEqual(tls_read._records(one + other + one), 3)
        self.assertEqual(tls_read._records(b""), 0)


class MainTests(SynchronousTestCase):
    """
    The command times each read path and prints the figures, then all of
    them as JSON.
    """

    def test_figures(self):
        """
        A short run (every message's answer checked to be one record in
        one write, as L{tls_read.Pair.check} raises otherwise) prints a
        line per read path and a JSON line with a positive figure each.
        """
        out = io.StringIO()
        with redirect_stdout(out):
            tls_read.main(["--messages", "20", "--connections", "2", "--repeat", "1"])
        *lines, last = out.getvalue().splitlines()
        figures = json.loads(last)
        self.assertEqual(set(figures), {"listener_us", "twisted_us"})
        self.assertEqual(len(lines), len(figures))
        self.assertTrue(all(value > 0 for value in figures.values()))

    def test_one_variant(self):
        """
        C{--variant} times that read path alone.
        """
        out = io.StringIO()
        with redirect_stdout(out):
            tls_read.main(["--messages", "4", "--connections", "2", "--repeat", "1", "--variant", "twisted"])
        self.assertEqual(set(json.loads(out.getvalue().splitlines()[-1])), {"twisted_us"})
