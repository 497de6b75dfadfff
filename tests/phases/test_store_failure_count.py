"""
Tests that a connection counts each exchange it answers busy because the
store failed (L{ServerFactory}'s C{store_failed}, the metric
C{suto_store_failures_total}) under the exchange that failed; that each
is counted though the log is paced is in C{tests.phases.test_store_failure}.
"""

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.phases.classic import ClassicDriver
from suto_server.phases.enrollment import EnrollmentDriver
from suto_server.phases.rotation import RotationDriver
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.errors import StoreError
from tests.support.factories import framed_factory
from tests.support.pools import ImmediatePool

AWAY = StoreError("the database went away")


class ExchangeTests(SynchronousTestCase):
    """
    L{ServerProtocol.undecided} counts a store's failure under the
    exchange of the code that could not decide.
    """

    def setUp(self):
        clock = task.Clock()
        self.counted = []
        factory = framed_factory(
            clock, ImmediatePool(), Rendezvous(clock), store_failed=self.counted.append
        )
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(
            StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.5", 40000))
        )

    def test_by_driver(self):
        """
        A failure logged by a phase's driver counts under that phase; one
        logged by the connection before any phase began, under the
        opening.
        """
        with capturedLogs():
            for log in (
                ClassicDriver.log,
                EnrollmentDriver.log,
                RotationDriver.log,
                self.protocol.log,
            ):
                self.protocol.undecided(log, Failure(AWAY), "deciding")
        self.assertEqual(
            self.counted, ["classic", "enrollment", "rotation", "opening"]
        )

    def test_not_the_store(self):
        """
        A fault that is not the store's is not an outage: not counted.
        """
        self.protocol.undecided(
            RotationDriver.log, Failure(ValueError("a bug")), "deciding"
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(self.counted, [])
