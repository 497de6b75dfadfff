# -*- test-case-name: tests.audit.test_sinks -*-
"""
Alerts as structured log events: always on, whatever else is configured.

Each alert is one warning from L{twisted.logger} whose fields include the
whole alert as JSON-ready data, so a JSON log observer (C{twistd --logger}
with L{twisted.logger.jsonFileLogObserver}) writes it as one JSON line and
the text log shows it as one readable line.
"""

from twisted.logger import Logger
from zope.interface import implementer

from suto_server.audit.interfaces import IAlertSink


@implementer(IAlertSink)
class LogSink:
    """
    Logs every alert as a warning.
    """

    log = Logger()

    def deliver(self, alert) -> None:
        """
        See L{IAlertSink.deliver}.
        """
        self.log.warn(
            "alert {alert_type} for {profile} from {source} at {locations}: "
            "{reason}",
            alert_type=alert.type,
            profile=alert.profile or "-",
            source=alert.source or "-",
            locations=", ".join(alert.locations) or "-",
            reason=alert.reason,
            alert=alert.to_json(),
        )
