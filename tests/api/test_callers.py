"""
The limits per calling host of the verification API
(L{suto_server.api.callers}).
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.api.callers import CallerLimits

HOST = "OU=suto-hosts,CN=db1"
OTHER = "OU=suto-hosts,CN=db2"


class CallerLimitsTests(SynchronousTestCase):
    def test_in_flight(self):
        """
        A host may hold C{in_flight} verifications at once; the next is
        refused until one is done, and other hosts are not affected.
        """
        limits = CallerLimits(in_flight=2, per_minute=100)
        self.assertIsNone(limits.admit(HOST, 0))
        self.assertIsNone(limits.admit(HOST, 0))
        self.assertIn("in flight", limits.admit(HOST, 0))
        self.assertIsNone(limits.admit(OTHER, 0))
        limits.done(HOST)
        self.assertEqual(limits.in_flight(HOST), 1)
        self.assertIsNone(limits.admit(HOST, 0))

    def test_per_minute(self):
        """
        A host may start C{per_minute} verifications a minute, done or
        not; the next minute it may start as many again.
        """
        limits = CallerLimits(in_flight=100, per_minute=3)
        for _ in range(3):
            self.assertIsNone(limits.admit(HOST, 10))
            limits.done(HOST)
        self.assertIn("a minute", limits.admit(HOST, 30))
        self.assertIsNone(limits.admit(OTHER, 30))
        self.assertIsNone(limits.admit(HOST, 70))

    def test_refusal_holds_nothing(self):
        """
        A refused verification holds no slot.
        """
        limits = CallerLimits(in_flight=1, per_minute=1)
        self.assertIsNone(limits.admit(HOST, 0))
        limits.done(HOST)
        self.assertIsNotNone(limits.admit(HOST, 0))
        self.assertEqual(limits.in_flight(HOST), 0)
