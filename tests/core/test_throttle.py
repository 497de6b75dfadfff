"""
Tests for L{suto_server.core.throttle.PacedLog}, the pacing of the log
lines both ends write about what the network sends.
"""

from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import Logger, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.throttle import PacedLog


class PacedLogTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.log = Logger(namespace="paced")
        self.paced = PacedLog(self.clock, 10.0)
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def emit(self, key, times=1):
        for _ in range(times):
            self.paced.emit(self.log, LogLevel.warn, key, "from {source}", source=key[0])

    def test_once_per_interval(self):
        """
        The first line of a key is written at once; the next only after
        the interval, saying how many alike were kept quiet, in its text
        and its C{quiet} field.
        """
        self.emit(("192.0.2.1", "reason"), times=1000)
        self.clock.advance(9.9)
        self.emit(("192.0.2.1", "reason"))
        self.clock.advance(0.1)
        self.emit(("192.0.2.1", "reason"))
        self.assertEqual(
            [formatEvent(event) for event in self.observer],
            [
                "from 192.0.2.1",
                "from 192.0.2.1 (1000 more alike since the last report)",
            ],
        )
        self.assertEqual([event["quiet"] for event in self.observer], [0, 1000])
        self.assertEqual(self.observer[0]["log_level"], LogLevel.warn)
        self.assertEqual(self.observer[0]["log_namespace"], "paced")

    def test_keys_apart(self):
        """
        Other sources, and other reasons from one source, are paced apart.
        """
        self.emit(("192.0.2.1", "reason"), times=5)
        self.emit(("192.0.2.2", "reason"), times=5)
        self.emit(("192.0.2.1", "other"), times=5)
        self.assertEqual(len(self.observer), 3)
