"""
The web console's sign-in with TLS client certificates, end to end over
loopback: the daemon as C{twistd suto} builds it, with C{--console-listen
ssl:0:...:caCerts=CA} (no key of its own: it serves the device
listener's certificate) and C{--admin-ou}, and a browser's requests made
with Python's C{ssl} module in a thread, presenting a certificate from
that CA with the C{admin} role, one without it, one from another CA, or
none.
"""

import http.client
import os
import re
import ssl
import urllib.parse

from twisted.internet import defer, threads
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_server.console.sessions import COOKIE
from suto_server.net.certificate import CERT_FILE
from tests.support.daemon import EnrollmentFixture
from tests.support.pki import Authority, Files

#: What the overview page, shown only to a signed-in operator, says.
SIGNED_IN = "Sign out"


class ConsoleCertificateEndToEndTests(EnrollmentFixture, TestCase):
    """
    A console on loopback TLS asking for client certificates from the
    operators' CA, the C{admin} role granted to C{OU=it-admins}.
    """

    def make_listener(self):
        self.files = Files(os.path.join(self.data, "pki"))
        self.operators = Authority("SUTO operators CA")
        operators_ca = self.files.write("operators.pem", self.operators.certificate)
        self.server_arguments = (
            "--hello-port", "9",
            "--console-listen",
            f"ssl:0:interface=127.0.0.1:caCerts={quoteStringArgument(operators_ca)}",
            "--admin-ou", "it-admins",
            "--verify-ou", "suto-hosts",
        )
        return super().make_listener()

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        [console] = [s for s in self.server.listeners if s.name == "console"]
        self.console_port = (yield console.listening).getHost().port

    def identity(self, name, unit, authority=None):
        """
        The files of a client certificate for C{name} in C{unit}, from the
        operators' CA unless another C{authority} is named.
        """
        key, certificate = (authority or self.operators).issue(
            name, client=True, units=(unit,)
        )
        return (
            self.files.write(f"{name}.crt", certificate),
            self.files.write(f"{name}.key", key),
        )

    def get(self, identity, path, method="GET", form=None, cookie=None):
        """
        One HTTPS request to the console as C{identity} (L{None} for no
        certificate), in a thread while the reactor serves it, checking
        the daemon's certificate against the one devices pin.

        @return: a L{Deferred} firing with C{(status, headers, text)}.
        """

        def call():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(os.path.join(self.data, CERT_FILE))
            if identity is not None:
                context.load_cert_chain(*identity)
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.console_port, context=context, timeout=30
            )
            headers = {}
            if cookie is not None:
                headers["Cookie"] = cookie
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                headers["Origin"] = f"https://127.0.0.1:{self.console_port}"
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                return (
                    response.status,
                    response.headers,
                    response.read().decode("utf-8"),
                )
            finally:
                connection.close()

        return threads.deferToThread(call)

    @defer.inlineCallbacks
    def test_admin_certificate(self):
        """
        A certificate from the operators' CA with the admin OU is signed
        in at once, as its subject: it sees the overview, gets a session
        cookie, and the window it opens is audited with its subject.
        """
        identity = self.identity("ops1", "it-admins")
        status, headers, text = yield self.get(identity, "/")
        self.assertEqual(status, 200, text)
        self.assertIn(SIGNED_IN, text)
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        self.assertTrue(cookie.startswith(COOKIE.decode() + "="))
        _, _, windows = yield self.get(identity, "/windows", cookie=cookie)
        csrf = re.search(r'name="csrf" value="([^"]+)"', windows).group(1)
        status, _, text = yield self.get(
            identity,
            "/windows/open",
            "POST",
            {"csrf": csrf, "user": "carol", "location": "127.0.0.1/32"},
            cookie,
        )
        self.assertEqual(status, 200, text)
        [event] = yield self.events("enrollment_window_opened")
        self.assertEqual(event.username, "carol")
        self.assertIn("by OU=it-admins,CN=ops1 (client certificate)", event.reason)

    @defer.inlineCallbacks
    def test_certificate_without_role(self):
        """
        A certificate from the operators' CA that holds no admin role (a
        host's, holding only verify) is shown the sign-in page.
        """
        for unit in ["staff", "suto-hosts"]:
            status, headers, text = yield self.get(self.identity("db1", unit), "/")
            self.assertEqual(status, 401, text)
            self.assertIn("not signed in", text)
            self.assertNotIn(SIGNED_IN, text)
            self.assertNotIn("Set-Cookie", headers)

    @defer.inlineCallbacks
    def test_other_authority(self):
        """
        A certificate from another CA, even with the admin OU, does not
        get past the TLS handshake.
        """
        stranger = Authority("Somebody else's CA")
        identity = self.identity("mallory", "it-admins", stranger)
        yield self.assertFailure(
            self.get(identity, "/"), ssl.SSLError, ConnectionError
        )

    @defer.inlineCallbacks
    def test_no_certificate(self):
        """
        A browser without a certificate is asked for none by force: it
        gets the sign-in page, where both ways are offered, and a login
        link (the console is on loopback) signs it in.
        """
        status, _, text = yield self.get(None, "/")
        self.assertEqual(status, 401, text)
        self.assertIn("console-link", text)
        self.assertIn("client certificate", text)
        link = urllib.parse.urlsplit(self.server.console_link("root")["url"])
        self.assertEqual(link.scheme, "https")
        status, headers, _ = yield self.get(None, f"{link.path}?{link.query}")
        self.assertIn(status, (302, 303))
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        status, _, text = yield self.get(None, "/", cookie=cookie)
        self.assertEqual(status, 200, text)
        self.assertIn(SIGNED_IN, text)
