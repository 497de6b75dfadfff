"""
Tests for L{suto_server.audit.aggregation} and for the audit log's use of
it: alerts any peer could raise at will reach the sinks gathered per
source and type, while the audit log and the metrics still see every
event.
"""

from dataclasses import replace

from twisted.internet import task
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.audit.aggregation import DEFAULT_INTERVAL, AlertAggregator
from suto_server.audit.alerts import VARIED_REASONS, Alert
from suto_server.audit.interfaces import IAlertSink
from suto_server.audit.log import AuditLog
from suto_server.metrics import ServerMetrics
from suto_server.settings import Alerting
from suto_server.store.memory import MemoryStore
from tests.support.alerts import RecordingSink
from tests.support.server import make_server

NOW = 1_700_000_000.0


def probe(offset=0.0, source="10.9.0.4", alert_type="enrollment_failed"):
    """
    The alert of one failed enrollment, C{offset} seconds after L{NOW}.
    """
    return Alert(alert_type, NOW + offset, "alice", ("lab",), "wrong_password", source)


class RecordingSinkTests(SynchronousTestCase):
    """
    The recording sink the rules' tests watch alerts with is an alert sink.
    """

    def test_interface(self):
        """
        L{RecordingSink} provides L{IAlertSink}.
        """
        self.assertTrue(verifyObject(IAlertSink, RecordingSink()))


class JoinedTests(SynchronousTestCase):
    """
    L{Alert.joined} makes one alert of two of the same type and source.
    """

    def test_shared(self):
        """
        What both alerts say is kept, the time is the later one's and the
        counts add up.
        """
        self.assertEqual(probe(1).joined(probe(2)), replace(probe(2), count=2))
        self.assertEqual(
            replace(probe(1), count=3).joined(probe(2)), replace(probe(2), count=4)
        )

    def test_differing(self):
        """
        A profile, locations or reason the alerts differ on is left out
        (the reason says they vary), so a gathered alert never pins on one
        profile what a peer did to several.
        """
        later = Alert(
            "enrollment_failed", NOW + 2, "bob", ("lab-east",), "expired", "10.9.0.4"
        )
        joined = probe(1).joined(later)
        self.assertEqual(
            (
                joined.time,
                joined.profile,
                joined.locations,
                joined.reason,
                joined.count,
            ),
            (NOW + 2, None, (), VARIED_REASONS, 2),
        )


