"""
Tests for L{suto_server.net.listening}: which certificate the TLS
listener serves.
"""

import os

from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.net import certificate
from suto_server.net.listening import tls_listen
from suto_server.net.tls import server_endpoint


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
            description = tls_listen(self.data, "it-srv1.example", None)
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
