"""
Tests for L{suto_server.net.expiry}: the daily certificate and CRL expiry
warnings, driven by L{task.Clock}, and their wiring into the server and
C{twistd suto}.
"""

import datetime
import os
from types import SimpleNamespace

from twisted.internet.endpoints import quoteStringArgument
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.audit.log import AuditLog
from suto_server.net import certificate
from suto_server.net.certificate import CertificateInfo
from suto_server.net.endpoint import server_endpoint
from suto_server.net.expiry import (
    CHECK_INTERVAL,
    CRL_EXPIRED_EVENT,
    CRL_EXPIRING_EVENT,
    DEFAULT_WARN_DAYS,
    EXPIRING_EVENT,
    CertificateExpiryWatch,
)
from suto_server.service import SutoServer
from suto_server.settings import Alerting, Listeners
from suto_server.store.memory import MemoryStore
from tests.support import pki
from tests.support.alerts import RecordingSink
from tests.support.coroutines import result_of
from tests.support.server import make_server

#: The clock's time in every test: 2030-01-01T00:00:00Z.
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def info(days_left: float, fingerprint: str = "AA:BB") -> CertificateInfo:
    """
    A description of a certificate that expires C{days_left} days after
    L{NOW}.
    """
    return CertificateInfo(
        subject="CN=suto.example",
        fingerprint=fingerprint,
        not_before=NOW - 300 * DAY,
        not_after=NOW + days_left * DAY,
    )


class _Served:
    """
    A TLS listener's settings whose certificate the test replaces.
    """

    def __init__(self, described: CertificateInfo) -> None:
        self.described = described

    def certificate_info(self) -> CertificateInfo:
        return self.described


def warnings(events) -> list[dict]:
    return [event for event in events if event.get("event") == EXPIRING_EVENT]


class _Revoking:
    """
    A listener whose loaded CRLs the test replaces, as a reload would.
    """

    def __init__(self, *crls) -> None:
        self.crls = crls

    def revocation_lists(self):
        return self.crls


def crl_warnings(events) -> list[dict]:
    return [
        event
        for event in events
        if event.get("event") in (CRL_EXPIRING_EVENT, CRL_EXPIRED_EVENT)
    ]


class CertificateExpiryWatchTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW.timestamp())

    def watch(self, *served, **kwargs) -> CertificateExpiryWatch:
        watch = CertificateExpiryWatch(self.clock, served, **kwargs)
        self.addCleanup(lambda: watch.running and watch.stopService())
        return watch

    def test_warns_at_start(self):
        """
        A certificate with fewer days left than the threshold is warned
        about as soon as the service starts, in one warning event carrying
        its subject, fingerprint, expiry and days left.
        """
        watch = self.watch(_Served(info(12.5)))
        with capturedLogs() as events:
            watch.startService()
        [event] = warnings(events)
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(
            (
                event["subject"],
                event["fingerprint"],
                event["not_after"],
                event["days_left"],
            ),
            (
                "CN=suto.example",
                "AA:BB",
                "2030-01-13T12:00:00+00:00",
                12,
            ),
        )

    def test_alert_through_audit(self):
        """
        Given the audit log, the warning is a C{certificate_expiring}
        alert recorded at the clock's time, whose reason names the
        subject, the fingerprint and the days left, so every alert sink
        gets it.
        """
        store = MemoryStore()
        sink = RecordingSink()
        audit = AuditLog(store, [sink])
        self.watch(_Served(info(12.5)), audit=audit).startService()
        [event] = store.audit_events()
        self.assertEqual((event.time, event.event), (NOW.timestamp(), "certificate_expiring"))
        for part in ("CN=suto.example", "AA:BB", "in 12 days"):
            self.assertIn(part, event.reason)
        self.assertEqual([alert.type for alert in sink.alerts], ["certificate_expiring"])

    def test_quiet_far_from_expiry(self):
        """
        A certificate with at least the threshold left logs nothing.
        """
        watch = self.watch(_Served(info(DEFAULT_WARN_DAYS)))
        with capturedLogs() as events:
            watch.startService()
        self.assertEqual(warnings(events), [])
        self.assertEqual(watch.check(), [])

    def test_daily(self):
        """
        The check runs once a day: a certificate 30.5 days from expiry is
        first warned about a day later, and again every day after.
        """
        watch = self.watch(_Served(info(30.5)))
        with capturedLogs() as events:
            watch.startService()
            self.clock.advance(CHECK_INTERVAL - 1)
            self.assertEqual(warnings(events), [])
            self.clock.advance(1)
            self.assertEqual(len(warnings(events)), 1)
            self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(
            [event["days_left"] for event in warnings(events)], [29, 28]
        )

    def test_every_listener(self):
        """
        Each listener's certificate is judged on its own.
        """
        watch = self.watch(
            _Served(info(100, "11:11")),
            _Served(info(3, "22:22")),
            _Served(info(20, "33:33")),
        )
        with capturedLogs() as events:
            expiring = watch.check()
        self.assertEqual(
            [each.fingerprint for each in expiring], ["22:22", "33:33"]
        )
        self.assertEqual(
            [event["fingerprint"] for event in warnings(events)],
            ["22:22", "33:33"],
        )

    def test_reloaded_certificate(self):
        """
        The certificate is asked for at every check, so once a renewed one
        is reloaded the warnings stop.
        """
        served = _Served(info(5))
        watch = self.watch(served)
        with capturedLogs() as events:
            watch.startService()
            served.described = info(400, "CC:DD")
            self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(
            [event["fingerprint"] for event in warnings(events)], ["AA:BB"]
        )

    def test_expired(self):
        """
        An expired certificate is still warned about, with negative days
        left and words that say it has expired.
        """
        watch = self.watch(_Served(info(-2.5)))
        with capturedLogs() as events:
            watch.check()
        [event] = warnings(events)
        self.assertEqual(event["days_left"], -3)
        self.assertIn("expired at", event["log_format"])

    def test_threshold(self):
        """
        The threshold is configurable.
        """
        watch = self.watch(_Served(info(50)), warn_days=60)
        self.assertEqual(len(watch.check()), 1)
        watch = self.watch(_Served(info(5)), warn_days=3)
        self.assertEqual(watch.check(), [])

    def test_invalid_threshold(self):
        """
        A threshold that is not a whole number of days from 1 to 3650 is
        refused.
        """
        for days in (0, -1, 3651, 2.5, "30", True):
            self.assertRaises(
                ValueError, CertificateExpiryWatch, self.clock, [], days
            )

    def test_stop(self):
        """
        Stopping the service cancels the next check.
        """
        watch = self.watch(_Served(info(5)))
        watch.startService()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        watch.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class RevocationListWatchTests(SynchronousTestCase):
    """
    The watch also warns about CRLs close to or past their nextUpdate, on
    every listener that loaded one.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW.timestamp())
        self.authority = pki.Authority("Hosts CA")

    def crl(self, days_left: float, validity_days: float = 7):
        """
        A real CRL of the test's CA whose nextUpdate is C{days_left} days
        after L{NOW}, valid C{validity_days} in all.
        """
        next_update = NOW + days_left * DAY
        return self.authority.revocations(
            last_update=next_update - validity_days * DAY, next_update=next_update
        )

    def watch(self, *revoking, **kwargs) -> CertificateExpiryWatch:
        watch = CertificateExpiryWatch(self.clock, (), revoking=revoking, **kwargs)
        self.addCleanup(lambda: watch.running and watch.stopService())
        return watch

    def test_warns_at_start(self):
        """
        A CRL within half its validity of its nextUpdate is warned about
        when the service starts, naming its issuer, its listener, its
        nextUpdate and the hours left.
        """
        watch = self.watch(("verification API", _Revoking(self.crl(1.5))))
        with capturedLogs() as events:
            watch.startService()
        [event] = crl_warnings(events)
        self.assertEqual(
            (
                event["event"],
                event["log_level"],
                event["issuer"],
                event["listener"],
                event["next_update"],
                event["hours_left"],
            ),
            (
                CRL_EXPIRING_EVENT,
                LogLevel.warn,
                "CN=Hosts CA",
                "verification API",
                "2030-01-02T12:00:00+00:00",
                36,
            ),
        )

    def test_alert_through_audit(self):
        """
        Given the audit log, the warning is a C{crl_expiring} alert whose
        reason names the issuer, the listener and the hours left, so every
        alert sink gets it.
        """
        store = MemoryStore()
        sink = RecordingSink()
        watch = self.watch(
            ("console", _Revoking(self.crl(2))), audit=AuditLog(store, [sink])
        )
        watch.startService()
        [event] = store.audit_events()
        self.assertEqual((event.time, event.event), (NOW.timestamp(), "crl_expiring"))
        for part in ("CN=Hosts CA", "console listener", "in 48 hours"):
            self.assertIn(part, event.reason)
        self.assertEqual([alert.type for alert in sink.alerts], ["crl_expiring"])

    def test_expired(self):
        """
        A CRL past its nextUpdate raises C{crl_expired}, whose words say
        that its CA's clients are refused.
        """
        store = MemoryStore()
        watch = self.watch(("device", _Revoking(self.crl(-0.5))), audit=AuditLog(store, []))
        [(name, _)] = watch.check_revocations()
        self.assertEqual(name, "device")
        [event] = store.audit_events()
        self.assertEqual(event.event, "crl_expired")
        self.assertIn("is refused until a newer CRL", event.reason)

    def test_half_validity(self):
        """
        A CRL is warned about from the smaller of the threshold and half
        its validity: a weekly one not before its last three and a half
        days, a yearly one from the threshold.
        """
        watch = self.watch(("device", _Revoking(self.crl(3.6))))
        self.assertEqual(watch.check_revocations(), [])
        watch = self.watch(("device", _Revoking(self.crl(3.4))))
        self.assertEqual(len(watch.check_revocations()), 1)
        watch = self.watch(("device", _Revoking(self.crl(31, validity_days=365))))
        self.assertEqual(watch.check_revocations(), [])
        watch = self.watch(("device", _Revoking(self.crl(29, validity_days=365))))
        self.assertEqual(len(watch.check_revocations()), 1)

    def test_threshold(self):
        """
        A threshold below half the validity is the one used.
        """
        watch = self.watch(("device", _Revoking(self.crl(2))), warn_days=1)
        self.assertEqual(watch.check_revocations(), [])

    def test_every_crl_of_every_listener(self):
        """
        Each CRL of each listener is judged on its own, in the order of the
        listeners and of their files.
        """
        other = pki.Authority("Operators CA")
        near = self.crl(1)
        far = self.crl(6)
        operators = other.revocations(
            last_update=NOW - 6 * DAY, next_update=NOW + DAY / 2
        )
        watch = self.watch(
            ("device", _Revoking()),
            ("verification API", _Revoking(far, near)),
            ("console", _Revoking(operators)),
        )
        self.assertEqual(
            watch.check_revocations(),
            [("verification API", near), ("console", operators)],
        )

    def test_daily_and_dedup(self):
        """
        Like a certificate, a CRL is checked daily and warned about at
        every check: once a day, no more.
        """
        watch = self.watch(("device", _Revoking(self.crl(3))))
        with capturedLogs() as events:
            watch.startService()
            self.clock.advance(CHECK_INTERVAL - 1)
            self.assertEqual(len(crl_warnings(events)), 1)
            self.clock.advance(1)
            self.clock.advance(CHECK_INTERVAL)
            self.clock.advance(CHECK_INTERVAL)
        self.assertEqual(
            [(e["event"], e["hours_left"]) for e in crl_warnings(events)],
            [
                (CRL_EXPIRING_EVENT, 72),
                (CRL_EXPIRING_EVENT, 48),
                (CRL_EXPIRING_EVENT, 24),
                (CRL_EXPIRED_EVENT, 0),
            ],
        )

    def test_recheck_after_reload(self):
        """
        L{CertificateExpiryWatch.recheck} checks again at once, with the
        CRLs the listener has now: a reloaded CRL close to its end is
        warned about without waiting a day, a fresh one silences it.
        """
        listener = _Revoking(self.crl(5))
        watch = self.watch(("device", listener))
        with capturedLogs() as events:
            watch.startService()
            listener.crls = (self.crl(1),)
            watch.recheck()
            listener.crls = (self.crl(6),)
            self.clock.advance(CHECK_INTERVAL)
        self.assertEqual([e["hours_left"] for e in crl_warnings(events)], [24])

    def test_recheck_when_stopped(self):
        """
        A watch not running (a process that is not the leader) checks
        nothing on a reload, so one alert goes out however many processes
        reload.
        """
        watch = self.watch(("device", _Revoking(self.crl(1))))
        with capturedLogs() as events:
            watch.recheck()
        self.assertEqual(crl_warnings(events), [])

    def test_state(self):
        """
        C{state()} gives every served certificate and every loaded CRL,
        each with the warning a check raises of it now, and raises none
        itself, running or not.
        """
        far, near, past = self.crl(30, 60), self.crl(1.5), self.crl(-1)
        watch = CertificateExpiryWatch(
            self.clock,
            [_Served(info(400)), _Served(info(3, "CC:DD"))],
            revoking=[("device", _Revoking(far, near)), ("console", _Revoking(past))],
        )
        with capturedLogs() as events:
            state = watch.state()
        self.assertEqual(events, [])
        self.assertEqual(
            state["certificates"],
            [
                {
                    "subject": "CN=suto.example",
                    "fingerprint": "AA:BB",
                    "not_after": "2031-02-05T00:00:00+00:00",
                    "warning": None,
                },
                {
                    "subject": "CN=suto.example",
                    "fingerprint": "CC:DD",
                    "not_after": "2030-01-04T00:00:00+00:00",
                    "warning": EXPIRING_EVENT,
                },
            ],
        )
        self.assertEqual(
            state["crls"],
            [
                {
                    "listener": "device",
                    "issuer": "CN=Hosts CA",
                    "next_update": "2030-01-31T00:00:00+00:00",
                    "warning": None,
                },
                {
                    "listener": "device",
                    "issuer": "CN=Hosts CA",
                    "next_update": "2030-01-02T12:00:00+00:00",
                    "warning": CRL_EXPIRING_EVENT,
                },
                {
                    "listener": "console",
                    "issuer": "CN=Hosts CA",
                    "next_update": "2029-12-31T00:00:00+00:00",
                    "warning": CRL_EXPIRED_EVENT,
                },
            ],
        )
        self.assertEqual(
            [crl for _, crl in watch.check_revocations()], [near, past]
        )

    def test_state_without_next_update(self):
        """
        A CRL that promises no nextUpdate is in C{state()} with none and
        no warning.
        """
        forever = SimpleNamespace(
            next_update_utc=None,
            issuer=self.authority.certificate.subject,
        )
        watch = self.watch(("device", _Revoking(forever)))
        [entry] = watch.state()["crls"]
        self.assertEqual((entry["next_update"], entry["warning"]), (None, None))

    def test_no_next_update(self):
        """
        A CRL without nextUpdate (optional in X.509) promises no newer
        list and never expires in OpenSSL, so it is never warned about.
        """
        forever = SimpleNamespace(next_update_utc=None)
        watch = self.watch(("device", _Revoking(forever)))
        self.assertEqual(watch.check_revocations(), [])


class ServerWiringTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(NOW.timestamp())
        directory = self.mktemp()
        os.makedirs(directory)
        # The generated certificate is valid for certificate.VALIDITY from
        # its start: make it start so that ten days are left now.
        self.key, self.cert, _ = certificate.ensure_self_signed(
            directory,
            "suto-test",
            NOW - certificate.VALIDITY + 10 * DAY,
        )
        with open(self.cert, "rb") as handle:
            self.fingerprint = certificate.describe(handle.read()).fingerprint
        self.listen = server_endpoint(
            self.reactor,
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(self.key)}"
            f":certKey={quoteStringArgument(self.cert)}",
        )

    def server(self, listen=(), cert_warn_days=DEFAULT_WARN_DAYS) -> SutoServer:
        return make_server(
            self.reactor,
            listeners=Listeners(devices=tuple(listen)),
            alerting=Alerting(cert_warn_days=cert_warn_days),
        )

    def test_watches_tls_listener(self):
        """
        A server with a TLS listener runs a watch over its certificate,
        with the default threshold, and raises its warning as an alert of
        the server's audit log.
        """
        server = self.server(listen=[self.listen])
        self.assertIn(server.expiry_watch, list(server.leadership.jobs))
        with capturedLogs() as events:
            expiring = server.expiry_watch.check()
        self.assertEqual(
            [each.fingerprint for each in expiring], [self.fingerprint]
        )
        [event] = server.store.audit_events()
        self.assertEqual(event.event, "certificate_expiring")
        self.assertIn("in 10 days", event.reason)
        [logged] = [e for e in events if e.get("alert_type") == "certificate_expiring"]
        self.assertEqual(logged["log_level"], LogLevel.warn)

    def revoking_listener(self, last_update, next_update):
        """
        @return: a CA, the folder of its files and a TLS listener serving
            the test's certificate that checks client certificates against
            the CA's CRL of C{last_update} and C{next_update}
            (C{hosts-crl.pem} in that folder).
        """
        authority = pki.Authority("Hosts CA")
        files = pki.Files(self.mktemp())
        cas = files.write("hosts-ca.pem", authority.certificate)
        crl = files.write_bytes(
            "hosts-crl.pem",
            pki.crl_pem(
                authority.revocations(last_update=last_update, next_update=next_update)
            ),
        )
        listen = server_endpoint(
            self.reactor,
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(self.key)}"
            f":certKey={quoteStringArgument(self.cert)}"
            f":caCerts={quoteStringArgument(cas)}:crlFile={quoteStringArgument(crl)}",
        )
        return authority, files, listen

    def test_watches_crl_of_listener(self):
        """
        A server whose TLS listener loaded a CRL from C{crlFile} checks its
        nextUpdate, and checks again after a reload, raising the
        C{crl_expiring} alert through the server's audit log.
        """
        authority, files, listen = self.revoking_listener(NOW - DAY, NOW + 60 * DAY)
        server = self.server(listen=[listen])
        server.expiry_watch.startService()
        self.addCleanup(server.expiry_watch.stopService)
        self.assertEqual(
            [e.event for e in server.store.audit_events()], ["certificate_expiring"]
        )
        files.write_bytes(
            "hosts-crl.pem",
            pki.crl_pem(
                authority.revocations(last_update=NOW - 6 * DAY, next_update=NOW + DAY)
            ),
        )
        server.reload_certificates()
        events = [e for e in server.store.audit_events() if e.event == "crl_expiring"]
        [event] = events
        self.assertIn("CN=Hosts CA on the device listener", event.reason)

    def test_status_shows_expiry(self):
        """
        The server's status shows each served certificate and each loaded
        CRL with the warning the watch raises of it, whichever process
        leads.
        """
        _, _, listen = self.revoking_listener(NOW - 6 * DAY, NOW + DAY)
        status = result_of(self, self.server(listen=[listen]).status())
        [served] = status["certificates"]
        self.assertEqual(
            (served["fingerprint"], served["warning"]),
            (self.fingerprint, EXPIRING_EVENT),
        )
        self.assertEqual(
            status["crls"],
            [
                {
                    "listener": "device",
                    "issuer": "CN=Hosts CA",
                    "next_update": "2030-01-02T00:00:00+00:00",
                    "warning": CRL_EXPIRING_EVENT,
                }
            ],
        )

    def test_status_without_tls(self):
        """
        Without a TLS listener the status shows no certificate and no CRL.
        """
        status = result_of(self, self.server().status())
        self.assertEqual((status["certificates"], status["crls"]), ([], []))

    def test_threshold_passed_on(self):
        """
        The server hands its C{cert_warn_days} to the watch.
        """
        server = self.server(listen=[self.listen], cert_warn_days=5)
        self.assertEqual(server.expiry_watch.check(), [])

    def test_no_tls_listener(self):
        """
        Without a TLS listener there is nothing to watch.
        """
        self.assertIsNone(self.server().expiry_watch)


class OptionTests(SynchronousTestCase):
    def test_default(self):
        """
        C{--cert-warn-days} defaults to 30.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["cert-warn-days"], DEFAULT_WARN_DAYS)

    def test_given(self):
        """
        C{--cert-warn-days} takes a number of days.
        """
        options = tap.Options()
        options.parseOptions(["--cert-warn-days", "45"])
        self.assertEqual(options["cert-warn-days"], 45)

    def test_invalid(self):
        """
        Zero, too many days, and anything but a number are usage errors.
        """
        for value in ("0", "3651", "soon"):
            self.assertRaises(
                usage.UsageError,
                tap.Options().parseOptions,
                ["--cert-warn-days", value],
            )