class AlertAggregatorTests(SynchronousTestCase):
    """
    L{AlertAggregator} delivers the first alert of a source and type at
    once and one for the rest when the interval ends.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.delivered = []
        self.aggregator = AlertAggregator(
            self.clock, self.delivered.append, interval=60.0, capacity=3
        )

    def counted(self):
        return [(alert.type, alert.source, alert.count) for alert in self.delivered]

    def test_first_at_once(self):
        """
        The first alert of a source and type goes out at once, unchanged.
        """
        self.aggregator.offer(probe())
        self.assertEqual(self.delivered, [probe()])

    def test_rest_when_the_interval_ends(self):
        """
        Later alerts of the same source and type within the interval are
        counted and go out as one when it ends, dated by the last.
        """
        for offset in range(5):
            self.aggregator.offer(probe(offset))
        self.assertEqual(self.delivered, [probe(0)])
        self.clock.advance(59.9)
        self.assertEqual(len(self.delivered), 1)
        self.clock.advance(0.1)
        self.assertEqual(self.delivered, [probe(0), replace(probe(4), count=4)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_alone(self):
        """
        An interval in which nothing followed the first alert ends
        without a second one.
        """
        self.aggregator.offer(probe())
        self.clock.advance(60)
        self.assertEqual(self.delivered, [probe()])

    def test_next_interval(self):
        """
        After an interval ends, the next alert opens a new one and goes
        out at once again.
        """
        self.aggregator.offer(probe(0))
        self.aggregator.offer(probe(1))
        self.clock.advance(60)
        self.aggregator.offer(probe(61))
        self.assertEqual(self.delivered, [probe(0), probe(1), probe(61)])

    def test_per_source_and_type(self):
        """
        Each source and each type has its own interval.
        """
        self.aggregator.offer(probe(source="10.9.0.4"))
        self.aggregator.offer(probe(source="10.9.0.5"))
        self.aggregator.offer(probe(alert_type="reconnect_failed"))
        self.aggregator.offer(probe(source="10.9.0.4"))
        self.assertEqual(
            self.counted(),
            [
                ("enrollment_failed", "10.9.0.4", 1),
                ("enrollment_failed", "10.9.0.5", 1),
                ("reconnect_failed", "10.9.0.4", 1),
            ],
        )
        self.clock.advance(60)
        self.assertEqual(self.counted()[3:], [("enrollment_failed", "10.9.0.4", 1)])

    def test_every_profile_named(self):
        """
        Decoys naming another profile from the same source cannot hide
        the alert about a victim: each profile has its own interval, so
        the victim's alert goes out at once and by name.
        """
        decoy = replace(probe(0, alert_type="clone_suspected"), profile="decoy")
        victim = replace(probe(1, alert_type="clone_suspected"), profile="victim")
        self.aggregator.offer(decoy)
        self.aggregator.offer(victim)
        self.aggregator.offer(replace(decoy, time=NOW + 2))
        self.assertEqual(self.delivered, [decoy, victim])
        self.clock.advance(60)
        self.assertEqual(
            [(alert.profile, alert.count) for alert in self.delivered[2:]],
            [("decoy", 1)],
        )

    def test_capacity(self):
        """
        Opening an interval beyond the capacity ends the oldest first,
        delivering what it gathered, so the table stays bounded.
        """
        self.aggregator.offer(probe(source="10.9.0.1"))
        self.aggregator.offer(probe(source="10.9.0.1"))
        self.aggregator.offer(probe(source="10.9.0.2"))
        self.aggregator.offer(probe(source="10.9.0.3"))
        self.aggregator.offer(probe(source="10.9.0.4"))
        self.assertEqual(
            [(alert.source, alert.count) for alert in self.delivered],
            [
                ("10.9.0.1", 1),
                ("10.9.0.2", 1),
                ("10.9.0.3", 1),
                ("10.9.0.1", 1),
                ("10.9.0.4", 1),
            ],
        )
        self.assertEqual(len(self.clock.getDelayedCalls()), 3)
        # 10.9.0.1's interval ended: its next alert opens a new one.
        self.aggregator.offer(probe(source="10.9.0.1"))
        self.assertEqual(self.delivered[-1].source, "10.9.0.1")

    def test_flush(self):
        """
        C{flush} ends every interval now: what each gathered goes out and
        no timer is left behind.
        """
        for source in ["10.9.0.1", "10.9.0.2"]:
            for offset in range(3):
                self.aggregator.offer(probe(offset, source=source))
        self.aggregator.flush()
        self.assertEqual(
            [(alert.source, alert.count) for alert in self.delivered],
            [("10.9.0.1", 1), ("10.9.0.2", 1), ("10.9.0.1", 2), ("10.9.0.2", 2)],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])


class AuditLogAggregationTests(SynchronousTestCase):
    """
    L{AuditLog.record} with a clock: an unproven alert is gathered, any
    other goes out at once, and every event is recorded and observed.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.sinks = [RecordingSink(), RecordingSink()]
        for sink in self.sinks:
            verifyObject(IAlertSink, sink)
        self.metrics = ServerMetrics()
        self.audit = AuditLog(
            self.store,
            self.sinks,
            observers=[self.metrics.audited],
            clock=self.clock,
        )

    def probe(self, times, event="enrollment_failed", unproven=True):
        for _ in range(times):
            self.audit.record(
                self.clock.seconds(),
                event,
                "alice",
                "10.9.0.4",
                "wrong_password",
                ("lab",),
                unproven=unproven,
            )

    def test_timing_probe(self):
        """
        100 unproven failures from one source are 100 audit records, an
        intact chain and 100 counted alerts, but only two alerts at each
        sink: the first at once and one with a count of 99 when the
        interval ends.
        """
        self.probe(100)
        self.assertEqual(len(self.store.audit_events()), 100)
        self.assertEqual(self.successResultOf(self.audit.verify()), [])
        self.assertEqual(
            self.metrics.registry.get_sample_value(
                "suto_alerts_total", {"type": "enrollment_failed"}
            ),
            100,
        )
        self.assertEqual(
            [sink.counted() for sink in self.sinks], [[("enrollment_failed", 1)]] * 2
        )
        self.clock.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            [sink.counted() for sink in self.sinks],
            [[("enrollment_failed", 1), ("enrollment_failed", 99)]] * 2,
        )
        self.assertEqual(len(self.successResultOf(self.audit.alerts(1000))), 100)

    def test_proven_at_once(self):
        """
        An alert that follows a proof goes out at once every time.
        """
        self.probe(3, event="clone_suspected", unproven=False)
        self.assertEqual(self.sinks[0].counted(), [("clone_suspected", 1)] * 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_without_clock(self):
        """
        An audit log without a clock (a command that records and exits)
        hands every alert on at once.
        """
        sink = RecordingSink()
        audit = AuditLog(self.store, [sink])
        for _ in range(2):
            audit.record(
                NOW, "enrollment_failed", "alice", "10.9.0.4", "x", unproven=True
            )
        self.assertEqual(sink.counted(), [("enrollment_failed", 1)] * 2)

    def test_not_an_alert(self):
        """
        An event that is no alert reaches no sink and opens no interval,
        unproven or not.
        """
        self.probe(2, event="enrollment_abandoned")
        self.assertEqual(self.sinks[0].alerts, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flush_alerts(self):
        """
        L{AuditLog.flush_alerts} delivers what is being gathered at once.
        """
        self.probe(4)
        self.audit.flush_alerts()
        self.assertEqual(
            self.sinks[0].counted(),
            [("enrollment_failed", 1), ("enrollment_failed", 3)],
        )


class ServerStopTests(SynchronousTestCase):
    """
    The server gathers unproven alerts on its reactor and delivers what it
    gathered when it stops.
    """

    def test_stop_flushes(self):
        """
        Stopping the server delivers the pending aggregate before the
        sinks stop.
        """
        sink = RecordingSink()
        reactor = MemoryReactorClock()
        server = make_server(reactor, alerting=Alerting(sinks=(sink,)))
        server.startService()
        for _ in range(3):
            server.audit.record(
                reactor.seconds(),
                "rate_limited",
                None,
                "10.9.0.4",
                "failed too often",
                unproven=True,
            )
        self.assertEqual(sink.counted(), [("rate_limited", 1)])
        self.successResultOf(server.stopService())
        self.assertEqual(sink.counted(), [("rate_limited", 1), ("rate_limited", 2)])
