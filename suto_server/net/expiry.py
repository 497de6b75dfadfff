# -*- test-case-name: tests.net.test_expiry -*-
"""
A daily look at how long the serving TLS certificates, and the CRLs the
listeners check client certificates against, have left.

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

The same check reads the nextUpdate of every CRL each listener loaded
(C{crlFile=}, L{suto_server.net.revocation}), the verification API's and
the console's included: past it, every client of that CA is refused until
a fresh list is reloaded, so a CA that forgets to publish locks every
host out at once.  A CRL close to it raises C{crl_expiring}, one past it
C{crl_expired}.  CRLs live days where certificates live years, and a CA
publishes the next one well before the last runs out, so a CRL is warned
about from the smaller of the threshold and half its own validity
(nextUpdate minus lastUpdate): a weekly CRL is warned about in its last
three and a half days, not for its whole life as a 30-day threshold
would.  A reload checks again at once (L{CertificateExpiryWatch.recheck}).
"""

from __future__ import annotations

import datetime
from typing import Protocol, Sequence

from cryptography import x509
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

#: The C{event} of the warning about a CRL close to its nextUpdate.
CRL_EXPIRING_EVENT = "crl_expiring"

#: The C{event} of the warning about a CRL past its nextUpdate.
CRL_EXPIRED_EVENT = "crl_expired"

_DAY = datetime.timedelta(days=1)
_HOUR = datetime.timedelta(hours=1)
_EXPIRING = (
    "the TLS certificate for {subject} (SHA-256 {fingerprint}) expires at "
    "{not_after}, in {days_left} days: renew it and reload the server"
)
_EXPIRED = (
    "the TLS certificate for {subject} (SHA-256 {fingerprint}) expired at "
    "{not_after}: renew it and reload the server"
)

_CRL_EXPIRING = (
    "the CRL of {issuer} on the {listener} listener reaches its nextUpdate "
    "at {next_update}, in {hours_left} hours: past it every client "
    "certificate that CA issued is refused, so publish a newer CRL and "
    "reload the server"
)
_CRL_EXPIRED = (
    "the CRL of {issuer} on the {listener} listener passed its nextUpdate "
    "at {next_update}: every client certificate that CA issued is refused "
    "until a newer CRL is published and the server reloaded"
)


class ServedCertificate(Protocol):
    """
    Anything that can describe the certificate it serves now, such as
    L{suto_server.net.tls.ReloadableServerTLS}.
    """

    def certificate_info(self) -> CertificateInfo: ...


class RevokingListener(Protocol):
    """
    Anything that can give the CRLs it checks client certificates against
    now, such as L{suto_server.net.tls.ReloadableServerTLS}.
    """

    def revocation_lists(self) -> Sequence[x509.CertificateRevocationList]: ...


