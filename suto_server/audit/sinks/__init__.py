# -*- test-case-name: tests.audit.test_sinks -*-
"""
Where alerts go: one module per L{suto_server.audit.interfaces.IAlertSink}.
"""

from __future__ import annotations

import os

from twisted.web.client import Agent

from suto_server.audit.sinks.jsonfile import JsonFileSink
from suto_server.audit.sinks.syslog import SyslogSink
from suto_server.audit.sinks.webhook import WebhookSink


def alert_sinks(reactor, *, file=None, webhook=None, syslog=None) -> list:
    """
    The alert sinks an operator asked for, besides the structured log,
    which is always on.

    @param file: the path of a file to append alerts to; it is checked
        now, so a file the server cannot write stops it at start.
    @param webhook: a URL to POST alerts to (checked by
        L{suto_server.audit.sinks.webhook.check_url}).
    @param syslog: a syslog address (from
        L{suto_server.audit.sinks.syslog.parse_address}).
    """
    sinks = []
    if file:
        alert_file = JsonFileSink(os.path.abspath(file))
        alert_file.check()
        sinks.append(alert_file)
    if webhook:
        sinks.append(WebhookSink(webhook, Agent(reactor), reactor))
    if syslog:
        sinks.append(SyslogSink(reactor, syslog))
    return sinks
