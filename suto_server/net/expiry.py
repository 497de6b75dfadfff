# -*- test-case-name: tests.net.test_expiry -*-
"""
A daily look at how long the serving TLS certificates have left.

A certificate that expires unnoticed locks every agent out at once (an
agent trusting a CA refuses an expired certificate), and renewal is easy
to forget when it happens once a year or less.  L{CertificateExpiryWatch}
asks each TLS listener for the certificate it currently serves, when the
server starts and then once a day, and raises a C{certificate_expiring}
alert (through the audit log, so every alert sink gets it) for each one
that expires within the threshold.
Asking the listener rather than reading the file means a certificate
renewed on disk but not yet reloaded still counts as expiring, which it
is.
"""

from __future__ import annotations

import datetime
from typing import Protocol, Sequence

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from suto_server.net.certificate import CertificateInfo

#: Days before expiry from which a certificate is warned about.
DEFAULT_WARN_DAYS = 30

#: The largest threshold accepted: ten years is longer than any
#: certificate a CA issues today.
MAX_WARN_DAYS = 3650

#: Seconds between two checks.
CHECK_INTERVAL = 24 * 60 * 60

#: The C{event} field of the warning, for whatever reads the log.
EXPIRING_EVENT = "certificate_expiring"

_DAY = datetime.timedelta(days=1)
_EXPIRING = (
    "the TLS certificate for {subject} (SHA-256 {fingerprint}) expires at "
    "{not_after}, in {days_left} days: renew it and reload the server"
)
_EXPIRED = (
    "the TLS certificate for {subject} (SHA-256 {fingerprint}) expired at "
    "{not_after}: renew it and reload the server"
)


class ServedCertificate(Protocol):
    """
    Anything that can describe the certificate it serves now, such as
    L{suto_server.net.tls.ReloadableServerTLS}.
    """

    def certificate_info(self) -> CertificateInfo: ...


class CertificateExpiryWatch(Service):
    """
    Warns, at start and then every L{CHECK_INTERVAL} seconds, about each
    served certificate that expires within C{warn_days}.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        served: Sequence[ServedCertificate],
        warn_days: int = DEFAULT_WARN_DAYS,
        audit=None,
    ) -> None:
        """
        @param clock: tells the time and schedules the checks.
        @param served: the TLS listeners' settings, asked at every check
            so a reloaded certificate is the one checked.
        @param warn_days: warn when fewer days than this are left.
        @param audit: the L{suto_server.audit.log.AuditLog} the warning goes to
            as a C{certificate_expiring} alert (so it reaches every alert
            sink, not only the log); L{None} to log it only.
        @raise ValueError: C{warn_days} is not from 1 to L{MAX_WARN_DAYS}.
        """
        if type(warn_days) is not int or not 1 <= warn_days <= MAX_WARN_DAYS:
            raise ValueError(
                f"the certificate warning threshold must be from 1 to "
                f"{MAX_WARN_DAYS} days"
            )
        self._clock = clock
        self._audit = audit
        self._served = tuple(served)
        self._threshold = datetime.timedelta(days=warn_days)
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.check)
        self._loop.clock = self._clock
        self._loop.start(CHECK_INTERVAL, now=True).addErrback(
            lambda failure: self.log.failure(
                "the certificate expiry check failed and stopped", failure
            )
        )

    def stopService(self):
        super().stopService()
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def check(self) -> list[CertificateInfo]:
        """
        Warn about every served certificate that expires within the
        threshold, or has expired.

        @return: those certificates, in the order of the listeners.
        """
        now = datetime.datetime.fromtimestamp(
            self._clock.seconds(), datetime.timezone.utc
        )
        expiring = []
        for served in self._served:
            info = served.certificate_info()
            left = info.not_after - now
            if left >= self._threshold:
                continue
            expiring.append(info)
            text = _EXPIRED if left < datetime.timedelta(0) else _EXPIRING
            fields = dict(
                subject=info.subject,
                fingerprint=info.fingerprint,
                not_after=info.not_after.isoformat(),
                days_left=left // _DAY,
            )
            if self._audit is None:
                self.log.warn(text, event=EXPIRING_EVENT, **fields)
            else:
                self._audit.record(
                    self._clock.seconds(),
                    EXPIRING_EVENT,
                    None,
                    None,
                    text.format(**fields),
                )
        return expiring
