"""
Tests for L{bench.figures}: a figure not measured reads "-" in a table and
null in the JSON line, whatever its unit.
"""

from twisted.trial.unittest import SynchronousTestCase

from bench import figures
from bench.measurement import Measurement


class UnitTests(SynchronousTestCase):
    """
    Units and roundings carry L{None} through.
    """

    def test_units(self):
        """
        Seconds become milliseconds, bytes mebibytes, fractions percents.
        """
        self.assertEqual(figures.milliseconds(0.25), 250.0)
        self.assertEqual(figures.megabytes(3 * 1024 * 1024), 3.0)
        self.assertEqual(figures.percent(0.125), 12.5)
        self.assertEqual(figures.rounded(1.23456, 3), 1.235)

    def test_not_measured(self):
        """
        Each of them gives L{None} for L{None}.
        """
        for unit in (
            figures.milliseconds,
            figures.megabytes,
            figures.percent,
            figures.rounded,
        ):
            self.assertIsNone(unit(None), unit.__name__)

    def test_ratio(self):
        """
        A ratio is unknown when either side is, or when the whole is zero.
        """
        self.assertEqual(figures.ratio(1.0, 4.0), 0.25)
        self.assertIsNone(figures.ratio(None, 4.0))
        self.assertIsNone(figures.ratio(1.0, None))
        self.assertIsNone(figures.ratio(1.0, 0.0))

    def test_text(self):
        """
        A table cell shows the figure to the digits asked, "-" for none.
        """
        self.assertEqual(figures.text(2.345, 2), "2.35")
        self.assertEqual(figures.text(2.0), "2.0")
        self.assertEqual(figures.text(None), "-")

    def test_met(self):
        """
        A target is met or missed.
        """
        self.assertEqual(figures.met_or_missed(True), "met")
        self.assertEqual(figures.met_or_missed(False), "missed")


class NoteTests(SynchronousTestCase):
    """
    What went wrong, counted by reason.
    """

    def test_counts(self):
        """
        Reasons in their order, each with its count; nothing for none.
        """
        self.assertEqual(
            figures.counts_note({"timeout": 3, "refused": 1}),
            "1x refused; 3x timeout",
        )
        self.assertEqual(figures.counts_note({}), "")

    def test_errors(self):
        """
        A measurement's errors are noted by their reasons.
        """
        measurement = Measurement(count=0, seconds=1.0)
        measurement.error_reasons["busy"] = 2
        self.assertEqual(figures.errors_note(measurement), "2x busy")