class CertificateExpiryWatch(Service):
    """
    Warns, at start, then every L{CHECK_INTERVAL} seconds and after each
    reload, about each served certificate that expires within
    C{warn_days} and each loaded CRL close to or past its nextUpdate.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        served: Sequence[ServedCertificate],
        warn_days: int = DEFAULT_WARN_DAYS,
        audit=None,
        revoking: Sequence[tuple[str, RevokingListener]] = (),
    ) -> None:
        """
        @param clock: tells the time and schedules the checks.
        @param served: the TLS listeners' settings, asked at every check
            so a reloaded certificate is the one checked.
        @param warn_days: warn when fewer days than this are left.
        @param audit: the L{suto_server.audit.log.AuditLog} the warning goes to
            as a C{certificate_expiring} alert (so it reaches every alert
            sink, not only the log); L{None} to log it only.
        @param revoking: C{(name, tls)} for every listener whose CRLs are
            checked, asked at every check so a reloaded CRL is the one
            checked; C{name} is what the warning calls the listener.
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
        self._revoking = tuple(revoking)
        self._threshold = datetime.timedelta(days=warn_days)
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.recheck)
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

    def recheck(self) -> None:
        """
        Check the certificates and the CRLs, when the service runs (on the
        leader only, where several processes share a store): at every
        tick, and after a reload so a CRL or certificate reloaded close to
        its end is warned about at once.
        """
        if self.running:
            self.check()
            self.check_revocations()

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(
            self._clock.seconds(), datetime.timezone.utc
        )

    def _warn(self, event: str, text: str, fields: dict) -> None:
        """
        Raise the alert C{event}, or log it as a warning without an audit
        log.
        """
        if self._audit is None:
            self.log.warn(text, event=event, **fields)
        else:
            self._audit.record(
                self._clock.seconds(), event, None, None, text.format(**fields)
            )

    def _crl_warning(self, crl, now: datetime.datetime) -> str | None:
        """
        @return: the warning C{crl} is due, at C{now}: L{CRL_EXPIRED_EVENT}
            past its nextUpdate, L{CRL_EXPIRING_EVENT} within the smaller
            of the threshold and half its validity of it, else L{None}
            (and for a CRL without nextUpdate, which never expires).
        """
        next_update = crl.next_update_utc
        if next_update is None:
            # No promise of a newer list: OpenSSL never expires it.
            return None
        left = next_update - now
        if left <= datetime.timedelta(0):
            return CRL_EXPIRED_EVENT
        validity = next_update - crl.last_update_utc
        if left < min(self._threshold, validity / 2):
            return CRL_EXPIRING_EVENT
        return None

    def _certificate_warning(self, info, now: datetime.datetime) -> str | None:
        """
        @return: L{EXPIRING_EVENT} when the certificate C{info} describes
            expires within the threshold of C{now}, or has expired, else
            L{None}.
        """
        return EXPIRING_EVENT if info.not_after - now < self._threshold else None

    def check_revocations(self) -> list[tuple[str, x509.CertificateRevocationList]]:
        """
        Warn about every loaded CRL within the smaller of the threshold
        and half its validity of its nextUpdate, or past it.

        @return: C{(listener name, CRL)} for each, in the order of the
            listeners and of their C{crlFile}.
        """
        now = self._now()
        expiring = []
        for name, listener in self._revoking:
            for crl in listener.revocation_lists():
                warning = self._crl_warning(crl, now)
                if warning is None:
                    continue
                expiring.append((name, crl))
                next_update = crl.next_update_utc
                self._warn(
                    warning,
                    _CRL_EXPIRED if warning == CRL_EXPIRED_EVENT else _CRL_EXPIRING,
                    dict(
                        issuer=crl.issuer.rfc4514_string(),
                        listener=name,
                        next_update=next_update.isoformat(),
                        hours_left=(next_update - now) // _HOUR,
                    ),
                )
        return expiring

    def check(self) -> list[CertificateInfo]:
        """
        Warn about every served certificate that expires within the
        threshold, or has expired.

        @return: those certificates, in the order of the listeners.
        """
        now = self._now()
        expiring = []
        for served in self._served:
            info = served.certificate_info()
            if self._certificate_warning(info, now) is None:
                continue
            expiring.append(info)
            left = info.not_after - now
            text = _EXPIRED if left < datetime.timedelta(0) else _EXPIRING
            fields = dict(
                subject=info.subject,
                fingerprint=info.fingerprint,
                not_after=info.not_after.isoformat(),
                days_left=left // _DAY,
            )
            self._warn(EXPIRING_EVENT, text, fields)
        return expiring

    def state(self) -> dict:
        """
        What the watch knows now, for an operator's status: every served
        certificate (its subject, fingerprint and notAfter) and every
        loaded CRL (its listener, issuer and nextUpdate, C{None} for one
        that promises none), each with the warning its check raises at
        this moment (C{warning}, the alert's type, or L{None}).  It reads
        the listeners as a check does, but raises nothing, and answers in
        every process, the leader or not.

        @return: a JSON-ready L{dict} of C{certificates} and C{crls}, in
            the order of the listeners (and of their C{crlFile}).
        """
        now = self._now()
        certificates = []
        for served in self._served:
            info = served.certificate_info()
            certificates.append(
                dict(info.to_json(), warning=self._certificate_warning(info, now))
            )
        crls = [
            {
                "listener": name,
                "issuer": crl.issuer.rfc4514_string(),
                "next_update": None
                if crl.next_update_utc is None
                else crl.next_update_utc.isoformat(),
                "warning": self._crl_warning(crl, now),
            }
            for name, listener in self._revoking
            for crl in listener.revocation_lists()
        ]
        return {"certificates": certificates, "crls": crls}
