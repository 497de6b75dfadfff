"""
Tests for L{suto_server.startup.ServingCollector}: the cyclic garbage
collector's settings while the server serves, and their undoing.
"""

import gc
import weakref

from twisted.trial.unittest import SynchronousTestCase

from suto_server.startup import YOUNG_THRESHOLD, ServingCollector


class _Cycle:
    """
    An object that refers to itself, so only the cyclic collector frees it.
    """

    def __init__(self):
        self.me = self


class ServingCollectorTests(SynchronousTestCase):
    """
    What starting and stopping L{ServingCollector} does to the collector.
    """

    def setUp(self):
        self.before = gc.get_threshold()
        self.collector = ServingCollector()
        # Whatever a test leaves, the collector goes back as it was.
        self.addCleanup(gc.set_threshold, *self.before)
        self.addCleanup(gc.unfreeze)
        self.addCleanup(self.collector.stopService)

    def test_start_freezes_and_raises_young_threshold(self):
        """
        Starting collects and freezes what exists, so a collection no
        longer reads it, and collects the youngest generation every
        L{YOUNG_THRESHOLD} allocations, the older ones as before.
        """
        self.collector.startService()
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertEqual(gc.get_threshold(), (YOUNG_THRESHOLD, *self.before[1:]))

    def test_garbage_collected_before_freezing(self):
        """
        Cyclic garbage that exists when the server starts is collected,
        not frozen; what start-up left alive is frozen, out of the
        generations every collection reads.
        """
        gc.disable()
        self.addCleanup(gc.enable)
        garbage = _Cycle()
        freed = weakref.ref(garbage)
        del garbage
        alive = _Cycle()
        self.collector.startService()
        self.assertIsNone(freed())
        self.assertFalse(any(thing is alive for thing in gc.get_objects()))

    def test_later_garbage_collected(self):
        """
        What the server allocates after start, cyclic garbage included,
        is still collected.
        """
        self.collector.startService()
        garbage = _Cycle()
        freed = weakref.ref(garbage)
        del garbage
        gc.collect()
        self.assertIsNone(freed())

    def test_stop_restores(self):
        """
        Stopping unfreezes and puts the thresholds back as they were.
        """
        self.collector.startService()
        self.collector.stopService()
        self.assertEqual((gc.get_freeze_count(), gc.get_threshold()), (0, self.before))

    def test_last_stop_restores(self):
        """
        With two servers in one process, the settings stay until the last
        one stops, then go back to what they were before the first.
        """
        other = ServingCollector()
        self.addCleanup(other.stopService)
        self.collector.startService()
        other.startService()
        self.collector.stopService()
        self.assertEqual(gc.get_threshold()[0], YOUNG_THRESHOLD)
        self.assertGreater(gc.get_freeze_count(), 0)
        other.stopService()
        self.assertEqual((gc.get_freeze_count(), gc.get_threshold()), (0, self.before))

    def test_stop_unstarted(self):
        """
        Stopping a collector that never started changes nothing.
        """
        gc.set_threshold(1234, 5, 6)
        self.collector.stopService()
        self.assertEqual(gc.get_threshold(), (1234, 5, 6))
