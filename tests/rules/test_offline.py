"""
Offline detection (L{OfflineWatch}) over both stores on a L{task.Clock}:
when a silent profile is marked offline, which profiles are skipped, that
a committed rotation brings one back, and that a failing store does not
stop the sweeps.
"""

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.core.timing import silence_allowed
from suto_server.rules.offline import MAX_SWEEP, OfflineWatch
from suto_server.store.calls import LocalCalls
from suto_server.store.errors import StoreError
from tests.support.coroutines import result_of
from tests.support.reconnection import ReconnectionMixin, reconnect_message
from tests.support.rotation import NOW, enroll
from tests.support.stores import MemoryStoreMixin, SQLiteStoreMixin

INTERVAL = 60.0
GRACE = 30.0
#: interval * 1.1 + grace.
ALLOWED = 96.0


class RecordingStore:
    """
    A store that records every C{mark_offline} call, and whose
    C{silent_profiles} raises the errors in C{failures} first and calls
    C{meanwhile} after its query.
    """

    def __init__(self, store):
        self._store = store
        self.marked = []
        self.failures = []

    def silent_profiles(self, before):
        if self.failures:
            raise self.failures.pop(0)
        silent = self._store.silent_profiles(before)
        self.meanwhile()
        return silent

    def meanwhile(self):
        """
        What happens between the query and the marking (nothing here).
        """

    def mark_offline(self, usernames, now, silent_before=None):
        self.marked.append((list(usernames), now))
        return self._store.mark_offline(usernames, now, silent_before)


class WatchedMixin(ReconnectionMixin):
    """
    An L{OfflineWatch} with a 60 s interval and a 30 s grace over the
    store of a store mixin, on the rules' clock; C{alice} and C{bob} are
    enrolled at L{NOW} and C{self.live} holds the profiles with a live
    connection.
    """

    def setUp(self):
        super().setUp()
        self.bob = enroll(self.store, self.master_key, "bob")
        self.live = set()
        self.watch = self.make_watch(self.store)

    def make_watch(self, store, grace=GRACE):
        watch = OfflineWatch(
            self.clock, LocalCalls(store), INTERVAL, grace, self.live.__contains__
        )
        watch.startService()
        self.addCleanup(watch.stopService)
        return watch


class OfflineWatchMixin(WatchedMixin):
    """
    Detection over a real store.
    """

    def test_allowed(self):
        """
        A profile may stay silent for the interval, 10% of it (the agent's
        jitter) and the grace.
        """
        self.assertAlmostEqual(silence_allowed(INTERVAL, GRACE), ALLOWED)

    def test_marked_after_allowed_silence(self):
        """
        A profile last seen at L{NOW} is not offline at NOW + 96 s; the
        first sweep after that marks it, with that sweep's time; the
        sweeps run every 10 s.
        """
        self.clock.advance(ALLOWED - 6)
        self.assertEqual(self.store.offline_profiles(), {})
        self.assertEqual(result_of(self, self.watch.sweep()), [])
        self.clock.advance(6)
        self.assertEqual(result_of(self, self.watch.sweep()), [])
        self.clock.advance(4)
        self.assertEqual(
            self.store.offline_profiles(),
            {"alice": NOW + ALLOWED + 4, "bob": NOW + ALLOWED + 4},
        )

    def test_exact_deadline(self):
        """
        Just past the allowed silence the sweep marks the profiles, and
        reports the names it marked; a second sweep marks nothing new.
        """
        self.watch.stopService()
        self.clock.advance(ALLOWED + 0.5)
        self.assertEqual(result_of(self, self.watch.sweep()), ["alice", "bob"])
        self.assertEqual(result_of(self, self.watch.sweep()), [])
        self.assertEqual(self.store.offline_since("alice"), NOW + ALLOWED + 0.5)

    def test_live_skipped(self):
        """
        A profile with a live connection is never marked, however long its
        last rotation is ago (its connection is between rotations).
        """
        self.live.add("alice")
        self.clock.pump([MAX_SWEEP] * 100)
        self.assertEqual(list(self.store.offline_profiles()), ["bob"])

    def test_rotation_brings_back(self):
        """
        After a reconnection and the rotation that follows commit, the
        profile is online again and is marked again only after another
        allowed silence from the commit.
        """
        self.clock.advance(ALLOWED + MAX_SWEEP)
        self.assertIsNotNone(self.store.offline_since("alice"))
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.rotate_reconnected(accepted)
        committed = self.now()
        self.assertIsNone(self.store.offline_since("alice"))
        self.clock.advance(ALLOWED - 1)
        self.assertIsNone(self.store.offline_since("alice"))
        self.clock.pump([MAX_SWEEP] * 2)
        self.assertGreater(self.store.offline_since("alice"), committed + ALLOWED)

    def test_rotated_during_sweep(self):
        """
        A rotation committed after the sweep found the profile silent, and
        before the sweep marked it (rotations commit on another thread),
        keeps the profile online; the others are marked.
        """
        self.watch.stopService()
        recording = RecordingStore(self.store)
        self.clock.advance(ALLOWED + 1)
        recording.meanwhile = self.rotate
        watch = OfflineWatch(
            self.clock, LocalCalls(recording), INTERVAL, GRACE, self.live.__contains__
        )
        self.assertEqual(result_of(self, watch.sweep()), ["bob"])
        self.assertIsNone(self.store.offline_since("alice"))

    def test_rotation_keeps_online(self):
        """
        A profile that rotates every interval is never marked.
        """
        for _ in range(5):
            self.clock.pump([MAX_SWEEP] * 6)
            self.rotate()
        self.assertEqual(list(self.store.offline_profiles()), ["bob"])


