"""
The flood scenario's own parts, without a server: the flood's source
addresses, reading the server's metrics page, the figures and the report.
"""

import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from bench.flood import TARGET, FloodResult, flood_json, flood_rows
from bench.idle_flood import HOLD, MAX_SOURCES, flood_address
from bench.measurement import Measurement
from bench.metrics_page import parse_metrics
from bench.report import render_table
from bench.run import parser


def _result(accepted=19, errors=1, starting=(500.0, 700.0)):
    return FloodResult(
        logins=Measurement(
            count=accepted,
            seconds=2.0,
            errors=errors,
            latencies=(0.1,) * accepted,
            error_reasons={"timeout: no device connected in time": errors}
            if errors
            else {},
        ),
        held=990,
        attempts=4000,
        turned_away=2000,
        starting=starting,
        rejected={"startups": 2100.0, "penalty": 0.0},
        connect_backs=21,
        device_outcomes={"accepted": accepted},
    )


class FloodAddressTests(SynchronousTestCase):
    def test_distinct_loopback_outside_devices(self):
        """
        Every flood source has its own loopback address in 127.3.0.0/16,
        where no device is, and none ends in .0 or .255.
        """
        addresses = [flood_address(index) for index in range(MAX_SOURCES)]
        self.assertEqual(len(set(addresses)), MAX_SOURCES)
        self.assertEqual(addresses[0], "127.3.0.1")
        for address in addresses:
            self.assertTrue(address.startswith("127.3."))
            self.assertNotIn(address.rsplit(".", 1)[1], ("0", "255"))
        self.assertRaises(ValueError, flood_address, MAX_SOURCES)

    def test_hold_under_exchange_timeout(self):
        """
        A flood connection closes itself before the server's default
        exchange timeout (10 s) would drop it and penalise its source.
        """
        self.assertLess(max(HOLD), 10.0)


class MetricsTests(SynchronousTestCase):
    def test_parse(self):
        """
        Samples are read by name and label text; comments are skipped.
        """
        samples = parse_metrics(
            "# HELP suto_connections_starting x\n"
            "suto_connections_starting 12.0\n"
            'suto_connections_rejected_total{reason="startups"} 3.0\n'
        )
        self.assertEqual(
            samples,
            {
                ("suto_connections_starting", ""): 12.0,
                ("suto_connections_rejected_total", 'reason="startups"'): 3.0,
            },
        )


class FiguresTests(SynchronousTestCase):
    def test_ratio_and_drop_chance(self):
        """
        The success ratio counts every measured login; the drop chance is
        the default MaxStartups' at the mean starting count.
        """
        result = _result()
        self.assertEqual(result.success_ratio, 0.95)
        self.assertEqual(result.mean_starting, 600.0)
        self.assertAlmostEqual(result.drop_chance, 0.3 + 0.7 * 500 / 900)

    def test_nothing_measured(self):
        """
        With no login and no reading there is no figure, and the report
        still renders.
        """
        result = _result(accepted=0, errors=0, starting=())
        self.assertIsNone(result.success_ratio)
        self.assertIsNone(result.drop_chance)
        render_table("flood", flood_rows(result))

    def test_report(self):
        """
        The table says whether the target was met; the JSON line carries
        the ratio and the target.
        """
        table = render_table("flood", flood_rows(_result()))
        self.assertIn(f"target {TARGET}: met", table)
        self.assertIn("missed", render_table("flood", flood_rows(_result(18, 2))))
        figures = flood_json(_result())
        self.assertEqual((figures["success_ratio"], figures["target"]), (0.95, TARGET))


class OptionsTests(SynchronousTestCase):
    def test_defaults_and_bounds(self):
        """
        By default 1000 connections from 40 sources; counts out of bounds
        are refused.
        """
        options = parser().parse_args(["flood"])
        self.assertEqual((options.connections, options.sources), (1000, 40))
        self.patch(sys, "stderr", io.StringIO())
        self.assertRaises(
            SystemExit,
            parser().parse_args,
            ["flood", "--sources", str(MAX_SOURCES + 1)],
        )
