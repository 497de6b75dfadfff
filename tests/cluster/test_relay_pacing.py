"""
Tests that a relay whose store is away says so at a pace: every notice
fails while it is (a C{here} notice every L{HERE_EVERY} seconds), and the
log has one line per L{UNSENT_LOG_EVERY} seconds for all of them, saying
how many it kept quiet.
"""

from twisted.internet import reactor, task
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.cluster.relay import HERE_EVERY, UNSENT_LOG_EVERY, Relay
from tests.support.channel import NOTICE_KEY, Channel, ChannelSession


class UnsentPacingTests(SynchronousTestCase):
    """
    The warning that the other processes could not be told of a request.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.channel = Channel()
        self.relay = Relay(
            reactor, ChannelSession(self.channel), clock=self.clock, key=NOTICE_KEY
        )
        self.channel.relays.append(self.relay)

    def send_for(self, seconds: float) -> list:
        """
        Send a C{here} notice every L{HERE_EVERY} seconds for C{seconds}.

        @return: the warnings logged meanwhile.
        """
        with capturedLogs() as events:
            for _ in range(int(seconds / HERE_EVERY)):
                self.assertFalse(self.successResultOf(self.relay.send("here", 0)))
                self.clock.advance(HERE_EVERY)
        return [e for e in events if e["log_level"] == LogLevel.warn]

    def test_paced(self):
        """
        While the store is away, the first unsent notice is logged with
        the store's error, then one line per L{UNSENT_LOG_EVERY} seconds
        with the count kept quiet since; once the store is back the
        notices go out and nothing is logged.
        """
        self.channel.down = True
        warnings = self.send_for(2 * UNSENT_LOG_EVERY)
        per_line = int(UNSENT_LOG_EVERY / HERE_EVERY)
        self.assertEqual([e["quiet"] for e in warnings], [0, per_line - 1])
        self.assertTrue(all(e["error"] for e in warnings))
        self.assertIn("more alike since the last report", warnings[1]["log_format"])
        self.channel.down = False
        with capturedLogs() as events:
            self.assertTrue(self.successResultOf(self.relay.send("here", 0)))
        self.assertEqual(list(events), [])
