# -*- test-case-name: tests.client.pam.test_report -*-
"""
The system log lines of C{suto-pam}: one per decision, to facility
C{authpriv} (the file only root reads: C{/var/log/auth.log} on Debian,
C{/var/log/secure} on RHEL), saying who, what and why.

A line holds the user's name, the kind of decision and its reason, never
a key, a certificate's contents or anything the server sent beyond its
verdict and a cut, printable reason (L{suto_client.pam.verdict.printable}).
"""

from __future__ import annotations

import syslog
from collections.abc import Callable

from suto_client.pam.verdict import Decision, printable

#: The program name syslog lines carry.
IDENT = "suto-pam"

#: Writes one line at a syslog priority.
Writer = Callable[[int, str], None]


def system_log() -> Writer:
    """
    A writer to the system log, facility C{authpriv}, each line tagged
    C{suto-pam[PID]}.
    """
    syslog.openlog(IDENT, syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    return syslog.syslog


def line(user: str, service: str, decision: Decision) -> tuple[int, str]:
    """
    The priority and text of the line for C{decision} about C{user}
    logging in through PAM service C{service}.
    """
    who = f"user={printable(user)} service={printable(service)}"
    if decision.accepted:
        return syslog.LOG_INFO, f"accepted {who} verdict={decision.verdict}: {decision.reason}"
    return syslog.LOG_WARNING, f"denied {who} verdict={decision.verdict}: {decision.reason}"


def report(write: Writer, user: str, service: str, decision: Decision) -> None:
    """
    Write the line for C{decision}.
    """
    priority, text = line(user, service, decision)
    write(priority, text)
