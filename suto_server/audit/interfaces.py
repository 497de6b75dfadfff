# -*- test-case-name: tests.audit.test_aggregation,tests.audit.test_log,tests.audit.test_sinks -*-
"""
The boundary between the audit log and the places its alerts go.
"""

from zope.interface import Interface


class IAlertSink(Interface):
    """
    Somewhere alerts go as they happen: the structured log, a JSON-lines
    file, a webhook, syslog.  A sink is called from the code that decides
    an authentication or an enrollment, so it must return at once and
    never raise into its caller: a sink that cannot deliver logs why and
    drops or retries the alert on its own.
    """

    def deliver(alert):
        """
        Send an alert on its way.

        @param alert: an L{suto_server.audit.alerts.Alert}.
        @return: L{None}, or a L{twisted.internet.defer.Deferred} that
            fires when this sink is done with the alert (it never fails);
            callers need not wait for it.
        """
