# -*- test-case-name: tests.admin.test_console_link -*-
"""
C{POST /v1/console-link} and C{suto-admin console-link}: a one-time login
link to the web console, asked for over the admin socket; and the
daemon's side of it, which gives links only for a loopback console.
"""

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_server.admin.api import admin_site
from suto_server.settings import Listeners
from tests.support.admin import AdminCommandMixin, FakeAuthenticator, answer, render
from tests.support.folders import socket_folder
from tests.support.server import make_server

LINK = {"url": "http://127.0.0.1:8080/signin?token=abc", "expires_in": 120.0}


def site_with(link):
    return admin_site(
        FakeAuthenticator(), 2020, lambda: {}, lambda: [], console_link=link
    )


class ResourceTests(SynchronousTestCase):
    """
    The resource hands the operator's name to the daemon's link maker.
    """

    def setUp(self):
        self.asked = []

        def link(operator):
            self.asked.append(operator)
            if operator == "far":
                raise ValueError("not on loopback")
            return LINK

        self.site = site_with(link)

    def test_link(self):
        request = render(self.site, "POST", "/v1/console-link", {"operator": "root"})
        self.assertEqual((request.responseCode, answer(request)), (200, LINK))
        self.assertEqual(self.asked, ["root"])

    def test_bad_operator(self):
        """
        A missing, empty, long or unprintable operator name is a 400, and
        no link is made.
        """
        for body in (
            {},
            {"operator": ""},
            {"operator": "x" * 65},
            {"operator": "a\nb"},
            {"operator": 3},
        ):
            request = render(self.site, "POST", "/v1/console-link", body)
            self.assertEqual(request.responseCode, 400, body)
        self.assertEqual(self.asked, [])

    def test_refused(self):
        """
        The daemon's refusal is a 409 carrying its reason.
        """
        request = render(self.site, "POST", "/v1/console-link", {"operator": "far"})
        self.assertEqual(request.responseCode, 409)
        self.assertEqual(answer(request), {"error": "not on loopback"})

    def test_off(self):
        """
        Without a console, there is no such resource.
        """
        site = site_with(None)
        request = render(site, "POST", "/v1/console-link", {"operator": "root"})
        self.assertEqual(request.responseCode, 404)


class CommandTests(AdminCommandMixin, TestCase):
    """
    C{suto-admin console-link} against an admin socket.
    """

    def setUp(self):
        self.data = socket_folder(self, "suto-link-")
        self.asked = []

        def link(operator):
            self.asked.append(operator)
            return LINK

        return self.listen_admin(site_with(link))

    @defer.inlineCallbacks
    def test_prints_link(self):
        """
        The link goes to standard output alone (for a script), its
        lifetime to standard error; the daemon is told who asks.
        """
        code, out, err = yield self.run_admin("console-link")
        self.assertEqual((code, out), (0, LINK["url"] + "\n"))
        self.assertIn("valid once, for 120 seconds", err)
        self.assertEqual(len(self.asked), 1)
        self.assertTrue(self.asked[0])


class _Port:
    def __init__(self, address):
        self.address = address

    def getHost(self):
        return self.address

    def stopListening(self):
        return defer.succeed(None)


class _Endpoint:
    """
    An endpoint whose port says it is bound to C{address}.
    """

    def __init__(self, address):
        self.address = address

    def listen(self, factory):
        return defer.succeed(_Port(self.address))


class DaemonTests(SynchronousTestCase):
    """
    L{SutoServer.console_link}: links name where the console listens,
    and only a loopback console gives them.
    """

    def server(self, endpoint):
        reactor = MemoryReactorClock()
        server = make_server(reactor, listeners=Listeners(console=endpoint(reactor)))
        server.privilegedStartService()
        return server

    def test_loopback(self):
        """
        On 127.0.0.1 the link is an http URL to its port, with a token
        the console redeems once for the operator.
        """
        server = self.server(lambda r: _Endpoint(IPv4Address("TCP", "127.0.0.1", 8080)))
        link = server.console_link("root")
        self.assertRegex(
            link["url"], r"^http://127\.0\.0\.1:8080/signin\?token=[\w-]{43}$"
        )
        token = link["url"].rsplit("=", 1)[1]
        self.assertEqual(server.console.links.redeem(token), "root (console link)")
        self.assertIsNone(server.console.links.redeem(token))

    def test_ipv6_loopback(self):
        server = self.server(lambda r: TCP6ServerEndpoint(r, 8080, interface="::1"))
        self.assertTrue(
            server.console_link("root")["url"].startswith("http://[::1]:8080/")
        )

    def test_not_loopback(self):
        """
        A console on every interface gives no link: the token would cross
        the network in a URL.
        """
        server = self.server(lambda r: TCP4ServerEndpoint(r, 8080))
        error = self.assertRaises(ValueError, server.console_link, "root")
        self.assertIn("loopback", str(error))
        self.assertEqual(len(server.console.links), 0)
