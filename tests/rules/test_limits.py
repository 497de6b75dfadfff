"""
The connection limits: the pure rules with explicit times, the log
throttle they share, and the options that set them.
"""

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.core.throttle import OncePerInterval
from suto_server.rules.enrollment import DEFAULT_MAX_ATTEMPTS
from suto_server.rules.limits import Limits, MaxStartups, Penalties, source_key


class SourceKeyTests(SynchronousTestCase):
    def test_ipv4(self):
        """
        An IPv4 address is its own source, mapped into IPv6 or not.
        """
        self.assertEqual(source_key("192.0.2.7"), "192.0.2.7")
        self.assertEqual(source_key("::ffff:192.0.2.7"), "192.0.2.7")

    def test_ipv6_by_64(self):
        """
        Every IPv6 address of one /64 is the same source; another /64 is
        another source.
        """
        self.assertEqual(source_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(source_key("2001:db8::ffff:1"), "2001:db8::/64")
        self.assertNotEqual(source_key("2001:db8:0:1::1"), "2001:db8::/64")

    def test_not_an_address(self):
        """
        A peer that is not an IP address (or no peer) is no source at all.
        """
        self.assertIsNone(source_key(None))
        self.assertIsNone(source_key("/run/suto/admin.sock"))


class MaxStartupsTests(SynchronousTestCase):
    def test_parse(self):
        """
        C{START:RATE:FULL} and a single C{N} (meaning C{N:100:N}) parse;
        the round trip through C{str} gives the same value back.
        """
        self.assertEqual(MaxStartups.parse("10:30:100"), MaxStartups(10, 30, 100))
        self.assertEqual(MaxStartups.parse("50"), MaxStartups(50, 100, 50))
        self.assertEqual(MaxStartups.parse(str(MaxStartups())), MaxStartups())

    def test_parse_refuses(self):
        """
        Malformed or inconsistent values are refused with L{ValueError}.
        """
        for text in ["", "a:b:c", "1:2", "10:30:5", "0:30:10", "10:101:20", "1:2:3:4"]:
            with self.subTest(text):
                self.assertRaises(ValueError, MaxStartups.parse, text)

    def test_drop_chance(self):
        """
        Below START nothing is dropped; from START the chance rises from
        RATE percent linearly to certainty at FULL.
        """
        startups = MaxStartups(10, 30, 110)
        self.assertEqual(startups.drop_chance(9), 0.0)
        self.assertAlmostEqual(startups.drop_chance(10), 0.3)
        self.assertAlmostEqual(startups.drop_chance(60), 0.65)
        self.assertEqual(startups.drop_chance(110), 1.0)


class LimitsTests(SynchronousTestCase):
    def test_per_source_cap(self):
        """
        A source holding C{max_per_source} connections is refused another
        until one closes; other sources are unaffected.
        """
        limits = Limits(max_per_source=2)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertEqual(limits.admit("192.0.2.1", 0), "per_source")
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        limits.closed("192.0.2.1", settled=False)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertEqual(limits.connections("192.0.2.1"), 2)

    def test_per_source_off(self):
        """
        C{max_per_source=0} puts no limit on one source.
        """
        limits = Limits(max_per_source=0, startups=MaxStartups(1000, 100, 1000))
        for _ in range(100):
            self.assertIsNone(limits.admit("192.0.2.1", 0))

    def test_startups_full(self):
        """
        At FULL starting connections every new one is refused, whatever
        its source; settling or closing one makes room again.
        """
        limits = Limits(startups=MaxStartups(2, 100, 2), random=lambda: 0.99)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        self.assertEqual(limits.admit("192.0.2.3", 0), "startups")
        limits.settled()
        self.assertIsNone(limits.admit("192.0.2.3", 0))
        self.assertEqual(limits.starting, 2)
        limits.closed("192.0.2.1", settled=True)
        self.assertEqual(limits.starting, 2)
        limits.closed("192.0.2.2", settled=False)
        self.assertEqual(limits.starting, 1)

    def test_startups_random_early_drop(self):
        """
        Between START and FULL the refusal follows the random draw against
        the drop chance.
        """
        draws = [0.5, 0.1]
        limits = Limits(startups=MaxStartups(1, 30, 100), random=lambda: draws.pop(0))
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        # Drop chance 0.3 at one starting: 0.5 passes, 0.1 is refused.
        self.assertIsNone(limits.admit("192.0.2.2", 0))
        self.assertGreater(limits.startups.drop_chance(2), 0.3)
        self.assertEqual(limits.admit("192.0.2.3", 0), "startups")

    def test_one_failure_forgiven(self):
        """
        A penalty below the minimum is recorded but not enforced.
        """
        limits = Limits(penalties=Penalties(authfail=5, min=15))
        limits.penalise("192.0.2.1", 5, now=100)
        self.assertIsNone(limits.admit("192.0.2.1", 101))

    def test_run_of_failures_refused_then_decays(self):
        """
        Failures faster than their penalty decays reach the minimum: the
        source is refused until the accumulated penalty has run out, then
        admitted again and forgotten.
        """
        limits = Limits(penalties=Penalties(min=15))
        for now in (100, 101, 102):
            limits.penalise("192.0.2.1", 5, now)
        # 13 seconds are left at 102: not yet enforced.
        self.assertIsNone(limits.admit("192.0.2.1", 102))
        limits.penalise("192.0.2.1", 5, 103)
        # Expiry 100 + 4 * 5 = 120.
        self.assertEqual(limits.admit("192.0.2.1", 119), "penalty")
        self.assertEqual(limits.penalised(119), 1)
        self.assertIsNone(limits.admit("192.0.2.1", 120))
        self.assertEqual(limits.penalised(120), 0)

    def test_default_penalties_hear_every_enrollment_attempt(self):
        """
        With the default penalties, the quick failures of all but the last
        attempt of an enrollment window leave the source admitted, so its
        last attempt is heard; the last failure gets it refused.
        """
        limits = Limits()
        for _ in range(DEFAULT_MAX_ATTEMPTS - 1):
            limits.penalise("192.0.2.9", limits.penalties.authfail, 100.0)
        self.assertFalse(limits.refused_for_penalty("192.0.2.9", 100.0))
        limits.penalise("192.0.2.9", limits.penalties.authfail, 100.0)
        self.assertTrue(limits.refused_for_penalty("192.0.2.9", 100.0))

    def test_penalty_capped(self):
        """
        However many failures a source piles up, it is refused for at most
        the maximum from its latest failure.
        """
        limits = Limits(penalties=Penalties(min=15, max=60))
        for _ in range(1000):
            limits.penalise("192.0.2.1", 5, now=0)
        self.assertEqual(limits.admit("192.0.2.1", 59), "penalty")
        self.assertIsNone(limits.admit("192.0.2.1", 60))

    def test_zero_penalty_off(self):
        """
        A misdeed whose penalty is 0 leaves no trace.
        """
        limits = Limits()
        limits.penalise("192.0.2.1", 0, now=0)
        self.assertEqual(limits.penalised(0), 0)
        self.assertFalse(limits.refused_for_penalty("192.0.2.1", 0))

    def test_penalty_table_bounded(self):
        """
        Once C{max_sources} sources have a live penalty, a new source's
        penalty is not recorded (the caller is told); once they decay,
        there is room again.
        """
        limits = Limits(penalties=Penalties(min=1, max_sources=2))
        self.assertTrue(limits.penalise("192.0.2.1", 5, 0))
        self.assertTrue(limits.penalise("192.0.2.2", 5, 0))
        self.assertFalse(limits.penalise("192.0.2.3", 5, 0))
        self.assertTrue(limits.penalise("192.0.2.1", 5, 0))
        self.assertIsNone(limits.admit("192.0.2.3", 1))
        self.assertTrue(limits.penalise("192.0.2.3", 5, 20))
        self.assertEqual(limits.admit("192.0.2.3", 21), "penalty")

    def test_unknown_source_not_limited(self):
        """
        A peer that is no IP source counts as starting but has no
        per-source count nor penalty.
        """
        limits = Limits(max_per_source=1)
        self.assertIsNone(limits.admit(None, 0))
        self.assertIsNone(limits.admit(None, 0))
        self.assertEqual(limits.starting, 2)


class ReserveTests(SynchronousTestCase):
    """
    Expected connections: past the random early drop, and past C{full}
    within the reserve.
    """

    def test_reserve_is_start(self):
        """
        The reserve has as many slots as C{start}.
        """
        self.assertEqual(MaxStartups(100, 30, 1000).reserve, 100)
        self.assertEqual(MaxStartups.parse("7").reserve, 7)

    def test_expected_never_dropped_at_random(self):
        """
        Between START and FULL an expected connection is admitted whatever
        the draw; an unexpected one meets the draw.
        """
        limits = Limits(startups=MaxStartups(1, 30, 100), random=lambda: 0.0)
        self.assertIsNone(limits.admit("192.0.2.1", 0))
        self.assertEqual(limits.admit("192.0.2.2", 0), "startups")
        self.assertIsNone(limits.admit("192.0.2.2", 0, expected=True))
        self.assertEqual(limits.starting, 2)

    def test_reserve_past_full_is_bounded(self):
        """
        At FULL an expected connection still takes one of C{reserve} more
        slots; once those are taken it is refused too, until a starting
        connection settles.
        """
        limits = Limits(startups=MaxStartups(2, 100, 3), random=lambda: 0.5)
        for host in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            self.assertIsNone(limits.admit(host, 0, expected=True))
        self.assertEqual(limits.admit("192.0.2.4", 0), "startups")
        self.assertIsNone(limits.admit("192.0.2.5", 0, expected=True))
        self.assertIsNone(limits.admit("192.0.2.6", 0, expected=True))
        self.assertEqual(limits.admit("192.0.2.7", 0, expected=True), "startups")
        self.assertEqual(limits.starting, 5)
        limits.settled()
        self.assertIsNone(limits.admit("192.0.2.7", 0, expected=True))
        self.assertEqual(limits.admit("192.0.2.8", 0), "startups")

    def test_expected_still_limited_per_source(self):
        """
        The penalties and the per-source cap apply to an expected source
        as to any other.
        """
        limits = Limits(max_per_source=1, penalties=Penalties(min=5))
        self.assertIsNone(limits.admit("192.0.2.1", 0, expected=True))
        self.assertEqual(limits.admit("192.0.2.1", 0, expected=True), "per_source")
        limits.penalise("192.0.2.2", 5, 0)
        self.assertEqual(limits.admit("192.0.2.2", 1, expected=True), "penalty")


class OncePerIntervalTests(SynchronousTestCase):
    def test_once_per_interval(self):
        """
        The first event of a key is due; repeats within the interval are
        kept quiet, and the next due one says how many were.
        """
        reports = OncePerInterval(60)
        self.assertEqual(reports.due("a", 0), 0)
        self.assertIsNone(reports.due("a", 10))
        self.assertIsNone(reports.due("a", 59))
        self.assertEqual(reports.due("b", 59), 0)
        self.assertEqual(reports.due("a", 60), 2)
        self.assertIsNone(reports.due("a", 61))

    def test_bounded(self):
        """
        It remembers at most C{max_keys} keys, forgetting the oldest.
        """
        reports = OncePerInterval(60, max_keys=2)
        reports.due("a", 0)
        reports.due("b", 0)
        reports.due("c", 0)
        self.assertEqual(len(reports._reported), 2)
        self.assertEqual(reports.due("a", 1), 0)


class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        With no options the limits are the documented defaults.
        """
        options = tap.Options()
        options.parseOptions([])
        limits = options.capacity
        self.assertEqual(limits.max_per_source, 32)
        self.assertEqual(limits.startups, MaxStartups(100, 30, 1000))
        self.assertEqual(limits.penalties, Penalties(3.0, 10.0, 15.0, 600.0, 65536))
        self.assertEqual(
            (options["login-grace"], options["limit-log-interval"], options["hash-pending"]),
            (30.0, 60.0, 256),
        )
        self.assertIsNone(options["metrics-listen"])

    def test_given(self):
        """
        Each limit option reaches the rules.
        """
        options = tap.Options()
        options.parseOptions(
            ["--max-per-source", "0", "--max-startups", "10:50:20",
             "--penalty-authfail", "0", "--penalty-grace", "3",
             "--penalty-min", "20", "--penalty-max", "60", "--penalty-sources", "10"]
        )
        limits = options.capacity
        self.assertEqual(limits.max_per_source, 0)
        self.assertEqual(limits.startups, MaxStartups(10, 50, 20))
        self.assertEqual(limits.penalties, Penalties(0.0, 3.0, 20.0, 60.0, 10))

    def test_refused(self):
        """
        Inconsistent or out-of-range limits are usage errors.
        """
        for argv in [
            ["--max-per-source", "-1"],
            ["--max-startups", "20:30:10"],
            ["--penalty-min", "100", "--penalty-max", "50"],
            ["--penalty-sources", "0"],
            ["--hash-pending", "0"],
            ["--login-grace", "-1"],
        ]:
            with self.subTest(argv):
                self.assertRaises(UsageError, tap.Options().parseOptions, argv)
