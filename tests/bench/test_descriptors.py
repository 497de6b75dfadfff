"""
L{bench.descriptors}: a fleet is checked against the open-file limit
before anything is seeded, and split between enough generators for each
to stay under it, opening connections together under the server's
MaxStartups start.

    python -m twisted.trial tests.bench.test_descriptors
"""

from __future__ import annotations

import math
import resource

from twisted.trial.unittest import SynchronousTestCase

from bench import descriptors, fleet
from bench.rotation import CONNECT_TIMEOUT, connect_timeout


class FileLimitTests(SynchronousTestCase):
    """
    L{descriptors.raise_file_limit} raises the soft limit to the hard one.
    """

    def test_raised_to_hard(self):
        """
        Afterwards the soft limit is the hard limit, which is returned.
        """
        before = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, before)
        limit = descriptors.raise_file_limit()
        self.assertEqual(limit, before[1])
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE), (limit, limit))


class CheckServerTests(SynchronousTestCase):
    """
    L{descriptors.check_server} refuses a fleet one server process cannot
    hold, saying how many would fit.
    """

    def test_fits(self):
        """
        A fleet plus the server's own files within the limit passes.
        """
        descriptors.check_server(19_900, 20_000)

    def test_too_large(self):
        """
        One endpoint past the room left by L{descriptors.RESERVE} is
        refused, the message giving the limit and what fits.
        """
        error = self.assertRaises(
            descriptors.FleetTooLarge, descriptors.check_server, 19_901, 20_000
        )
        self.assertIn("20000", str(error))
        self.assertIn("at most 19900 endpoints fit", str(error))

    def test_hundred_thousand(self):
        """
        The largest fleet the bench seeds needs a limit above 100 000.
        """
        self.assertRaises(
            descriptors.FleetTooLarge,
            descriptors.check_server, fleet.MAX_ENDPOINTS, 100_000,
        )
        descriptors.check_server(fleet.MAX_ENDPOINTS, 1_048_576)


class SharedPortTests(SynchronousTestCase):
    """
    Several server processes sharing a port each need room for more than
    their even share, since the kernel's hash hands them connections
    unevenly.
    """

    def test_one_process(self):
        """
        One process is handed the whole fleet.
        """
        self.assertEqual(descriptors.busiest_share(19_900, 1), 19_900)

    def test_binomial_margin(self):
        """
        The busiest share is the mean plus L{descriptors.SPREAD_DEVIATIONS}
        binomial standard deviations: 100 000 over six processes have a
        mean of 16 667 and a deviation of 117.85.
        """
        deviation = (100_000 * (1 / 6) * (5 / 6)) ** 0.5
        self.assertEqual(
            descriptors.busiest_share(100_000, 6),
            math.ceil(100_000 / 6 + descriptors.SPREAD_DEVIATIONS * deviation),
        )
        self.assertGreater(descriptors.busiest_share(100_000, 6), 16_667)

    def test_hundred_thousand_here(self):
        """
        Under this host's 20 000 open files, 100 000 endpoints fit in six
        processes, not in five, though five would hold 20 000 each on
        average; the refusal names the processes it takes.
        """
        descriptors.check_server(100_000, 20_000, 6)
        error = self.assertRaises(
            descriptors.FleetTooLarge,
            descriptors.check_server, 100_000, 20_000, 5,
        )
        self.assertIn("--processes 6 or more", str(error))


class GeneratorSharesTests(SynchronousTestCase):
    """
    L{descriptors.generator_shares} uses every core, and more processes
    when one per core would exceed the file limit.
    """

    def test_one_per_core(self):
        """
        Under the limit, one generator per core, shares as even as can be.
        """
        self.assertEqual(descriptors.generator_shares(1001, 2, 20_000), [501, 500])

    def test_small_fleet(self):
        """
        Never more generators than endpoints.
        """
        self.assertEqual(descriptors.generator_shares(1, 2, 20_000), [1])

    def test_past_the_limit(self):
        """
        100 000 endpoints under a limit of 20 000 take six generators, each
        under the limit with its reserve.
        """
        parts = descriptors.generator_shares(100_000, 2, 20_000)
        self.assertEqual(len(parts), 6)
        self.assertEqual(sum(parts), 100_000)
        self.assertLessEqual(max(parts) + descriptors.RESERVE, 20_000)

    def test_no_room(self):
        """
        A limit that leaves no room for a connection is refused.
        """
        self.assertRaises(
            descriptors.FleetTooLarge,
            descriptors.generator_shares, 10, 2, descriptors.RESERVE,
        )


class ConnectingTests(SynchronousTestCase):
    """
    L{descriptors.connecting} divides L{descriptors.STARTING} between the
    generators.
    """

    def test_divided(self):
        """
        Two generators open 48 each, six 16 each: 96 in all, under the
        server's default MaxStartups start of 100.
        """
        self.assertEqual(descriptors.connecting(2), 48)
        self.assertEqual(descriptors.connecting(6), 16)

    def test_at_least_one(self):
        """
        However many generators, each opens at least one at a time.
        """
        self.assertEqual(descriptors.connecting(500), 1)


class ConnectTimeoutTests(SynchronousTestCase):
    """
    L{connect_timeout} grows with the fleet past its floor.
    """

    def test_floor(self):
        """
        A small fleet gets L{CONNECT_TIMEOUT}.
        """
        self.assertEqual(connect_timeout(1000), CONNECT_TIMEOUT)

    def test_large(self):
        """
        100 000 endpoints get 1000 s: connecting them at a few hundred a
        second takes minutes.
        """
        self.assertEqual(connect_timeout(100_000), 1000.0)
