"""
Tests for L{suto_server.core.optionvalues}: the seconds and addresses
both daemons' options take.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.optionvalues import MIN_TIMER, is_ip_address, seconds


class SecondsTests(SynchronousTestCase):
    def test_bounds(self):
        """
        A duration from the least to the most is taken as a float; one
        outside them, infinite, not a number or not positive is refused
        with what it must be.
        """
        coerce = seconds(MIN_TIMER, 60)
        self.assertEqual([coerce("0.001"), coerce("60"), coerce("5")], [0.001, 60, 5])
        for value, reason in [
            ("1e-300", "must be at least 0.001"),
            ("0.0009", "must be at least 0.001"),
            ("60.5", "must be at most 60"),
            ("inf", "must be at most 60"),
            ("nan", "must be positive"),
            ("-inf", "must be positive"),
            ("0", "must be positive"),
            ("-1", "must be positive"),
        ]:
            with self.subTest(value):
                error = self.assertRaises(ValueError, coerce, value)
                self.assertEqual(str(error), reason)
        self.assertRaises(ValueError, coerce, "soon")

    def test_off(self):
        """
        An option that 0 turns off takes 0, and otherwise the same bounds.
        """
        coerce = seconds(MIN_TIMER, 60, off=True)
        self.assertEqual(coerce("0"), 0)
        self.assertEqual(str(self.assertRaises(ValueError, coerce, "1e-300")),
                         "must be at least 0.001")
        self.assertEqual(str(self.assertRaises(ValueError, coerce, "-1")),
                         "must be zero or more")

    def test_documented(self):
        """
        The bounds are in the option's help.
        """
        self.assertEqual(seconds(0.001, 3600).coerceDoc, "Seconds, from 0.001 to 3600.")
        self.assertEqual(
            seconds(0.001, 60, off=True).coerceDoc,
            "Seconds, from 0.001 to 60; 0 turns it off.",
        )


class AddressTests(SynchronousTestCase):
    def test_literals(self):
        """
        Only IP address literals are addresses, of the version asked.
        """
        self.assertTrue(is_ip_address("192.0.2.1"))
        self.assertTrue(is_ip_address("::1"))
        self.assertTrue(is_ip_address("192.0.2.1", 4))
        for text, version in [
            ("::1", 4), ("192.0.2.1", 6), ("eth0", None), ("localhost", None),
            ("10.0.0.256", None), ("not-an-address", 4),
        ]:
            self.assertFalse(is_ip_address(text, version), text)
