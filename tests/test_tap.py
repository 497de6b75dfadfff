"""
Tests for L{suto_server.tap}: what C{twistd suto} checks before it builds
the server, and the data folder it builds it on.
"""

import os

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import tap as client_tap
from suto_server import tap
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.datalock import DataFolderLock
from suto_server.masterkey import MasterKey
from suto_server.restoration import JOURNAL, MANIFEST
from suto_server.store.postgres import PostgresStore
from tests.support.postgres import new_location
from tests.support.store_suite.values import HASH


def options(*arguments):
    """
    Parsed L{tap.Options}: C{arguments} after a server that sends hellos
    nowhere that answers.
    """
    parsed = tap.Options()
    parsed.parseOptions(["--hello-port", "9", *arguments])
    return parsed


class DataFolderTests(SynchronousTestCase):
    """
    The data folder: private, and one server's alone.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())

    def make(self, *arguments):
        server = tap.makeService(
            options("--data", self.data, "--listen", "tcp:0", *arguments)
        )
        self.addCleanup(server.store.close)
        return server

    def test_private(self):
        """
        The server makes its data folder its owner's alone (0700), also
        when the folder was there before, open to others.
        """
        os.makedirs(self.data, mode=0o755)
        os.chmod(self.data, 0o755)
        server = self.make()
        self.addCleanup(server.namedServices["data folder lock"].release)
        self.assertEqual(os.stat(self.data).st_mode & 0o777, 0o700)

    def test_locked_before_built(self):
        """
        A data folder another server holds stops the server at start with
        one line, before its store is opened.
        """
        os.makedirs(self.data)
        lock = DataFolderLock.acquire(self.data)
        self.addCleanup(lock.release)
        error = self.assertRaises(
            SystemExit,
            tap.makeService,
            options("--data", self.data),
        )
        self.assertEqual(
            error.code,
            f"suto: cannot start: the data folder {self.data} is in use by the "
            f"server with pid {os.getpid()}",
        )
        self.assertFalse(os.path.exists(os.path.join(self.data, DATABASE_FILE)))

    def test_restore_settled(self):
        """
        A restore that a crash cut short after its commit point is carried
        through before the server opens anything, and its journal goes.
        """
        journal = os.path.join(self.data, JOURNAL)
        os.makedirs(journal)
        MasterKey.load_or_create(os.path.join(journal, MASTER_KEY_FILE))
        with open(os.path.join(journal, MASTER_KEY_FILE), "rb") as handle:
            staged = handle.read()
        with open(os.path.join(journal, MANIFEST), "w") as handle:
            handle.write(f"{MASTER_KEY_FILE}\n")
        server = self.make()
        self.addCleanup(server.namedServices["data folder lock"].release)
        self.assertFalse(os.path.exists(journal))
        with open(os.path.join(self.data, MASTER_KEY_FILE), "rb") as handle:
            self.assertEqual(handle.read(), staged)

    def test_held_while_running(self):
        """
        The server holds its data folder's lock as one of its services,
        and lets it go when it fails to build.
        """
        server = self.make()
        lock = server.namedServices["data folder lock"]
        self.assertIsInstance(lock, DataFolderLock)
        self.assertRaises(SystemExit, tap.makeService, options("--data", self.data))
        lock.release()
        self.assertRaises(
            SystemExit,
            tap.makeService,
            options("--data", self.data, "--shadow", self.mktemp()),
        )
        DataFolderLock.acquire(self.data).release()


class StoreOptionTests(SynchronousTestCase):
    """
    C{--store}: the server keeps its store in a PostgreSQL database, and
    its keys, TLS files, lock and admin socket in its data folder.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())

    def make(self, *arguments):
        server = tap.makeService(
            options("--data", self.data, "--listen", "tcp:0", *arguments)
        )
        self.addCleanup(server.store.close)
        self.addCleanup(server.namedServices["data folder lock"].release)
        return server

    def test_postgres(self):
        """
        With C{--store} the server's store is the PostgreSQL database the
        URI names, its schema created at start; the data folder holds the
        master key but no SQLite file.
        """
        server = self.make("--store", new_location(self))
        self.assertIsInstance(server.store, PostgresStore)
        server.store.add_user("alice", HASH, 1.0)
        self.assertEqual(server.store.hash_for("alice"), HASH)
        self.assertTrue(os.path.exists(os.path.join(self.data, MASTER_KEY_FILE)))
        self.assertFalse(os.path.exists(os.path.join(self.data, DATABASE_FILE)))

    def test_from_config(self):
        """
        The configuration file's C{store} key is C{--store}.
        """
        config = os.path.abspath(self.mktemp())
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(f'store = "{new_location(self)}"\n')
        server = self.make("--config", config)
        self.assertIsInstance(server.store, PostgresStore)

    def test_password_refused(self):
        """
        A URI carrying a password stops the server at start with one line
        naming the option and where the password belongs, never the
        password, before anything of the store is opened.
        """
        error = self.assertRaises(
            SystemExit,
            tap.makeService,
            options(
                "--data", self.data, "--listen", "tcp:0",
                "--store", "postgresql://suto:secret@db.invalid/suto",
            ),
        )
        self.assertNotIn("\n", error.code)
        self.assertTrue(error.code.startswith("suto: cannot start: --store: "))
        self.assertIn("PGPASSFILE", error.code)
        self.assertIn("PGPASSWORD", error.code)
        self.assertNotIn("secret", error.code)
        self.assertFalse(os.path.exists(os.path.join(self.data, MASTER_KEY_FILE)))

    def test_unreachable(self):
        """
        A server that cannot be reached stops the start with one line
        naming the option, libpq's hints included.
        """
        error = self.assertRaises(
            SystemExit,
            tap.makeService,
            options(
                "--data", self.data, "--listen", "tcp:0",
                "--store", "postgresql://suto@/suto?host=/nonexistent",
            ),
        )
        self.assertNotIn("\n", error.code)
        self.assertTrue(
            error.code.startswith(
                "suto: cannot start: --store: connecting to the store failed: "
            ),
            error.code,
        )
        self.assertIn("Is the server running", error.code)

    def test_not_a_uri(self):
        """
        C{--store} takes only a PostgreSQL URI: the SQLite store is always
        the data folder's file.
        """
        for value in ["suto.db", "/var/lib/suto/suto.db", "mysql://db/suto"]:
            error = self.assertRaises(usage.UsageError, options, "--store", value)
            self.assertIn("PostgreSQL connection URI", str(error))
        location = "postgres://suto@db.example/suto"
        self.assertEqual(options("--store", location)["store"], location)


