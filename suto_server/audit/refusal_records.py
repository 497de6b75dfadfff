# -*- test-case-name: tests.audit.test_refusal_records -*-
"""
The audit records of refusals anyone holding a connection can cause at
will, bounded per caller.

A refused request on a listener of requests (the verification API: a
caller without the role, a request that cannot be read, a host over its
limits; the web console: a login link that is unknown or used) costs the
caller nothing: on one kept-alive connection it can send thousands a
second, and each would be a durable audit write, flooding the log an
auditor reads and the disk it is on.  So each caller (a certificate's
subject, or its address without one) has its first L{ALLOWANCE} refusals
in a L{WINDOW} recorded as they come; the first past them is recorded as
the listener's C{suppressed} event (who, from where, and that the others
in that window go unrecorded), and the rest of that window only answered.
An auditor still sees every caller that was refused, when, why, and that
it kept on; only the count of a flood is lost, which is what a flood is.

At most L{MAX_CALLERS} callers are counted at once; past that the one
refused least recently is forgotten first (it starts again with a fresh
allowance, which is bounded too).
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from suto_server.audit.log import AuditLog

#: Refusals of one caller recorded one by one in a window.
ALLOWANCE = 20

#: Seconds of a window.
WINDOW = 60.0

#: Most callers whose window is remembered.
MAX_CALLERS = 4096

class RefusalAudit:
    """
    Records refusals in the audit log, at most L{ALLOWANCE} (and one
    C{suppressed}) per caller per L{WINDOW}.

    @param suppressed: the event standing for a caller's refusals past
        its allowance.
    """

    def __init__(
        self,
        audit: AuditLog,
        clock: IReactorTime,
        suppressed: str,
        allowance: int = ALLOWANCE,
        window: float = WINDOW,
        most: int = MAX_CALLERS,
    ) -> None:
        self._audit = audit
        self._clock = clock
        self._suppressed = suppressed
        self._allowance = allowance
        self._window = window
        self._most = most
        # caller -> (when its window began, refusals in it), the least
        # recently refused first.
        self._counted: dict[str, tuple[float, int]] = {}

    def refused(
        self,
        event: str,
        user: str | None,
        subject: str,
        address: str | None,
        reason: str,
    ) -> None:
        """
        A request of the caller with C{subject} (C{""} without one) from
        C{address} was refused: audit it as C{event} with C{reason},
        unless the caller is past its allowance.
        """
        now = self._clock.seconds()
        caller = subject or f"address {address}"
        began, count = self._counted.pop(caller, (now, 0))
        if now - began >= self._window:
            began, count = now, 0
        while len(self._counted) >= self._most:
            del self._counted[next(iter(self._counted))]
        count += 1
        self._counted[caller] = (began, count)
        if count <= self._allowance:
            self._audit.record(now, event, user, subject or None, reason)
        elif count == self._allowance + 1:
            self._audit.record(
                now,
                self._suppressed,
                None,
                subject or None,
                f"more than {self._allowance} refused requests from {address} "
                f"within {self._window:g} s: the others until "
                f"{self._window:g} s after the first are answered but not "
                f"recorded one by one",
            )
