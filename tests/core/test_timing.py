"""
The rotation timing rules both ends share, and the places that must agree
with them: the agent's waits, when it marks itself offline, what the
server allows before a connection is dead or a profile offline, and the
offline time step and window every default is taken from; and how long
each side waits for an enrollment's commit.
"""

import inspect
from random import Random

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import enrollment as client_enrollment
from suto_client import tap as client_tap
from suto_server import tap as server_tap
from suto_server.core import keyschedule
from suto_server.core.timing import (
    DEFAULT_OFFLINE_STEP,
    DEFAULT_OFFLINE_WINDOW,
    DEFAULT_ROTATION_GRACE,
    DEFAULT_ROTATION_INTERVAL,
    ENROLLMENT_COMMIT_BOUND,
    JITTER,
    commit_wait,
    confirmation_wait,
    draw_wait,
    longest_wait,
    next_due,
    silence_allowed,
)
from suto_server.phases.rotation import RotationRules
from suto_server.phases.timeout import DEFAULT_RESOLUTION
from suto_server.rules.reconnection import Reconnection
from suto_server.settings import Timing
from suto_server.store.postgres import session

INTERVALS = [1.0, 10.0, 60.0, 3600.0]
GRACES = [0.0, 5.0, 30.0]


class Extreme:
    """
    A random source whose every draw is one end of the range asked for.
    """

    def __init__(self, high: bool) -> None:
        self._high = high

    def uniform(self, low: float, high: float) -> float:
        return high if self._high else low


class DrawWaitTests(SynchronousTestCase):
    def test_within_jitter(self):
        """
        Every wait lies within L{JITTER} of the interval, either way.
        """
        random = Random(1)
        for interval in INTERVALS:
            for _ in range(200):
                wait = draw_wait(interval, random)
                self.assertGreaterEqual(wait, interval * (1 - JITTER))
                self.assertLessEqual(wait, longest_wait(interval))

    def test_longest(self):
        """
        The longest wait is the one drawn at the top of the range, and the
        shortest the one drawn at its bottom.
        """
        for interval in INTERVALS:
            self.assertEqual(
                draw_wait(interval, Extreme(high=True)), longest_wait(interval)
            )
            self.assertEqual(
                draw_wait(interval, Extreme(high=False)),
                interval * (1 - JITTER),
            )

    def test_values(self):
        """
        The jitter is 10%: a minute's interval waits at most 66 seconds.
        """
        self.assertEqual(JITTER, 0.1)
        self.assertAlmostEqual(longest_wait(60.0), 66.0)


class DeadlineTests(SynchronousTestCase):
    def test_due_after_longest_wait(self):
        """
        The next junk is due the longest wait after the last agreement.
        """
        for interval in INTERVALS:
            self.assertEqual(
                next_due(1_700_000_000.0, interval),
                1_700_000_000.0 + longest_wait(interval),
            )

    def test_server_allows_longest_wait_and_grace(self):
        """
        What the server allows before marking a profile offline, minus the
        grace, is the agent's longest wait.
        """
        for interval in INTERVALS:
            for grace in GRACES:
                self.assertAlmostEqual(
                    silence_allowed(interval, grace) - grace,
                    longest_wait(interval),
                )

    def test_agent_first(self):
        """
        An agent marks itself offline no later than the server marks it:
        its deadline is never past the server's.
        """
        last = 1_700_000_000.0
        for interval in INTERVALS:
            for grace in GRACES:
                self.assertLessEqual(
                    next_due(last, interval),
                    last + silence_allowed(interval, grace),
                )

    def test_default_silence(self):
        """
        By default the server allows 96 seconds of silence: a minute, its
        10% jitter, and 30 seconds' grace.
        """
        self.assertEqual(
            silence_allowed(DEFAULT_ROTATION_INTERVAL, DEFAULT_ROTATION_GRACE),
            96.0,
        )