class EndpointOptionTests(SynchronousTestCase):
    """
    Every endpoint string is checked when the server is built, and one
    that cannot serve stops it with one line naming the option, before
    its store is opened.
    """

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())

    def refused(self, *arguments):
        error = self.assertRaises(
            SystemExit, tap.makeService, options("--data", self.data, *arguments)
        )
        self.assertNotIn("\n", error.code)
        self.assertFalse(os.path.exists(os.path.join(self.data, DATABASE_FILE)))
        return error.code

    def test_each_option(self):
        """
        Each listener option's string is checked, and the line names it.
        """
        for arguments, line in [
            (("--listen", "tls:15023"), "--listen tls:15023: tls: endpoints are not served here"),
            (("--legacy-listen", "tcp:legacy"), "--legacy-listen tcp:legacy: "),
            (("--metrics-listen", "bogus:1"), "--metrics-listen bogus:1: bogus: endpoints"),
            (("--metrics-listen", "tcp:9464:interfce=127.0.0.1"),
             ("--metrics-listen tcp:9464:interfce=127.0.0.1: got an unexpected "
              "keyword argument 'interfce'")),
            (("--admin", "tcp:8080"), "--admin tcp:8080: the admin API has no login"),
            (("--console-listen", "unix:/tmp/console.sock"),
             "--console-listen unix:/tmp/console.sock: unix: endpoints are not served"),
            (("--console-listen", "tcp:notaport"), "--console-listen tcp:notaport: "),
            (("--admin", "unix:/tmp/admin.sock"),
             ("--admin unix:/tmp/admin.sock: the socket must give other users "
              "nothing")),
        ]:
            code = self.refused(*arguments)
            self.assertTrue(code.startswith(f"suto: cannot start: {line}"), code)

    def test_accepted(self):
        """
        The daemon's defaults and the documented strings build a server
        (which listens only once started).
        """
        server = tap.makeService(
            options(
                "--data", self.data,
                "--legacy-listen", "tcp:2021",
                "--metrics-listen", "tcp:9464:interface=127.0.0.1",
                "--console-listen", "8443",
            )
        )
        self.addCleanup(server.store.close)
        self.addCleanup(server.namedServices["data folder lock"].release)
        self.assertEqual(
            [str(listener._endpoint) for listener in server.listeners],
            [
                "--listen ssl:2021",
                "--legacy-listen tcp:2021",
                # A bare port is on loopback, where login links work.
                "--console-listen tcp:8443:interface=127.0.0.1",
                (
                    "the admin socket in --data "
                    f"unix:{self.data}/admin.sock:mode=600:lockfile=1"
                ),
                "--metrics-listen tcp:9464:interface=127.0.0.1",
            ],
        )


class HelloInterfaceTests(SynchronousTestCase):
    """
    C{--hello-interface}: an IPv4 address, or empty for any.
    """

    def test_checked(self):
        """
        Anything but an IPv4 address is refused when the options are
        parsed, with a line naming the option, rather than starting a
        server whose every hello fails.
        """
        for value in ["eth0", "localhost", "::1", "10.0.0.256"]:
            error = self.assertRaises(
                usage.UsageError, options, "--hello-interface", value
            )
            self.assertIn("--hello-interface", str(error))
        self.assertEqual(options("--hello-interface", "192.0.2.1")["hello-interface"],
                         "192.0.2.1")
        self.assertEqual(options()["hello-interface"], "")


def _seconds_options(options_class):
    """
    The options of C{options_class} in seconds, with their coerce
    functions.
    """
    return {
        parameter[0]: parameter[4]
        for parameter in options_class.optParameters
        if len(parameter) > 4
        and getattr(parameter[4], "coerceDoc", "").startswith("Seconds, from")
    }


class SecondsOptionTests(SynchronousTestCase):
    """
    Every option in seconds, of either daemon, takes only durations its
    timers can honour.
    """

    def test_absurdly_small(self):
        """
        Each seconds option of either daemon refuses 1e-300, anything under
        a millisecond, negative numbers and NaN; 0 only where it turns the
        option off.
        """
        for options_class, count, off in [
            (tap.Options, 13, {"login-grace", "penalty-authfail", "penalty-grace"}),
            (client_tap.Options, 3, set()),
        ]:
            seconds = _seconds_options(options_class)
            self.assertEqual(len(seconds), count)
            for name, coerce in seconds.items():
                with self.subTest(name=name):
                    for value in ["1e-300", "0.0009", "-1", "nan"]:
                        self.assertRaises(ValueError, coerce, value)
                    if name in off:
                        self.assertEqual(coerce("0"), 0)
                    else:
                        self.assertRaises(ValueError, coerce, "0")
