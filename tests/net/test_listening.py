"""
Tests for L{suto_server.net.listening}: which endpoints each listener
option takes, and a listener that cannot listen stopping the server at
start.
"""

import errno
import os
import socket
import stat

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.net.descriptions import (
    DEFAULT_LISTEN,
    DEVICE_TYPES,
    METRICS_TYPES,
    ListenerOptionError,
    tls_listen,
)
from suto_server.net.endpoint import server_endpoint
from suto_server.net.listening import (
    ADMIN_UMASK,
    CannotListen,
    ListeningService,
    OptionEndpoint,
    admin_endpoint,
    option_endpoint,
)
from tests.support.folders import socket_folder


class OptionEndpointTests(SynchronousTestCase):
    """
    L{option_endpoint}: an endpoint string given to a listener option is
    parsed at start, and refused with one line naming the option when it
    is not one the option takes.
    """

    def setUp(self):
        self.reactor = MemoryReactor()

    def refused(self, option, description, types=DEVICE_TYPES):
        error = self.assertRaises(
            ListenerOptionError,
            option_endpoint,
            self.reactor,
            option,
            description,
            types,
            serverFromString,
        )
        message = str(error)
        self.assertTrue(message.startswith(f"{option} {description}: "), message)
        self.assertNotIn("\n", message)
        return message

    def test_accepted(self):
        """
        An endpoint of a type the option takes is parsed, and kept with
        the option and the string that described it.
        """
        endpoint = option_endpoint(
            self.reactor, "--metrics-listen", "tcp:9464:interface=127.0.0.1",
            METRICS_TYPES, serverFromString,
        )
        self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))
        self.assertEqual(str(endpoint), "--metrics-listen tcp:9464:interface=127.0.0.1")
        self.assertIsNone(endpoint.tls)
        endpoint.listen(Factory())
        [(port, _, _, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (9464, "127.0.0.1"))

    def test_twisted_tls_refused(self):
        """
        Twisted's C{tls:} endpoint reads C{tls:15023} as a certificate
        folder named 15023 on port 443: no listener option takes it, and
        the line says which types it does take.
        """
        message = self.refused("--listen", "tls:15023")
        self.assertIn("use ssl:, suto-tls:, tcp:, tcp6:, unix:", message)

    def test_unknown_type_refused(self):
        """
        An endpoint type no option takes (here a misspelt one) is refused.
        """
        self.refused("--metrics-listen", "bogus:1", METRICS_TYPES)

    def test_misspelt_keyword(self):
        """
        A misspelt keyword is refused in one line naming it, not with
        Twisted's traceback.
        """
        message = self.refused(
            "--metrics-listen", "tcp:9464:interfce=127.0.0.1", METRICS_TYPES
        )
        self.assertTrue(
            message.endswith("got an unexpected keyword argument 'interfce'"),
            message,
        )

    def test_bad_values(self):
        """
        A port that is not a number, too many arguments, and a TLS
        argument the hardened parser refuses are each one line.
        """
        self.refused("--metrics-listen", "tcp:metrics", METRICS_TYPES)
        self.refused("--legacy-listen", "tcp:1:2:3:4:5")
        error = self.assertRaises(
            ListenerOptionError,
            option_endpoint,
            self.reactor,
            "--listen",
            "ssl:2021:foo=bar",
            DEVICE_TYPES,
            server_endpoint,
        )
        self.assertEqual(str(error), "--listen ssl:2021:foo=bar: suto-tls does not take foo")

    def test_full_description(self):
        """
        What is parsed may say more than what the operator wrote (the
        generated certificate's files), and the endpoint is still named by
        what the operator wrote; a TLS endpoint keeps its settings.
        """
        data = self.mktemp()
        os.makedirs(data)
        endpoint = option_endpoint(
            self.reactor, "--listen", DEFAULT_LISTEN, DEVICE_TYPES, server_endpoint,
            full=tls_listen(data, "it-srv1.example", DEFAULT_LISTEN),
        )
        self.assertEqual(str(endpoint), "--listen ssl:2021")
        self.assertIsNotNone(endpoint.tls)


class AdminEndpointTests(SynchronousTestCase):
    """
    L{admin_endpoint}: the admin API, which has no login of its own, is
    served only on a UNIX socket other users cannot reach.
    """

    def refused(self, description):
        error = self.assertRaises(
            ListenerOptionError, admin_endpoint, MemoryReactor(), "--admin", description
        )
        self.assertTrue(str(error).startswith(f"--admin {description}: "), str(error))
        return str(error)

    def test_network_refused(self):
        """
        A TCP endpoint, with or without TLS, is refused: anyone reaching
        the port would be an operator.
        """
        for description in ["tcp:8080", "tcp6:8080", "ssl:8443:privateKey=k.pem"]:
            self.assertIn("only on a UNIX socket", self.refused(description))

    def test_open_socket_refused(self):
        """
        A UNIX socket that other users may connect to is refused: without
        a mode (the socket is then open to all) or with one that gives
        others access.
        """
        for description in ["unix:/run/suto/admin.sock", "unix:/run/suto/admin.sock:mode=666",
                            "unix:/run/suto/admin.sock:mode=601"]:
            self.assertIn("mode=600", self.refused(description))

    def test_private_socket(self):
        """
        A UNIX socket for its owner, or its owner's group, is the admin
        API's endpoint, with the mode it is given.
        """
        for mode in [0o600, 0o660]:
            reactor = MemoryReactor()
            endpoint = admin_endpoint(
                reactor, "--admin", f"unix:/run/suto/admin.sock:mode={mode:o}"
            )
            endpoint.listen(Factory())
            [(path, _, _, given, _)] = reactor.unixServers
            self.assertEqual((path, given), ("/run/suto/admin.sock", mode))


class AdminFolderTests(SynchronousTestCase):
    """
    L{admin_endpoint} refuses a socket in a folder others could write to
    or another user owns, where someone could put a socket of their own
    in its place; the data folder, which the daemon keeps at 0700, is not
    checked.
    """

    def folder(self, mode):
        folder = os.path.abspath(self.mktemp())
        os.mkdir(folder)
        os.chmod(folder, mode)
        return folder

    def admin(self, folder, mode="600", data=None):
        return admin_endpoint(
            MemoryReactor(), "--admin",
            f"unix:{folder}/admin.sock:mode={mode}", data,
        )

    def test_writable_folder_refused(self):
        """
        A folder writable by others, or by the group (even for a socket of
        mode 660), is refused with one line naming the option.
        """
        for folder_mode, mode in [(0o777, "600"), (0o1777, "600"), (0o770, "660")]:
            folder = self.folder(folder_mode)
            error = self.assertRaises(
                ListenerOptionError, self.admin, folder, mode
            )
            self.assertEqual(
                str(error),
                f"--admin unix:{folder}/admin.sock:mode={mode}: the socket's "
                f"folder {folder} is writable by other users: use a folder "
                "only the daemon's user can write to",
            )

    def test_other_owner_refused(self):
        """
        A folder another user owns is refused, however narrow its mode.
        """
        if os.geteuid() != 0:
            raise SkipTest("only root can give a folder to another user")
        folder = self.folder(0o700)
        os.chown(folder, 4242, -1)
        error = self.assertRaises(ListenerOptionError, self.admin, folder)
        self.assertIn("is not the daemon's user's", str(error))

    def test_private_folder(self):
        """
        A socket of mode 600, or 660 for a group of operators, is taken in
        a folder only the daemon's user can write to; one whose folder does
        not exist yet is left to the listener.
        """
        for mode in ["600", "660"]:
            self.admin(self.folder(0o750), mode)
        self.admin("/nonexistent/suto")

    def test_data_folder(self):
        """
        The admin socket in the data folder is not checked there.
        """
        data = self.folder(0o777)
        self.admin(data, data=data)
        self.admin(data + "/", data=data)

    def test_escaped_path(self):
        """
        The folder checked is the one the endpoint string names, its
        escaped colons unescaped.
        """
        folder = self.folder(0o777)
        os.rename(folder, folder + ":x")
        description = f"unix:address={folder}\\:x/admin.sock:mode=600"
        self.assertRaises(
            ListenerOptionError, admin_endpoint, MemoryReactor(), "--admin",
            description,
        )


class _Binding:
    """
    An endpoint that binds a real UNIX socket and records its mode as
    bound, before anything could change it.
    """

    def __init__(self, path, error=None):
        self.path = path
        self.error = error
        self.modes = []

    def listen(self, factory):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(self.path)
        self.modes.append(stat.S_IMODE(os.stat(self.path).st_mode))
        sock.close()
        if self.error is not None:
            raise self.error
        return succeed(None)


class AdminUmaskTests(SynchronousTestCase):
    """
    The admin socket is bound under L{ADMIN_UMASK}, so it never has the
    process's umask permissions before Twisted gives it its mode; the
    process's umask is restored after.
    """

    def setUp(self):
        previous = os.umask(0o022)
        self.addCleanup(os.umask, previous)
        # A socket's path has a short limit (108 bytes), which a test
        # folder deep in a checkout can pass.
        self.path = os.path.join(socket_folder(self, "suto-umask-"), "admin.sock")

    def test_bound_private(self):
        """
        The socket is bound with nothing for the group and others, and the
        umask is the process's again after.
        """
        binding = _Binding(self.path)
        endpoint = OptionEndpoint("--admin", "unix:admin.sock", binding)
        endpoint.umask = ADMIN_UMASK
        endpoint.listen(Factory())
        self.assertEqual(binding.modes[0] & 0o077, 0)
        self.assertEqual(os.umask(0o022), 0o022)

    def test_restored_on_error(self):
        """
        The umask is restored when listening fails too.
        """
        binding = _Binding(self.path, OSError(errno.EADDRINUSE, "in use"))
        endpoint = OptionEndpoint("--admin", "unix:admin.sock", binding)
        endpoint.umask = ADMIN_UMASK
        self.assertRaises(OSError, endpoint.listen, Factory())
        self.assertEqual(os.umask(0o022), 0o022)

    def test_admin_endpoint_umask(self):
        """
        L{admin_endpoint} gives the admin socket's endpoint that umask;
        other listeners keep the process's.
        """
        folder = os.path.abspath(self.mktemp())
        os.mkdir(folder, 0o700)
        endpoint = admin_endpoint(
            MemoryReactor(), "the admin socket in --data",
            f"unix:{folder}/admin.sock:mode=600:lockfile=1", folder,
        )
        self.assertEqual(endpoint.umask, ADMIN_UMASK)
        other = option_endpoint(
            MemoryReactor(), "--metrics-listen", "tcp:9464", METRICS_TYPES,
            serverFromString,
        )
        self.assertIsNone(other.umask)


class _Endpoint:
    """
    An endpoint whose C{listen} returns a given Deferred.
    """

    def __init__(self, result):
        self.result = result
        self.factories = []

    def listen(self, factory):
        self.factories.append(factory)
        return self.result


class ListeningServiceTests(SynchronousTestCase):
    """
    L{ListeningService} listens before anything is served, and stops the
    server with one line when it cannot.
    """

    def taken(self):
        return OptionEndpoint(
            "--listen",
            "ssl:2021",
            _Endpoint(
                fail(CannotListenError("", 2021, OSError(errno.EADDRINUSE, "Address already in use")))
            ),
        )

    def test_listens_when_privileged(self):
        """
        The service listens in C{privilegedStartService}, which twistd
        runs before dropping privileges and before serving, and not again
        in C{startService}; C{listening} fires with the port.
        """
        reactor = MemoryReactor()
        service = ListeningService("metrics", TCP4ServerEndpoint(reactor, 9464), Factory())
        service.privilegedStartService()
        self.assertEqual(len(reactor.tcpServers), 1)
        service.startService()
        self.assertEqual(len(reactor.tcpServers), 1)
        port = self.successResultOf(service.listening)
        self.assertEqual(service.address, port.getHost())

    def test_logged_address(self):
        """
        The line saying where the service listens names the address as an
        operator writes it, whatever observer renders it.
        """
        reactor = MemoryReactor()
        service = ListeningService("metrics", TCP4ServerEndpoint(reactor, 9464), Factory())
        with capturedLogs() as events:
            service.privilegedStartService()
        [event] = [e for e in events if "address" in e]
        self.assertEqual(event["address"], "0.0.0.0:9464")

    def test_listens_when_started(self):
        """
        Started without C{privilegedStartService} (outside twistd), it
        listens in C{startService}; stopped and started again, it listens
        again.
        """
        reactor = MemoryReactor()
        service = ListeningService("metrics", TCP4ServerEndpoint(reactor, 9464), Factory())
        service.startService()
        self.successResultOf(service.listening)
        service.stopService()
        service.startService()
        self.successResultOf(service.listening)
        self.assertEqual(len(reactor.tcpServers), 2)

    def test_cannot_listen(self):
        """
        An endpoint that fails to listen raises L{CannotListen} at start:
        both an exception (twistd hands its one-line message to the
        process the operator started) and a L{SystemExit} whose code is
        the one line a foreground twistd prints, naming the option and its
        string; nothing is logged (twistd logs the line it prints), so no
        traceback either.
        """
        service = ListeningService("SUTO listener", self.taken(), Factory())
        with capturedLogs() as events:
            error = self.assertRaises(CannotListen, service.privilegedStartService)
        self.assertIsInstance(error, Exception)
        self.assertIsInstance(error, SystemExit)
        self.assertEqual(str(error), "--listen ssl:2021: address already in use")
        self.assertEqual(
            error.code, "suto: cannot start: --listen ssl:2021: address already in use"
        )
        self.assertEqual(events, [])
        self.assertNoResult(service.listening)
        self.assertIsNone(service.address)

    def test_reasons(self):
        """
        The reason is the socket's error in a few words, whatever raised
        it; a listener not named by an option is named by its service.
        """
        for error, reason in [
            (CannotListenError(None, b"/x/admin.sock", OSError("AF_UNIX path too long")),
             "AF_UNIX path too long"),
            (CannotListenError(None, b"/x/admin.sock", "Cannot acquire lock"),
             "cannot acquire lock"),
            (FileNotFoundError(errno.ENOENT, "No such file or directory"),
             "no such file or directory"),
            (OverflowError("bind(): port must be 0-65535."), "bind(): port must be 0-65535."),
        ]:
            service = ListeningService("admin API", _Endpoint(fail(error)), Factory())
            raised = self.assertRaises(CannotListen, service.privilegedStartService)
            self.assertEqual(str(raised), f"admin API: {reason}")

    def test_not_at_once(self):
        """
        An endpoint that does not listen at once is refused at start (and
        its attempt cancelled): the server cannot know it will serve.
        """
        cancelled = []
        endpoint = _Endpoint(Deferred(cancelled.append))
        service = ListeningService("metrics", endpoint, Factory())
        error = self.assertRaises(CannotListen, service.privilegedStartService)
        self.assertEqual(str(error), "metrics: did not listen at once")
        self.assertEqual(len(cancelled), 1)
