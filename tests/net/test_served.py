"""
Tests for L{suto_server.net.served}: the SIGHUP handler that reloads the
served certificates, and the warning about a certificate that names no
address its devices connect to.
"""

import datetime
import ipaddress
import signal

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.net.certificate import CertificateInfo
from suto_server.net.served import ReloadOnHangup, ServedCertificates, address_warning
from suto_server.net.tls import TLSConfigurationError, TLSServerEndpoint

NOW = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)


class ThreadCallRecorder:
    """
    A reactor that records what C{callFromThread} is asked to run.
    """

    def __init__(self):
        self.calls = []

    def callFromThread(self, f, *args, **kwargs):
        self.calls.append((f, args, kwargs))


class ReloadOnHangupTests(SynchronousTestCase):
    """
    L{ReloadOnHangup} while running owns the SIGHUP handler.
    """

    def setUp(self):
        self.reactor = ThreadCallRecorder()
        self.reloads = []
        self.service = ReloadOnHangup(self.reactor, lambda: self.reloads.append(1))
        self.previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGHUP, self.previous)

    def test_hangup_reloads_on_the_reactor(self):
        """
        The handler installed at start does not reload inside the signal
        handler: it hands the reload to the reactor's C{callFromThread}.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        handler = signal.getsignal(signal.SIGHUP)
        handler(signal.SIGHUP, None)
        self.assertEqual(self.reloads, [])
        [(f, args, kwargs)] = self.reactor.calls
        self.assertEqual((args, kwargs), ((), {}))
        f()
        self.assertEqual(self.reloads, [1])

    def test_stop_restores_previous_handler(self):
        """
        Stopping the service puts back the handler that was there before
        it started.
        """
        self.service.startService()
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.assertEqual(self.reactor.calls, [])


class FakeTLS:
    """
    A listener's TLS settings whose certificate names C{addresses}.
    """

    def __init__(self, *addresses):
        self.addresses = frozenset(ipaddress.ip_address(a) for a in addresses)

    def ip_addresses(self):
        return self.addresses

    def reload(self):
        return CertificateInfo("CN=server", "AB:CD", NOW, NOW)


class RecordingAudit:
    def __init__(self):
        self.records = []

    def record(self, *record):
        self.records.append(record)


class AddressWarningTests(SynchronousTestCase):
    """
    L{address_warning} says when devices trusting the certificate through
    a CA will refuse it at the address they connect to.
    """

    def test_bound_address_named(self):
        """
        A listener bound to an address its certificate names: no warning.
        """
        self.assertIsNone(address_warning(FakeTLS("192.0.2.10"), "192.0.2.10"))

    def test_bound_address_missing(self):
        """
        A listener bound to an address its certificate does not name is
        warned about, naming the address.
        """
        warning = address_warning(FakeTLS("192.0.2.11"), "192.0.2.10")
        self.assertIn("names no IP address 192.0.2.10", warning)

    def test_every_address(self):
        """
        Bound to every address, a certificate naming any IP address passes;
        one naming none is warned about.
        """
        for interface in ("", "0.0.0.0", "::"):
            self.assertIsNone(address_warning(FakeTLS("192.0.2.10"), interface))
            self.assertIn("names no IP address", address_warning(FakeTLS(), interface))


class ReloadWarningTests(SynchronousTestCase):
    """
    A reload to a certificate without an IP address for its listener is
    served, with the warning in the answer and the log.
    """

    def test_warning(self):
        audit = RecordingAudit()
        served = ServedCertificates(
            Clock(),
            [FakeTLS("192.0.2.10"), FakeTLS()],
            audit,
            ["192.0.2.10", "192.0.2.20"],
        )
        with capturedLogs() as events:
            first, second = served.reload()
        self.assertNotIn("warning", first)
        self.assertIn("names no IP address 192.0.2.20", second["warning"])
        self.assertEqual(
            [e["problem"] for e in events if "problem" in e], [second["warning"]]
        )
        self.assertEqual(
            [record[1] for record in audit.records], ["certificate_reloaded"] * 2
        )

    def test_of_endpoints(self):
        """
        L{ServedCertificates.of} takes the interface of each TLS endpoint.
        """
        tls = FakeTLS("192.0.2.10")
        endpoint = TLSServerEndpoint(object(), tls, "192.0.2.20")
        served = ServedCertificates.of(Clock(), [endpoint, object()], RecordingAudit())
        self.assertEqual(served.served, [tls])
        self.assertIn("192.0.2.20", served.reload()[0]["warning"])


class BrokenTLS(FakeTLS):
    """
    A listener's TLS settings whose new files are unusable.
    """

    def reload(self):
        raise TLSConfigurationError("CRL 1 of 'revoked.pem' does not parse")


class OtherListenersTests(SynchronousTestCase):
    """
    The verification API's and the console's TLS files are reloaded with
    the device listeners', named, and without the devices' address warning.
    """

    def test_others_reloaded(self):
        """
        Each other TLS listener is reloaded after the device listeners, its
        result naming it; a listener not configured, or not TLS, is left
        out.
        """
        audit = RecordingAudit()
        device = TLSServerEndpoint(object(), FakeTLS("192.0.2.10"), "192.0.2.10")
        api = TLSServerEndpoint(object(), FakeTLS())
        served = ServedCertificates.of(
            Clock(),
            [device],
            audit,
            {"verification API": api, "console": None, "metrics": object()},
        )
        device_result, api_result = served.reload()
        self.assertEqual(api_result["listener"], "verification API")
        self.assertEqual(api_result["fingerprint"], "AB:CD")
        self.assertNotIn("warning", api_result)
        self.assertNotIn("listener", device_result)
        self.assertEqual(
            [record[1] for record in audit.records], ["certificate_reloaded"] * 2
        )
        self.assertTrue(audit.records[1][4].startswith("verification API: "))
        self.assertEqual(len(served.served), 1)

    def test_other_failed(self):
        """
        An other listener whose files are unusable reports the error, which
        the log names it with, and is audited as a failed reload.
        """
        audit = RecordingAudit()
        served = ServedCertificates(
            Clock(), [], audit, others=[("console", BrokenTLS())]
        )
        with capturedLogs() as events:
            [result] = served.reload()
        self.assertEqual(
            result,
            {"listener": "console", "error": "CRL 1 of 'revoked.pem' does not parse"},
        )
        self.assertEqual([e.get("listener") for e in events], ["console: "])
        self.assertEqual(audit.records[0][1], "certificate_reload_failed")

    def test_revoking_every_listener(self):
        """
        Every TLS listener is one whose CRLs the expiry watch checks, the
        device listeners first, named C{device}, then the others by name.
        """
        device, api = FakeTLS("192.0.2.10"), FakeTLS()
        served = ServedCertificates.of(
            Clock(),
            [TLSServerEndpoint(object(), device, "192.0.2.10")],
            RecordingAudit(),
            {"verification API": TLSServerEndpoint(object(), api), "console": None},
        )
        self.assertEqual(
            served.revoking(), [("device", device), ("verification API", api)]
        )
