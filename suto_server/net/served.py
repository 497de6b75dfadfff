# -*- test-case-name: tests.net.test_served -*-
"""
The certificates the TLS listeners serve, and their reload: on the admin
API's request, or when the daemon is sent SIGHUP (the signal operators,
and certificate renewal hooks, already send daemons to re-read files).

The reload re-reads every file of a listener's TLS description, its
client certificate authorities and revocation lists included
(L{suto_server.net.revocation}), on the device listeners and on the other
TLS listeners, the verification API and the console, which may serve
files of their own.

A reloaded device certificate that names no IP address devices connect to is
served all the same (a device that pins it does not care), with a warning:
a device that trusts it through a CA refuses it at an address it does not
name, and devices that learned the server from its hello connect by
address.
"""

from __future__ import annotations

import signal
from functools import partial

from twisted.application.service import Service
from twisted.logger import Logger

from suto_server.net.tls import TLSConfigurationError, bound_address


def address_warning(tls, interface: str = "") -> str | None:
    """
    @param tls: the listener's L{suto_server.net.tls.ReloadableServerTLS}.
    @param interface: the address the listener binds, C{""} for every one.
    @return: why a device that trusts the certificate C{tls} serves
        through a CA, not a pin, will refuse it, or L{None}.
    """
    addresses = tls.ip_addresses()
    bound = bound_address(interface)
    if bound is not None:
        if bound in addresses:
            return None
        return (
            f"the certificate names no IP address {bound}, which its listener "
            f"is bound to: devices that trust it through a CA, not a pin, "
            f"will refuse it"
        )
    if addresses:
        return None
    return (
        "the certificate names no IP address: devices that trust it through "
        "a CA, not a pin, and connect by address (as after a hello) will "
        "refuse it"
    )


class ServedCertificates:
    """
    The certificates of the server's TLS listeners.

    @ivar served: the listeners' TLS configurations (what
        L{suto_server.net.endpoint.server_endpoint} gives each endpoint as
        C{tls}).
    @param interfaces: the address each of C{served} is bound to, C{""}
        for every one; every address by default.
    @param others: C{(name, tls)} for each other TLS listener (the
        verification API, the console): reloaded with the device listeners,
        but what they serve is not what devices pin or connect to, so it is
        neither described nor warned about (their CRLs are:
        L{revoking}).
    """

    log = Logger()

    def __init__(
        self, clock, served: list, audit, interfaces=None, others=()
    ) -> None:
        self._clock = clock
        self.served = served
        self._others = list(others)
        self._audit = audit
        self._interfaces = interfaces or [""] * len(served)

    @classmethod
    def of(cls, clock, endpoints, audit, others=None) -> ServedCertificates:
        """
        The certificates served on those of C{endpoints} that are TLS.

        @param others: the other listeners' endpoints by name, L{None} for
            a listener not configured; those that are TLS are reloaded too.
        """
        tls = [
            endpoint for endpoint in endpoints if getattr(endpoint, "tls", None)
        ]
        return cls(
            clock,
            [endpoint.tls for endpoint in tls],
            audit,
            [getattr(endpoint, "interface", "") for endpoint in tls],
            [
                (name, endpoint.tls)
                for name, endpoint in (others or {}).items()
                if getattr(endpoint, "tls", None)
            ],
        )

    def revoking(self) -> list:
        """
        C{(name, tls)} for every TLS listener, the device listeners
        (C{"device"}) first: the CRLs of each, whoever it serves, are what
        L{suto_server.net.expiry.CertificateExpiryWatch} checks.
        """
        return [("device", tls) for tls in self.served] + self._others

    def fingerprints(self) -> list[str]:
        return [tls.certificate_info().fingerprint for tls in self.served]

    def reload(self) -> list:
        """
        Re-read every TLS listener's files (after a renewal, or a
        revocation).  Live connections keep the context they started with;
        a listener whose new files are bad keeps its old ones.  Each
        reload, and each that failed, goes to the audit log.

        @return: one dictionary per listener, the device listeners first:
            the new certificate's subject, fingerprint, expiry and any
            C{warning} (L{address_warning}), or the error that kept the
            old one; the other listeners' also say their C{listener}.
        """
        results = [
            self._reload(tls, partial(address_warning, tls, interface))
            for tls, interface in zip(self.served, self._interfaces)
        ]
        for name, tls in self._others:
            result = self._reload(tls, lambda: None, f"{name}: ")
            results.append({"listener": name, **result})
        return results

    def _reload(self, tls, warning, listener: str = "") -> dict:
        """
        Reload one listener's files, log and audit what came of it.

        @param warning: returns what is amiss with the reloaded
            certificate, or L{None}.
        @param listener: what the log and audit lines say first.
        """
        try:
            info = tls.reload()
        except TLSConfigurationError as error:
            self.log.error(
                "{listener}certificate reload failed, keeping the old one: "
                "{error}",
                listener=listener,
                error=str(error),
            )
            result = {"error": str(error)}
            event = "certificate_reload_failed"
            reason = "the new files could not be used; the old ones stay"
        else:
            result = info.to_json()
            problem = warning()
            if problem is not None:
                self.log.warn(
                    "the reloaded certificate is served, but {problem}",
                    problem=problem,
                )
                result["warning"] = problem
            event = "certificate_reloaded"
            reason = (
                f"now serving sha256 {info.fingerprint}, valid until "
                f"{info.not_after.isoformat()}"
            )
        self._audit.record(
            self._clock.seconds(), event, None, None, listener + reason
        )
        return result


class ReloadOnHangup(Service):
    """
    Reload the TLS certificates on SIGHUP, the signal operators (and
    certificate renewal hooks) already send daemons to re-read files.
    """

    def __init__(self, reactor, reload) -> None:
        self._reactor = reactor
        self._reload = reload
        self._previous = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._hangup)

    def _hangup(self, signum, frame) -> None:
        # Signal handlers run between bytecodes; do the work on the reactor.
        self._reactor.callFromThread(self._reload)

    def stopService(self):
        super().stopService()
        signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)
