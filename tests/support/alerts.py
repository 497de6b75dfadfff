"""
Alert sinks that keep what they are given, for tests that follow what
reaches an operator: the rules' and the audit log's tests check which
alerts reached a sink, and the server's wiring tests that a sink which is
a service runs with the server (tests/audit/test_aggregation.py checks
L{RecordingSink} provides L{IAlertSink}).
"""

from twisted.application.service import Service
from zope.interface import implementer

from suto_server.audit.interfaces import IAlertSink


@implementer(IAlertSink)
class RecordingSink:
    """
    Keeps every alert delivered to it, in order.
    """

    def __init__(self):
        self.alerts = []

    def deliver(self, alert):
        self.alerts.append(alert)

    def counted(self):
        """
        @return: C{(type, count)} of every alert delivered, in order.
        """
        return [(alert.type, alert.count) for alert in self.alerts]


class ServiceSink(Service, RecordingSink):
    """
    A recording sink that must run with the server.
    """

    def __init__(self):
        RecordingSink.__init__(self)