class MemoryOfflineWatchTests(OfflineWatchMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Offline detection over a L{MemoryStore}.
    """


class SQLiteOfflineWatchTests(OfflineWatchMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Offline detection over a L{SQLiteStore}.
    """


class OfflineWatchStoreTests(WatchedMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    What the sweeps ask of the store, through a recording one.
    """

    def setUp(self):
        super().setUp()
        self.watch.stopService()
        self.recording = RecordingStore(self.store)

    def test_one_call(self):
        """
        Every silent profile is marked in one call, with the sweep's time,
        leaving out the live ones; a sweep with nobody to mark calls
        nothing.
        """
        watch = self.make_watch(self.recording)
        enroll(self.store, self.master_key, "carol")
        self.live.add("bob")
        self.assertEqual(self.recording.marked, [])
        self.clock.advance(ALLOWED + 1)
        result_of(self, watch.sweep())
        self.assertEqual(
            self.recording.marked, [(["alice", "carol"], NOW + ALLOWED + 1)]
        )

    def test_sweeps_at_start(self):
        """
        Starting sweeps at once: a server restarted after a long stop finds
        the profiles that fell silent meanwhile without waiting a period.
        """
        self.clock.advance(3600)
        self.make_watch(self.recording)
        self.assertEqual(self.recording.marked, [(["alice", "bob"], NOW + 3600)])

    def test_sweep_period(self):
        """
        The sweeps run every C{min(grace, MAX_SWEEP)} seconds.
        """
        self.make_watch(self.recording, grace=3.0)
        self.clock.pump([0.5] * int((INTERVAL * 1.1 + 3.0) * 2 + 1))
        self.assertEqual(self.recording.marked, [])
        self.clock.pump([0.5] * 4)
        self.assertEqual(self.recording.marked, [])
        self.clock.advance(0.5)
        self.assertEqual(
            self.recording.marked, [(["alice", "bob"], NOW + 72.0)]
        )

    def test_failing_store(self):
        """
        A sweep whose store fails is one warning naming the error, without
        a traceback (the store being away is no fault of the code), and
        the next sweep runs as usual.
        """
        self.recording.failures = [StoreError("disk gone")]
        with capturedLogs() as events:
            self.clock.advance(ALLOWED + 1)
            self.make_watch(self.recording)
        self.assertEqual(self.flushLoggedErrors(), [])
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            formatEvent(event),
            "sweeping for offline profiles failed: disk gone; the next sweep "
            "tries again",
        )
        self.assertEqual(self.recording.marked, [])
        self.clock.advance(MAX_SWEEP)
        self.assertEqual([names for names, _ in self.recording.marked], [["alice", "bob"]])

    def test_failing_code(self):
        """
        A sweep that fails for any other reason is logged with its
        traceback, and does not stop the next sweep either.
        """
        self.recording.failures = [ValueError("a bug")]
        with capturedLogs() as events:
            self.clock.advance(ALLOWED + 1)
            self.make_watch(self.recording)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(
            [event["log_format"] for event in events],
            ["sweeping for offline profiles failed"],
        )
        self.clock.advance(MAX_SWEEP)
        self.assertEqual([names for names, _ in self.recording.marked], [["alice", "bob"]])

    def test_logs_count(self):
        """
        A sweep that marks profiles logs how many, and no other sweep
        logs anything.
        """
        watch = self.make_watch(self.recording)
        with capturedLogs() as events:
            result_of(self, watch.sweep())
            self.clock.advance(ALLOWED + 1)
            result_of(self, watch.sweep())
        [event] = events
        self.assertEqual((event["count"], event["users"]), (2, ["alice", "bob"]))



class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        With no options the offline key has 30-second steps and a window
        of 2 steps either side.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual((options["offline-step"], options["offline-window"]), (30, 2))

    def test_seconds_bounded(self):
        """
        Every option in seconds takes at most a week, and refuses infinity
        and NaN: an infinite rotation interval or grace would otherwise
        start a server whose every offline sweep fails.
        """
        seconds = [
            parameter[0]
            for parameter in tap.Options.optParameters
            if parameter[4:] in ([tap._positive], [tap._seconds_or_off])
        ]
        self.assertIn("rotation-interval", seconds)
        self.assertIn("login-grace", seconds)
        for name in seconds:
            for value in ["inf", "nan", str(tap.MAX_SECONDS + 1)]:
                with self.subTest(name=name, value=value):
                    self.assertRaises(
                        usage.UsageError,
                        tap.Options().parseOptions,
                        [f"--{name}", value],
                    )
        options = tap.Options()
        options.parseOptions(
            ["--rotation-grace", str(tap.MAX_SECONDS), "--penalty-max", "604800"]
        )
        self.assertEqual(options["rotation-grace"], tap.MAX_SECONDS)

    def test_refused(self):
        """
        A step longer than the agent's offline deadline (its longest wait,
        the interval x 1.1) is a usage error, even within the server's
        allowance (which adds the grace): a profile's next offline spell
        could then fall in the step it spent, and its reconnection could
        only fail.  So are a step under a second and a window outside 0-10.
        """
        for argv in [
            ["--offline-step", "97"],
            ["--rotation-interval", "10", "--rotation-grace", "5", "--offline-step", "30"],
            ["--rotation-interval", "10", "--rotation-grace", "5", "--offline-step", "12"],
            ["--offline-step", "0"],
            ["--offline-window", "11"],
            ["--offline-window", "-1"],
        ]:
            options = tap.Options()
            self.assertRaises(usage.UsageError, options.parseOptions, argv)
        options = tap.Options()
        options.parseOptions(
            ["--rotation-interval", "10", "--rotation-grace", "5", "--offline-step", "11"]
        )
        self.assertEqual(options["offline-step"], 11)
