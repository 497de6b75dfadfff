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


class ForgedSourcesTests(SynchronousTestCase):
    """
    Pacing per source cannot stop datagrams with forged source addresses,
    every new one being due: the lines of one kind are capped across
    sources too.
    """

    def setUp(self):
        self.clock = Clock()
        self.log = Logger(namespace="paced")
        self.paced = PacedLog(self.clock, 10.0, max_lines=3)
        self.observer = EventLoggingObserver.createWithCleanup(
            self, globalLogPublisher
        )

    def emit(self, source, text="from {source}", **fields):
        self.paced.emit(
            self.log, LogLevel.info, (source, text, fields.get("reason")), text,
            source=source, **fields,
        )

    def test_capped_across_sources(self):
        """
        Past the cap, lines of one kind from new sources are kept quiet
        until the interval is over; the next line is preceded by a summary
        saying how many were, at the level of the lines it summarises.
        """
        for n in range(1000):
            self.emit(f"10.0.{n // 256}.{n % 256}")
        self.assertEqual(len(self.observer), 3)
        self.clock.advance(10)
        self.emit("192.0.2.1")
        self.assertEqual(
            [formatEvent(event) for event in self.observer][3:],
            [
                (
                    "kept quiet 997 lines from all sources like "
                    "'from {source}': more than 3 came within 10.0 seconds"
                ),
                "from 192.0.2.1",
            ],
        )
        self.assertEqual(self.observer[3]["quiet"], 997)
        self.assertEqual(self.observer[3]["log_level"], LogLevel.info)

    def test_no_summary_without_quiet(self):
        """
        An interval that kept nothing quiet needs no summary.
        """
        self.emit("192.0.2.1")
        self.clock.advance(10)
        self.emit("192.0.2.2")
        self.assertEqual(len(self.observer), 2)

    def test_kinds_apart(self):
        """
        Another format, or another C{reason} field, has a cap of its own.
        """
        for n in range(10):
            self.emit(f"10.0.0.{n}")
            self.emit(f"10.0.0.{n}", text="other from {source}")
            self.emit(f"10.0.0.{n}", reason="first")
            self.emit(f"10.0.0.{n}", reason="second")
        self.assertEqual(len(self.observer), 12)

    def test_real_sources_kept(self):
        """
        Lines kept quiet by the cap do not enter the per-source table, so
        however many forged sources come, a real source seen before the
        flood is still paced, its count intact.
        """
        self.emit("10.9.9.9")
        self.clock.advance(5)
        self.emit("192.0.2.1")
        for n in range(10000):
            self.emit(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        self.clock.advance(5)
        self.emit("192.0.2.1")
        self.clock.advance(5)
        self.emit("192.0.2.1")
        self.assertEqual(
            [(event.get("source"), event["quiet"]) for event in self.observer],
            [
                ("10.9.9.9", 0),
                ("192.0.2.1", 0),
                ("10.0.0.0", 0),
                (None, 9999),
                ("192.0.2.1", 1),
            ],
        )
