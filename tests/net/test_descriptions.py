"""
Tests for L{suto_server.net.descriptions}: which certificate the TLS
listener, the verification API and the web console serve, and where a
bare console port listens.
"""

import datetime
import os

from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.net import certificate
from suto_server.net.descriptions import (
    DEFAULT_LISTEN,
    api_listen,
    console_listen,
    tls_listen,
)
from suto_server.net.endpoint import server_endpoint


class TLSListenTests(SynchronousTestCase):
    """
    L{tls_listen}: which certificate the TLS listener serves.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)

    def generated(self):
        return [
            os.path.exists(os.path.join(self.data, name))
            for name in (certificate.KEY_FILE, certificate.CERT_FILE)
        ]

    def test_default(self):
        """
        With no listener configured the server listens with TLS on port
        2021, serving a certificate generated in the data folder with a
        key only its owner can read.
        """
        with capturedLogs() as events:
            description = tls_listen(self.data, "it-srv1.example", DEFAULT_LISTEN)
        self.assertTrue(description.startswith("ssl:2021:privateKey="))
        self.assertEqual(self.generated(), [True, True])
        key = os.path.join(self.data, certificate.KEY_FILE)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertTrue(any("fingerprint" in event for event in events))

    def test_interface_without_key(self):
        """
        An C{ssl:} listener that only binds an interface (here IPv6
        loopback) serves the generated certificate: choosing where to
        listen needs no certificate files.
        """
        description = tls_listen(
            self.data, "it-srv1.example", r"ssl:2021:interface=\:\:1"
        )
        self.assertEqual(self.generated(), [True, True])
        reactor = MemoryReactor()
        server_endpoint(reactor, description).listen(Factory())
        [(port, _, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (2021, "::1"))

    def test_own_certificate(self):
        """
        A listener that names its key, by name or as its second argument,
        and a listener that is not TLS, are used as they are, and no
        certificate is generated.
        """
        for description in [
            "ssl:2021:privateKey=/etc/suto/tls/key.pem:certKey=/etc/suto/tls/chain.pem",
            "ssl:2021:/etc/suto/tls/both.pem",
            r"ssl:port=2021:interface=\:\:1:privateKey=/etc/suto/tls/key.pem",
            "tcp:2021",
        ]:
            self.assertEqual(
                tls_listen(self.data, "it-srv1.example", description),
                description,
            )
        self.assertEqual(self.generated(), [False, False])


class ConsoleListenTests(SynchronousTestCase):
    """
    L{console_listen}: where the web console listens and which
    certificate it serves.
    """

    devices = "ssl:2021:privateKey=/etc/suto/key.pem:certKey=/etc/suto/chain.pem"

    def test_bare_port(self):
        """
        A bare port is plain HTTP on IPv4 loopback, where login links work.
        """
        self.assertEqual(
            console_listen("8080", self.devices), "tcp:8080:interface=127.0.0.1"
        )

    def test_device_certificate(self):
        """
        An C{ssl:} console without a key serves the device listener's
        certificate, exactly as the verification API does, its own
        arguments (C{caCerts}) kept.
        """
        given = "ssl:8443:caCerts=/etc/suto/operators-ca.pem"
        full = console_listen(given, self.devices)
        self.assertEqual(
            full,
            f"{given}:privateKey=/etc/suto/key.pem:certKey=/etc/suto/chain.pem",
        )
        api = given + ":requireClientCert=yes"
        self.assertEqual(
            api_listen(api, self.devices)[len(api):], full[len(given):]
        )

    def test_as_given(self):
        """
        A console naming its own key, one not on TLS, and an C{ssl:}
        console when the device listener is not TLS, are used as given.
        """
        for given, devices in [
            ("ssl:8443:privateKey=/k.pem:certKey=/c.pem", self.devices),
            ("tcp:8080:interface=10.0.0.1", self.devices),
            ("ssl:8443", "tcp:2021"),
        ]:
            self.assertEqual(console_listen(given, devices), given)

    def test_client_certificates_parsed(self):
        """
        The full description of an C{ssl:} console parses with the
        hardened TLS parser, C{caCerts} and C{requireClientCert} included.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        key, cert, _ = certificate.ensure_self_signed(
            folder, "it-srv1.example", datetime.datetime.now(datetime.UTC)
        )
        devices = f"ssl:2021:privateKey={key}:certKey={cert}"
        full = console_listen(
            f"ssl:8443:caCerts={cert}:requireClientCert=yes", devices
        )
        endpoint = server_endpoint(MemoryReactor(), full)
        with open(cert, "rb") as handle:
            own = certificate.describe(handle.read()).fingerprint
        self.assertEqual(endpoint.tls.certificate_info().fingerprint, own)
