"""
Alert sinks that keep what they are given.

The audit log's tests and the server's wiring tests check which alerts
reached which sink, and that a sink which is a service runs with the
server.
"""

from twisted.application.service import Service
from zope.interface import implementer

from suto_server.interfaces import IAlertSink


@implementer(IAlertSink)
class RecordingSink:
    """
    Keeps every alert delivered to it.
    """

    def __init__(self):
        self.alerts = []

    def deliver(self, alert):
        self.alerts.append(alert)


class ServiceSink(Service, RecordingSink):
    """
    A sink that must run with the server.
    """

    def __init__(self):
        RecordingSink.__init__(self)
