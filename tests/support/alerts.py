"""
A recording alert sink, for tests that follow what reaches an operator
(tests/audit/test_aggregation.py checks it provides L{IAlertSink}).
"""

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
