"""
The benchmark's own arithmetic and bounds, with tiny counts so the whole
module runs in well under a second: budgets stop loops, percentiles and
ceilings are computed as documented, devices get distinct loopback
addresses, and the password ceiling really hashes.
"""

import io
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bench.ceilings import Ceilings, harmonic
from bench.device import MAX_DEVICES, device_address
from bench.loops import Budget
from bench.measurement import MAX_REASONS, Measurement, Tally, percentile
from bench.password_ceiling import measure_crypt_rate
from bench.report import enrollment_ceiling, render_table
from bench.run import parser
from suto_server.core import libxcrypt


class BudgetTests(SynchronousTestCase):
    """
    L{Budget} allows iterations until its count or its time runs out.
    """

    def test_count(self):
        """
        No more than C{max_count} iterations are allowed, however much time
        is left.
        """
        budget = Budget(Clock().seconds, 10.0, 3)
        self.assertEqual([budget.take() for _ in range(5)], [True] * 3 + [False] * 2)
        self.assertEqual(budget.started, 3)

    def test_time(self):
        """
        Once the duration has passed, no iteration is allowed, however
        much count is left.
        """
        clock = Clock()
        budget = Budget(clock.seconds, 2.0, 100)
        self.assertTrue(budget.take())
        clock.advance(2.0)
        self.assertFalse(budget.take())
        self.assertEqual(budget.started, 1)

    def test_refuses_empty(self):
        """
        A budget without time or count is refused.
        """
        self.assertRaises(ValueError, Budget, Clock().seconds, 0.0, 1)
        self.assertRaises(ValueError, Budget, Clock().seconds, 1.0, 0)


class MeasurementTests(SynchronousTestCase):
    """
    Percentiles, rates and tallies.
    """

    def test_percentile(self):
        """
        L{percentile} is the nearest-rank percentile, and L{None} without
        observations.
        """
        values = [float(n) for n in range(100, 0, -1)]
        self.assertEqual(percentile(values, 0.5), 50.0)
        self.assertEqual(percentile(values, 0.99), 99.0)
        self.assertEqual(percentile([7.0], 0.99), 7.0)
        self.assertIsNone(percentile([], 0.5))

    def test_rates(self):
        """
        A measurement gives successes per second and CPU milliseconds per
        success, and nothing to divide when nothing succeeded.
        """
        measurement = Measurement(count=50, seconds=2.0, generator_cpu=0.5)
        self.assertEqual(measurement.per_second, 25.0)
        self.assertEqual(measurement.cpu_ms_per_operation(0.5), 10.0)
        self.assertIsNone(measurement.cpu_ms_per_operation(None))
        self.assertIsNone(Measurement(0, 1.0).cpu_ms_per_operation(1.0))

    def test_tally(self):
        """
        A tally counts successes with their latencies and failures by
        reason, keeping at most L{MAX_REASONS} distinct reasons.
        """
        tally = Tally()
        tally.succeeded(0.25)
        tally.succeeded()
        for index in range(MAX_REASONS + 5):
            tally.failed(f"reason {index}")
        measurement = tally.measurement(2.0)
        self.assertEqual(
            (measurement.count, measurement.errors, measurement.latencies),
            (2, MAX_REASONS + 5, (0.25,)),
        )
        self.assertEqual(len(measurement.error_reasons), MAX_REASONS + 1)
        self.assertEqual(measurement.error_reasons["other reasons"], 5)

    def test_harmonic(self):
        """
        The combined rate of doing one of each operation in turn.
        """
        self.assertAlmostEqual(harmonic(400.0, 400.0), 200.0)
        self.assertAlmostEqual(harmonic(300.0, 600.0), 200.0)
        self.assertEqual(harmonic(300.0, 0.0), 0.0)


class DeviceAddressTests(SynchronousTestCase):
    """
    L{device_address} hands out distinct loopback host addresses.
    """

    def test_distinct(self):
        """
        Every device gets its own 127.x.y.z, never 127.0.0.1 and never an
        address ending in .0 or .255.
        """
        addresses = [device_address(index) for index in range(MAX_DEVICES)]
        self.assertEqual(len(set(addresses)), MAX_DEVICES)
        self.assertEqual(addresses[:2], ["127.0.0.2", "127.0.0.3"])
        self.assertNotIn("127.0.0.1", addresses)
        misplaced = [
            address
            for address in addresses
            if address.endswith((".0", ".255")) or not address.startswith("127.")
        ]
        self.assertEqual(misplaced, [])

    def test_bounds(self):
        """
        Indices outside the supported range are refused.
        """
        self.assertRaises(ValueError, device_address, -1)
        self.assertRaises(ValueError, device_address, MAX_DEVICES)


class PasswordCeilingTests(SynchronousTestCase):
    """
    L{measure_crypt_rate} hashes on its threads within its bounds.
    """

    skip = None if libxcrypt.available() else "libxcrypt is not installed"

    def test_tiny_count(self):
        """
        With a count of 4 on two threads, exactly 4 verifications are made
        and their CPU time is measured.
        """
        measurement = measure_crypt_rate(2, 30.0, 4)
        self.assertEqual(measurement.count, 4)
        self.assertGreater(measurement.seconds, 0.0)
        self.assertGreater(measurement.generator_cpu, 0.0)


class RenderTableTests(SynchronousTestCase):
    """
    L{render_table} aligns the columns.
    """

    def test_alignment(self):
        """
        Measures are left-aligned, values right-aligned, and lines carry no
        trailing spaces.
        """
        table = render_table(
            "title", [("a", "1.0", "x/s", ""), ("longer", "100.0", "y", "note")]
        )
        self.assertEqual(
            table.splitlines(),
            [
                "title",
                "",
                "measure  value  unit  notes",
                "a          1.0  x/s",
                "longer   100.0  y     note",
            ],
        )


class EnrollmentScenarioTests(SynchronousTestCase):
    """
    The enrollment scenario's arithmetic and command line.
    """

    def test_ceiling(self):
        """
        The enrollment ceiling charges four crypts and one handshake to
        the machine: 1 / (4/password + 1/TLS).
        """
        crypt = Measurement(count=400, seconds=1.0)
        ceilings = Ceilings(
            crypt_one=crypt,
            crypt_all=crypt,
            threads=2,
            handshakes=Measurement(count=900, seconds=1.0),
            messages=Measurement(count=10000, seconds=1.0),
            connections=16,
        )
        self.assertAlmostEqual(enrollment_ceiling(ceilings), 1 / (4 / 400 + 1 / 900))

    def test_bounded_options(self):
        """
        The enrollment command bounds its duration, count and timeout.
        """
        options = parser().parse_args(["enrollment"])
        self.assertEqual(
            (options.duration, options.max_enroll, options.enroll_timeout),
            (10.0, 100000, 30.0),
        )
        for bad in (
            ["--duration", "0"],
            ["--max-enroll", "0"],
            ["--enroll-timeout", "100"],
        ):
            self.patch(sys, "stderr", io.StringIO())
            self.assertRaises(SystemExit, parser().parse_args, ["enrollment", *bad])
