"""
The end-to-end daemon behind a CA-signed certificate that demands client
certificates.

Mixed in before L{EnrollmentFixture}, L{MutualTLSFixture} replaces pinned
TLS with CA trust and mutual TLS, so every enrollment and rotation
end-to-end test runs once more over it.
"""

import os

from twisted.internet.endpoints import quoteStringArgument

from suto_server.net import certificate
from tests.support.pki import LOOPBACK, Authority, Files


class MutualTLSFixture:
    """
    Mixed in before L{EnrollmentFixture}: the daemon's certificate is
    issued for 127.0.0.1 by a servers' CA, its listener demands a client
    certificate from a clients' CA, and the enroll client trusts the
    servers' CA bundle and presents such a certificate.
    """

    def make_listener(self):
        self.files = Files(os.path.join(self.data, "pki"))
        servers, clients = Authority("SUTO Servers CA"), Authority("SUTO Clients CA")
        key, server_certificate = servers.issue("suto", addresses=(LOOPBACK,))
        client_key, client_certificate = clients.issue("machine-1", client=True)
        server_cert = self.files.write("server.crt", server_certificate)
        with open(server_cert, "rb") as handle:
            # As the daemon reports it to suto-admin.
            self.pin = certificate.describe(handle.read()).fingerprint
        self.bundle = self.files.write("ca.pem", servers.certificate)
        self.client_cert = self.files.write("client.crt", client_certificate)
        self.client_key = self.files.write("client.key", client_key)
        accepted = self.files.write("clients-ca.pem", clients.certificate)
        return (
            f"ssl:0:interface={LOOPBACK}"
            f":privateKey={quoteStringArgument(self.files.write('server.key', key))}"
            f":certKey={quoteStringArgument(server_cert)}"
            f":caCerts={quoteStringArgument(accepted)}:requireClientCert=yes"
        )

    def trust(self):
        return {
            "ca": self.bundle,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
        }
