"""
Tests for L{suto_server.preflight}: a configuration file is checked as
deep as the server's start checks it (endpoints parsed, files opened,
rules across options), by C{suto-admin config check} with each problem at
its line, and by C{twistd suto}'s start with one line, without a port
bound or a file written.
"""

import datetime
import io
import os
import socket

from twisted.internet import reactor
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_server import tap
from suto_server.admin import cli as admin
from suto_server.core.configurable import OptionProblem
from suto_server.datafolder import DATABASE_FILE
from suto_server.net import certificate
from suto_server.preflight import check_start, problems_before_start
from suto_server.store.open import open_store
from tests.support.postgres import new_location


class _Files:
    """
    A folder of configuration files, a TLS key and certificate, and a TCP
    port held open on the loopback address.
    """

    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.data = os.path.join(self.folder, "data")
        self.key, self.cert, _ = certificate.ensure_self_signed(
            self.folder, "suto.example", datetime.datetime.now(datetime.UTC)
        )
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        self.port = held.getsockname()[1]

    def write(self, text, name="suto.toml"):
        path = os.path.join(self.folder, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f'data = "{self.data}"\n' + text)
        return path

    def check(self, path):
        """
        Run C{suto-admin config check PATH}.

        @return: its exit status and standard error's lines.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = admin.main(["config", "check", path], stdout=stdout, stderr=stderr)
        return code, stderr.getvalue().splitlines()

    def assert_port_free_to_us(self):
        """
        The held port is still ours alone to bind: nothing bound it in the
        meantime and left it in another state (a second socket is refused
        it while ours holds it).
        """
        other = socket.socket()
        self.addCleanup(other.close)
        self.assertRaises(OSError, other.bind, ("127.0.0.1", self.port))


#: Each example of a file the server refused at start though config check
#: passed it: its keys (on lines 2 and 3, after data), and the start of
#: the message for its line.
_STARTING = [
    ('listen = "tcp:notaport"\n', "--listen tcp:notaport: invalid literal"),
    ('metrics-listen = "bogus:1"\n', "--metrics-listen bogus:1: bogus: endpoints"),
    ('locations = "/nonexistent/locations.txt"\n',
     "--locations /nonexistent/locations.txt: No such file or directory"),
    ('shadow = "/nonexistent/shadow"\n',
     "--shadow cannot read /nonexistent/shadow: No such file or directory"),
    ('listen = "ssl:{port}:privateKey=/nonexistent/key.pem"\n',
     "--listen ssl:{port}:privateKey=/nonexistent/key.pem: cannot read the "
     "private key file"),
    ('listen = "ssl:{port}:privateKey={key}:certKey=/nonexistent/cert.pem"\n',
     "--listen ssl:{port}:privateKey={key}:certKey=/nonexistent/cert.pem: "),
    ('alert-file = "/nonexistent/alerts.jsonl"\n',
     "--alert-file /nonexistent/alerts.jsonl: its folder does not exist"),
    ('api-listen = "ssl:{port}"\n',
     "--api-listen ssl:{port}: the verification API needs client "
     "certificates from a named CA"),
    ('api-listen = "ssl:{port}:caCerts={cert}:requireClientCert=no"\n',
     "--api-listen ssl:{port}:caCerts={cert}:requireClientCert=no: the "
     "verification API needs client certificates"),
    ('api-listen = "tcp:{port}"\n',
     "--api-listen tcp:{port}: tcp: endpoints are not served here"),
    ('console-listen = "ssl:{port}:caCerts=/nonexistent/operators.pem"\n',
     "--console-listen ssl:{port}:caCerts=/nonexistent/operators.pem: cannot "
     "read"),
    ('console-listen = "ssl:{port}:caCerts={cert}:requireClientCert=maybe"\n',
     "--console-listen ssl:{port}:caCerts={cert}:requireClientCert=maybe: "
     "requireClientCert must be yes or no"),
    ('verify-targets = "/nonexistent/targets.txt"\n',
     "--verify-targets /nonexistent/targets.txt: No such file or directory"),
]

#: Examples whose values the options refuse, with their line's message.
_REFUSED = [
    ('hello-interface = "not-an-address"\n',
     "hello-interface: --hello-interface must be an IPv4 address"),
    ("auth-timeout = 1e-300\n",
     "auth-timeout: bad value 1e-300: must be at least 0.001"),
    ("exchange-timeout = nan\n", "exchange-timeout: bad value nan: must be positive"),
    ("login-grace = 1e-300\n", "login-grace: bad value 1e-300: must be at least"),
    ('store = "suto.db"\n',
     "store: bad value 'suto.db': must be a PostgreSQL connection URI"),
    ("offline-step = 67\n",
     "offline-step: --offline-step must not be longer than the agent's "
     "offline deadline"),
    ('admin-subjects = "operator1"\n',
     "admin-subjects: the client certificate roles: 'operator1' is not "
     "a subject"),
    ("api-in-flight = 0\n", "api-in-flight: --api-in-flight must be at least 1"),
]


class ConfigCheckTests(_Files, SynchronousTestCase):
    """
    C{suto-admin config check} finds what would stop the server at start.
    """

    def example(self, text):
        return text.format(port=self.port, key=self.key, cert=self.cert)

    def test_each_example(self):
        """
        Each example of a file the server refuses is reported at its line,
        the check exits 1, and the port the file names stays ours.
        """
        for text, message in _STARTING + _REFUSED:
            with self.subTest(text):
                path = self.write(self.example(text))
                code, lines = self.check(path)
                self.assertEqual(code, 1)
                self.assertEqual(len(lines), 2, lines)
                self.assertTrue(
                    lines[0].startswith(f"{path}:2: {self.example(message)}"),
                    lines[0],
                )
                self.assertEqual(lines[1], f"suto-admin: 1 problem(s) in {path}")
        self.assert_port_free_to_us()
        self.assertFalse(os.path.exists(self.data))

    def test_every_problem(self):
        """
        All the problems of one file are reported, each at its line: those
        of values with those of what the other values would start.
        """
        path = self.write(
            'listen = "tcp:notaport"\n'
            "auth-timeout = 1e-300\n"
            'metrics-listen = "bogus:1"\n'
            'shadow = "/nonexistent/shadow"\n'
            'locations = "/nonexistent/locations.txt"\n'
        )
        code, lines = self.check(path)
        self.assertEqual(code, 1)
        self.assertEqual(
            [line.split(": ", 2)[:2] for line in lines],
            [
                [f"{path}:2", "--listen tcp:notaport"],
                [f"{path}:3", "auth-timeout"],
                [f"{path}:4", "--metrics-listen bogus:1"],
                [f"{path}:5", "--shadow cannot read /nonexistent/shadow"],
                [f"{path}:6", "--locations /nonexistent/locations.txt"],
                ["suto-admin", f"5 problem(s) in {path}"],
            ],
        )

    def test_valid(self):
        """
        A file naming a TLS listener on a port another socket holds, its
        key and certificate, a metrics page and an alert file in the data
        folder passes: endpoints are parsed, not listened on, and nothing
        is written.
        """
        path = self.write(
            f'listen = "ssl:{self.port}:privateKey={self.key}:certKey={self.cert}"\n'
            f'metrics-listen = "tcp:{self.port}:interface=127.0.0.1"\n'
            f'alert-file = "{self.data}/alerts.jsonl"\n'
            "offline-step = 66\n"
        )
        self.assertEqual(self.check(path), (0, []))
        self.assert_port_free_to_us()
        self.assertFalse(os.path.exists(self.data))

    def test_generated_certificate(self):
        """
        An C{ssl:} listener without a key, which serves the certificate
        the server generates in its data folder, is checked without making
        the data folder.
        """
        path = self.write(f'listen = "ssl:{self.port}"\n')
        self.assertEqual(self.check(path), (0, []))
        path = self.write('listen = "ssl:notaport"\n')
        code, lines = self.check(path)
        self.assertEqual(code, 1)
        self.assertTrue(lines[0].startswith(f"{path}:2: --listen ssl:notaport: "))
        self.assertFalse(os.path.exists(self.data))

    def test_console_client_certificates(self):
        """
        An C{ssl:} console is parsed by the hardened TLS parser, which
        takes C{caCerts} (Twisted's stock parser does not); without a key
        of its own it serves the device listener's certificate, so it
        checks without one.
        """
        path = self.write(
            f'listen = "ssl:{self.port}:privateKey={self.key}:certKey={self.cert}"\n'
            f'console-listen = "ssl:{self.port}:interface=127.0.0.1'
            f':caCerts={self.cert}"\n'
        )
        self.assertEqual(self.check(path), (0, []))
        self.assert_port_free_to_us()
        options = tap.Options()
        options.parseOptions(
            ["--data", self.data, "--hello-port", "9",
             "--listen", f"ssl:{self.port}:privateKey={self.key}:certKey={self.cert}",
             "--console-listen", f"ssl:{self.port}:caCerts={self.cert}"
             ":requireClientCert=yes"]
        )
        checked = check_start(reactor, options, self.data, options["listen"])
        self.assertEqual(checked.problems, [])
        with open(self.cert, "rb") as handle:
            own = certificate.describe(handle.read()).fingerprint
        served = checked.listeners.console.tls.certificate_info().fingerprint
        self.assertEqual(served, own)

    def test_admin_socket(self):
        """
        The admin socket the data folder implies is checked with the data
        folder's name quoted (a colon in it is no endpoint argument); a
        problem of C{--admin} is that option's.
        """
        options = tap.Options()
        options.parseOptions(["--data", "/nonexistent/da:ta", "--hello-port", "9"])
        self.assertEqual(problems_before_start(options), [])
        options = tap.Options()
        options.parseOptions(["--admin", "unix:/tmp/admin.sock"])
        self.assertEqual(
            [problem.option for problem in problems_before_start(options)],
            ["admin"],
        )

    def test_alert_file_not_writable(self):
        """
        An alert file that is a folder is a problem of C{--alert-file}.
        """
        options = tap.Options()
        options.parseOptions(["--data", self.data, "--alert-file", self.folder])
        self.assertEqual(
            problems_before_start(options),
            [OptionProblem("alert-file", f"--alert-file {self.folder}: is a folder")],
        )


class StoreCheckTests(_Files, SynchronousTestCase):
    """
    C{suto-admin config check} connects to the PostgreSQL store a file
    names, and changes nothing there.
    """

    def query(self, location, sql):
        """
        @return: the first column of the one row C{sql} reads at C{location}.
        """
        import psycopg

        with psycopg.connect(location) as connection:
            [(value,)] = connection.execute(sql).fetchall()
        return value

    def test_accepted(self):
        """
        A URI without a password, of an empty database, passes, and the
        database stays empty: creating the schema is the start's work.
        """
        location = new_location(self)
        self.assertEqual(self.check(self.write(f'store = "{location}"\n')), (0, []))
        tables = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        self.assertEqual(self.query(location, tables), 0)
        self.assertFalse(os.path.exists(self.data))

    def test_password_refused(self):
        """
        A URI carrying a password is a problem of C{store} at its line,
        saying where the password belongs and not showing it.
        """
        path = self.write('store = "postgresql://suto:secret@db.invalid/suto"\n')
        code, lines = self.check(path)
        self.assertEqual(code, 1)
        self.assertTrue(
            lines[0].startswith(
                f"{path}:2: --store: the store's URI must not carry a password"
            ),
            lines[0],
        )
        self.assertIn("PGPASSFILE", lines[0])
        self.assertIn("PGPASSWORD", lines[0])
        self.assertNotIn("secret", "\n".join(lines))

    def test_unusable(self):
        """
        A store of a newer schema, and a server that cannot be reached,
        are problems of C{store}.
        """
        location = new_location(self)
        open_store(location).close()
        self.query(location, "UPDATE version SET version = 99 RETURNING version")
        unreachable = "postgresql://suto@/suto?host=/nonexistent"
        for uri, message in [
            (location, "--store: the store has schema v99"),
            (unreachable, "--store: connecting to the store failed"),
        ]:
            path = self.write(f'store = "{uri}"\n')
            code, lines = self.check(path)
            self.assertEqual((code, len(lines)), (1, 2), lines)
            self.assertTrue(lines[0].startswith(f"{path}:2: {message}"), lines[0])


class StartTests(_Files, SynchronousTestCase):
    """
    The same files stop C{twistd suto} at start, with one line.
    """

    def test_stops_with_one_line(self):
        """
        A file whose values pass but whose endpoints or files do not stops
        the server's start with one line naming the option, before its
        store is opened.
        """
        for text, message in _STARTING:
            with self.subTest(text):
                options = tap.Options()
                values = dict(port=self.port, key=self.key, cert=self.cert)
                options.parseOptions(["--config", self.write(text.format(**values))])
                error = self.assertRaises(SystemExit, tap.makeService, options)
                self.assertNotIn("\n", error.code)
                expected = message.format(**values)
                self.assertTrue(
                    error.code.startswith(f"suto: cannot start: {expected}"),
                    error.code,
                )
                self.assertFalse(
                    os.path.exists(os.path.join(self.data, DATABASE_FILE))
                )

    def test_refused_values(self):
        """
        A file whose values the options refuse is a usage error at the
        file's line, before the server is built.
        """
        for text, message in _REFUSED:
            with self.subTest(text):
                path = self.write(text)
                error = self.assertRaises(
                    usage.UsageError, tap.Options().parseOptions, ["--config", path]
                )
                self.assertTrue(str(error).startswith(f"{path}:2: {message}"))