class DefaultsAgreeTests(SynchronousTestCase):
    """
    Every place that has a default for the rotation timing takes it from
    the shared rules, so the agent and the server agree out of the box.
    """

    def test_options(self):
        """
        C{twistd suto} and C{suto_client} default to the same interval,
        and the server to the shared grace.
        """
        self.assertEqual(
            client_tap.Options()["rotation-interval"], DEFAULT_ROTATION_INTERVAL
        )
        server = server_tap.Options()
        self.assertEqual(server["rotation-interval"], DEFAULT_ROTATION_INTERVAL)
        self.assertEqual(server["rotation-grace"], DEFAULT_ROTATION_GRACE)

    def test_service(self):
        """
        The server's timing settings default to the shared interval and
        grace, and allow a connection the shared silence.
        """
        settings = Timing()
        self.assertEqual(settings.rotation_interval, DEFAULT_ROTATION_INTERVAL)
        self.assertEqual(settings.rotation_grace, DEFAULT_ROTATION_GRACE)
        self.assertEqual(
            settings.idle_timeout,
            silence_allowed(DEFAULT_ROTATION_INTERVAL, DEFAULT_ROTATION_GRACE),
        )

    def test_idle_timeout(self):
        """
        A rotation listener lets a connection stay quiet for the default
        allowed silence unless told otherwise.
        """
        self.assertEqual(
            RotationRules(rotation=None).idle_timeout,
            silence_allowed(DEFAULT_ROTATION_INTERVAL, DEFAULT_ROTATION_GRACE),
        )

    def test_offline_options(self):
        """
        C{twistd suto} defaults to the shared offline step and window.
        """
        server = server_tap.Options()
        self.assertEqual(server["offline-step"], DEFAULT_OFFLINE_STEP)
        self.assertEqual(server["offline-window"], DEFAULT_OFFLINE_WINDOW)

    def test_offline_defaults(self):
        """
        The server's L{Timing} settings, the L{Reconnection} rules and the key schedule's
        step arithmetic all default to the shared offline step and window,
        so a server built without them counts steps as an agent does.
        """
        places = [
            (Timing, ["offline_step", "offline_window"]),
            (Reconnection, ["step", "window"]),
            (keyschedule.time_step, ["step"]),
            (keyschedule.candidate_steps, ["step", "window"]),
        ]
        defaults = {}
        for function, names in places:
            parameters = inspect.signature(function).parameters
            for name in names:
                defaults[f"{function.__name__}.{name}"] = parameters[name].default
        self.assertEqual(
            defaults,
            {
                "Timing.offline_step": DEFAULT_OFFLINE_STEP,
                "Timing.offline_window": DEFAULT_OFFLINE_WINDOW,
                "Reconnection.step": DEFAULT_OFFLINE_STEP,
                "Reconnection.window": DEFAULT_OFFLINE_WINDOW,
                "time_step.step": DEFAULT_OFFLINE_STEP,
                "candidate_steps.step": DEFAULT_OFFLINE_STEP,
                "candidate_steps.window": DEFAULT_OFFLINE_WINDOW,
            },
        )

    def test_offline_values(self):
        """
        The offline step is TOTP's 30 seconds, and a reconnection may be
        two steps away from the server's clock either way: the values the
        deployed agents and docs/PROTOCOL.md §7.4 assume.
        """
        self.assertEqual((DEFAULT_OFFLINE_STEP, DEFAULT_OFFLINE_WINDOW), (30, 2))

    def test_usage_names_jitter(self):
        """
        The server's usage error for an offline step longer than the
        agent's offline deadline spells the rule with the shared jitter.
        """
        options = server_tap.Options()
        error = self.assertRaises(
            usage.UsageError, options.parseOptions, ["--offline-step", "97"]
        )
        self.assertIn(
            "(--rotation-interval x 1.1 = 66 s)", str(error)
        )


class EnrollmentCommitTests(SynchronousTestCase):
    """
    The server waits for an enrollment's commit longer than the store
    takes to fail, and the agent waits for the answer longer than that.
    """

    def test_above_store_bounds(self):
        """
        The commit's bound is above the longest a PostgreSQL call takes to
        fail by the session's own bounds: a connect timeout, then a lock
        waited for, then the network's loss noticed by the keepalives or
        the TCP user timeout.
        """
        client = session.CLIENT_DEFAULTS
        server = session.SESSION_DEFAULTS
        keepalives = int(client["keepalives_idle"]) + int(
            client["keepalives_interval"]
        ) * int(client["keepalives_count"])
        network = max(keepalives, int(client["tcp_user_timeout"]) / 1000)
        lock = int(server["lock_timeout"].rstrip("s"))
        longest = int(client["connect_timeout"]) + lock + network
        self.assertLess(longest, ENROLLMENT_COMMIT_BOUND)

    def test_commit_wait(self):
        """
        The server waits its exchange timeout for the commit, or the bound
        when that is longer.
        """
        self.assertEqual(commit_wait(10.0), ENROLLMENT_COMMIT_BOUND)
        longer = ENROLLMENT_COMMIT_BOUND + 5
        self.assertEqual(commit_wait(longer), longer)

    def test_agent_outwaits_server(self):
        """
        With the defaults, the agent waits for the confirmation longer
        than the server waits for the commit, the wheel's late slot
        included, so the agent hears what the server decided.
        """
        exchange_timeout = server_tap.Options()["exchange-timeout"]
        server = commit_wait(exchange_timeout) + DEFAULT_RESOLUTION
        agent = confirmation_wait(client_enrollment.DEFAULT_TIMEOUT)
        self.assertGreater(agent, server)

    def test_longer_agent_timeout_kept(self):
        """
        An agent given a longer timeout than the wait keeps its own.
        """
        self.assertEqual(confirmation_wait(120.0), 120.0)
        self.assertGreater(confirmation_wait(1.0), ENROLLMENT_COMMIT_BOUND)
