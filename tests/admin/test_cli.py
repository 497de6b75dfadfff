"""
C{suto-admin} account, window and certificate commands, run with injected
streams against the data folder of a daemon built by C{twistd suto}'s
makeService: C{user add}, C{user del}, C{user list}, C{cancel}, C{cert};
and what the entry point loads, in a fresh interpreter.
"""

import getpass
import io
import json
import os
import sqlite3
import subprocess
import sys

from twisted.internet import defer, threads
from twisted.trial.unittest import SynchronousTestCase, TestCase

from suto_client.enrollment_machine import EnrollOutcome
from suto_server.admin import cli as admin
from suto_server.core import libxcrypt, schemes
from suto_server.core.commandline import MAX_PASSWORD
from suto_server.datafolder import DATABASE_FILE
from suto_server.net import certificate
from tests.support.admin import run_admin
from tests.support.daemon import EnrollmentFixture

#: What C{suto-admin} does not load before a command needs it: the daemon's
#: assembly, its web server, HTTP client, metrics and TLS.
_DAEMON_MODULES = (
    "suto_server.tap",
    "suto_server.service",
    "twisted.web.server",
    "treq",
    "prometheus_client",
    "OpenSSL",
)

_PROBE = """
import io, json, sys
from suto_server.admin import cli
argv = sys.argv[1:]
code = cli.main(argv, stdout=io.StringIO(), stderr=io.StringIO()) if argv else None
print(json.dumps([code, sorted(sys.modules)]))
"""


def _loaded_by(*argv):
    """
    @return: the exit status of C{suto-admin argv} (L{None} with no
        arguments: the entry point is only imported) and the modules a
        fresh interpreter has loaded once it is done.
    """
    output = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(output)


class EntryPointTests(SynchronousTestCase):
    """
    C{suto-admin} starts without the daemon: its entry point is cheap to
    load, whatever command then runs.
    """

    def test_modules_loaded(self):
        """
        Importing L{suto_server.admin.cli} in a fresh interpreter loads
        fewer than 250 modules, none of the daemon's assembly, web server,
        HTTP client, metrics or TLS among them.
        """
        _, loaded = _loaded_by()
        self.assertLess(len(loaded), 250)
        self.assertEqual([name for name in _DAEMON_MODULES if name in loaded], [])
        self.assertIn("suto_server.admin.cli", loaded)

    def test_daemon_command(self):
        """
        A command that talks to the daemon (here C{status}, with no daemon
        answering) loads no more than the entry point does.
        """
        code, loaded = _loaded_by("--data", self.mktemp(), "status")
        self.assertEqual(code, 1)
        self.assertLess(len(loaded), 250)
        self.assertEqual([name for name in _DAEMON_MODULES if name in loaded], [])


class AccountCommandTests(EnrollmentFixture, TestCase):
    """
    C{suto-admin user add/del/list} write the store the running daemon
    reads.
    """

    @defer.inlineCallbacks
    def test_add_each_scheme(self):
        """
        C{user add --password-stdin} stores a hash of the password read
        from standard input: sha512-crypt by default, bcrypt and yescrypt
        on request; the daemon's store then holds a hash that the password
        (and only it) reproduces.
        """
        for user, options, scheme, prefix in (
            ("dora", (), "sha512_crypt", "$6$"),
            ("erin", ("--scheme", "bcrypt", "--rounds", "4"), "bcrypt", "$2b$"),
            ("fred", ("--scheme", "yescrypt"), "yescrypt", "$y$"),
        ):
            result = yield self.admin(
                "user", "add", user, "--password-stdin", *options,
                stdin=f"{user}'s password\n",
            )
            self.assertEqual(result, (0, f"added {user} ({scheme})\n", ""))
            stored = self.server.store.hash_for(user)
            self.assertTrue(stored.startswith(prefix), stored)
            self.assertEqual(libxcrypt.crypt(f"{user}'s password", stored), stored)
            self.assertNotEqual(libxcrypt.crypt("another password", stored), stored)

    @defer.inlineCallbacks
    def test_add_refusals(self):
        """
        An empty password (exit 2) and a user that already exists (exit 1)
        are refused with one line on standard error, and change nothing.
        """
        code, out, err = yield self.admin(
            "user", "add", "dora", "--password-stdin", stdin="\n"
        )
        self.assertEqual(
            (code, out, err), (2, "", "suto-admin: refusing an empty password\n")
        )
        self.assertIsNone(self.server.store.hash_for("dora"))
        yield self.admin("user", "add", "dora", "--password-stdin", stdin="first\n")
        stored = self.server.store.hash_for("dora")
        code, out, err = yield self.admin(
            "user", "add", "dora", "--password-stdin", stdin="second\n"
        )
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertTrue(err.startswith("suto-admin: "), err)
        self.assertEqual(self.server.store.hash_for("dora"), stored)

    @defer.inlineCallbacks
    def test_add_too_many_rounds(self):
        """
        C{--rounds} above SUTO's limit for the scheme is refused (exit 2)
        with one line naming the limit and its cost, before any hashing,
        and stores nothing.
        """
        for options, limit in (
            (("--rounds", "999999999"), "rounds=1000000"),
            (("--scheme", "bcrypt", "--rounds", "20"), "rounds=14"),
        ):
            code, out, err = yield self.admin(
                "user", "add", "dora", "--password-stdin", *options,
                stdin="dora's password\n",
            )
            self.assertEqual((code, out, err.count("\n")), (2, "", 1))
            self.assertIn(limit, err)
            self.assertIn("about a second", err)
            self.assertIsNone(self.server.store.hash_for("dora"))

    @defer.inlineCallbacks
    def test_add_bad_password_input(self):
        """
        A password longer than the bound or holding a NUL (exit 2), and a
        prompt whose input ends (exit 2), are one line on standard error,
        never a traceback, and store nothing.
        """
        for stdin, complaint in (
            ("x" * (MAX_PASSWORD + 1) + "\n", "at most"),
            ("x" * 100_000, "at most"),
            ("pass\0word\n", "without NUL"),
        ):
            code, out, err = yield self.admin(
                "user", "add", "dora", "--password-stdin", stdin=stdin
            )
            self.assertEqual((code, out, err.count("\n")), (2, "", 1))
            self.assertIn(complaint, err)

        def closed(prompt):
            raise EOFError()

        stdout, stderr = io.StringIO(), io.StringIO()
        code = yield threads.deferToThread(
            admin.main,
            ["--data", self.data, "user", "add", "dora"],
            stdin=io.StringIO(""),
            stdout=stdout,
            stderr=stderr,
            getpass=closed,
        )
        self.assertEqual((code, stdout.getvalue()), (2, ""))
        self.assertEqual(
            stderr.getvalue(),
            "suto-admin: no password: the input ended "
            "(use --password-stdin in scripts)\n",
        )
        self.assertIsNone(self.server.store.hash_for("dora"))

    @defer.inlineCallbacks
    def test_list_and_delete(self):
        """
        C{user list} prints one line per account (name, scheme, creation
        time); C{user del} removes one, and deleting it again exits 1 with
        one line.
        """
        yield self.admin("user", "add", "dora", "--password-stdin", stdin="d\n")
        yield self.admin(
            "user", "add", "fred", "--password-stdin", "--scheme", "yescrypt",
            stdin="f\n",
        )
        code, out, err = yield self.admin("user", "list")
        self.assertEqual((code, err), (0, ""))
        heading, *lines = out.splitlines()
        self.assertEqual(heading, "USER\tSCHEME\tCREATED\tUNUSABLE")
        rows = [row.split("\t") for row in lines]
        self.assertEqual(
            [row[:2] for row in rows], [["dora", "sha512_crypt"], ["fred", "yescrypt"]]
        )
        for row in rows:
            self.assertRegex(row[2], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        result = yield self.admin("user", "del", "dora")
        self.assertEqual(result, (0, "removed dora\n", ""))
        self.assertIsNone(self.server.store.hash_for("dora"))
        code, out, _ = yield self.admin("user", "list")
        self.assertEqual(
            [line.split("\t")[0] for line in out.splitlines()[1:]], ["fred"]
        )
        code, out, err = yield self.admin("user", "del", "dora")
        self.assertEqual((code, out, err), (1, "", "suto-admin: no user dora\n"))

    @defer.inlineCallbacks
    def test_list_flags_unusable_hash(self):
        """
        C{user list} ends the line of an account whose stored hash breaks a
        limit made after it was stored (here a cost above
        L{schemes.MAX_ROUNDS}, written past the store's checks) with why
        it is unusable, never the hash; usable accounts keep three columns.
        """
        yield self.admin("user", "add", "dora", "--password-stdin", stdin="d\n")
        yield self.admin("user", "add", "fred", "--password-stdin", stdin="f\n")
        stored = self.server.store.hash_for("dora")
        costly = "$6$rounds=999999999$" + stored[3:]
        database = sqlite3.connect(os.path.join(self.data, DATABASE_FILE))
        with database:
            database.execute(
                "UPDATE users SET password_hash = ? WHERE username = 'dora'",
                (costly,),
            )
        database.close()
        code, out, err = yield self.admin("user", "list")
        self.assertEqual((code, err), (0, ""))
        dora, fred = [row.split("\t") for row in out.splitlines()[1:]]
        self.assertEqual(dora[:2], ["dora", "sha512_crypt"])
        self.assertEqual(len(dora), 4)
        self.assertTrue(dora[3].startswith("unusable: sha512_crypt hash costs"))
        self.assertIn(f"rounds={schemes.MAX_ROUNDS['sha512_crypt']}", dora[3])
        self.assertNotIn(stored[3:19], out)
        self.assertEqual(len(fred), 3)


    @defer.inlineCallbacks
    def test_audited(self):
        """
        Adding and removing an account are recorded in the daemon's audit
        log, naming who ran the command (and the scheme of a new hash);
        refused commands record nothing, and the chain stays intact.
        """
        operator = getpass.getuser()
        yield self.admin("user", "add", "dora", "--password-stdin", stdin="d\n")
        yield self.admin("user", "add", "dora", "--password-stdin", stdin="e\n")
        yield self.admin("user", "del", "dora")
        yield self.admin("user", "del", "dora")
        yield self.server.audit.flushed()
        self.assertEqual(
            [
                (e.event, e.username, e.source, e.reason)
                for e in self.server.store.audit_events()
                if e.event.startswith("user_")
            ],
            [
                ("user_added", "dora", None, f"by {operator} (sha512_crypt)"),
                ("user_removed", "dora", None, f"by {operator}"),
            ],
        )
        self.assertEqual(self.server.store.verify_audit(), [])


class WindowAndCertificateCommandTests(EnrollmentFixture, TestCase):
    """
    C{suto-admin cancel} over the running daemon's admin socket, and
    C{suto-admin cert} from the daemon or, with none running, the data folder.
    """

    @defer.inlineCallbacks
    def test_cancel(self):
        """
        C{cancel USER} closes the user's open window, which then no longer
        lists and no longer enrolls, and is audited; cancelling again exits
        1 with one line.
        """
        password = yield self.open_window("bob")
        result = yield self.admin("cancel", "bob")
        self.assertEqual(result, (0, "closed the enrollment window for bob\n", ""))
        self.assertEqual(
            (yield self.admin("windows")),
            (0, "USER\tLOCATION\tTIME_LEFT\tATTEMPTS\tREPLACE\n", ""),
        )
        yield self.server.audit.flushed()
        events = [event.event for event in self.server.store.audit_events()]
        self.assertIn("enrollment_window_cancelled", events)
        enrolled = yield self.enroll(password, user="bob")
        self.assertEqual(enrolled.outcome, EnrollOutcome.REJECTED)
        self.assertIsNone(self.server.store.get_profile("bob"))
        code, out, err = yield self.admin("cancel", "bob")
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertTrue(err.startswith("suto-admin: "), err)

    @defer.inlineCallbacks
    def test_enroll_wide(self):
        """
        C{enroll} at a location wider than a window may be exits 1 with
        one line saying how to ask for it, and opens nothing; with
        C{--wide} the window opens (and no hello goes to that network).
        """
        code, out, err = yield self.admin(
            "enroll", "bob", "--location", "127.0.0.0/8"
        )
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn("127.0.0.0/8 is wider than an enrollment window", err)
        self.assertIsNone(self.server.store.get_window("bob"))
        yield self.open_window("bob", "127.0.0.0/8", "60s", "--wide")
        self.assertEqual(self.server.store.get_window("bob").networks, ("127.0.0.0/8",))

    def expected_cert(self):
        with open(os.path.join(self.data, certificate.CERT_FILE), "rb") as handle:
            info = certificate.describe(handle.read())
        return (
            f"subject: {info.subject}\n"
            f"sha256: {self.pin}\n"
            f"expires: {info.not_after.isoformat()}\n"
        )

    @defer.inlineCallbacks
    def test_cert(self):
        """
        C{cert} asks the running daemon what it serves: subject, SHA-256
        fingerprint and expiry, even once the file behind it is gone.
        """
        expected = self.expected_cert()
        os.remove(os.path.join(self.data, certificate.CERT_FILE))
        self.assertEqual((yield self.admin("cert")), (0, expected, ""))

    @defer.inlineCallbacks
    def test_cert_from_file(self):
        """
        With no daemon answering, C{cert} shows the data folder's
        certificate and says on standard error that it read the file.
        """
        expected = self.expected_cert()
        yield self.server.stopService()
        code, out, err = yield self.admin("cert")
        self.assertEqual((code, out, err.count("\n")), (0, expected, 1))
        self.assertIn(os.path.join(self.data, certificate.CERT_FILE), err)

    @defer.inlineCallbacks
    def test_cert_missing(self):
        """
        With no daemon answering and no certificate in the data folder,
        C{cert} exits 1 with one line naming the file.
        """
        yield self.server.stopService()
        os.remove(os.path.join(self.data, certificate.CERT_FILE))
        code, out, err = yield self.admin("cert")
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn(os.path.join(self.data, certificate.CERT_FILE), err)


class NothingCreatedTests(SynchronousTestCase):
    """
    A command run for a data folder or store that is not there fails
    with one line saying how to make one, and creates nothing.
    """

    def test_no_data_folder(self):
        """
        Every command but C{init}, C{restore}, C{config check} and C{audit
        verify --file} exits 1 with one line naming the folder and
        C{suto-admin init}, and the folder is not made.
        """
        data = os.path.abspath(self.mktemp())
        for argv in (
            ("user", "add", "dora", "--password-stdin"),
            ("user", "del", "dora"),
            ("user", "list"),
            ("alerts",),
            ("audit",),
            ("audit", "verify"),
            ("status",),
            ("cert",),
            ("backup", data + ".backup"),
        ):
            code, out, err = run_admin("--data", data, *argv, stdin="pw\n")
            self.assertEqual(
                (code, out, err),
                (
                    1,
                    "",
                    f"suto-admin: there is no data folder {data}: run "
                    f"'suto-admin --data {data} init' or start the daemon "
                    f"with it\n",
                ),
                argv,
            )
            self.assertFalse(os.path.exists(data), argv)
        self.assertFalse(os.path.exists(data + ".backup"))

    def test_no_store(self):
        """
        In a data folder without a store, the account commands exit 1 with
        one line naming the store, and make none.
        """
        data = os.path.abspath(self.mktemp())
        os.mkdir(data)
        store = os.path.join(data, DATABASE_FILE)
        for argv in (
            ("user", "add", "dora", "--password-stdin"),
            ("user", "del", "dora"),
            ("user", "list"),
        ):
            code, out, err = run_admin("--data", data, *argv, stdin="pw\n")
            self.assertEqual((code, out, err.count("\n")), (1, "", 1), argv)
            self.assertIn(
                f"there is no store {store}: run 'suto-admin --data {data} init", err
            )
            self.assertEqual(os.listdir(data), [], argv)

    def test_default_folder(self):
        """
        With no option and no configuration, the data folder is
        C{suto-data} in the working directory, which is not made either.
        """
        here = os.path.abspath(self.mktemp())
        os.mkdir(here)
        previous = os.getcwd()
        os.chdir(here)
        self.addCleanup(os.chdir, previous)
        code, _, err = run_admin("user", "list")
        self.assertEqual(code, 1)
        self.assertIn(os.path.join(here, "suto-data"), err)
        self.assertEqual(os.listdir(here), [])


class ConfigurationTests(SynchronousTestCase):
    """
    C{suto-admin} finds the data folder as the daemon does: C{--data},
    else the C{data} key of the C{--config} file, else of the file named
    by C{SUTO_CONFIG}, else the default.
    """

    def setUp(self):
        self.folders = {}
        for name in ("given", "configured", "environment"):
            data = self.folders[name] = os.path.abspath(self.mktemp())
            code, _, err = run_admin("--data", data, "init")
            self.assertEqual((code, err), (0, ""))
            code, _, err = run_admin(
                "--data", data, "user", "add", name, "--password-stdin",
                stdin="pw\n",
            )
            self.assertEqual((code, err), (0, ""))
        self.config = self.write_config("configured")
        self.environ = {"SUTO_CONFIG": self.write_config("environment")}

    def write_config(self, name):
        path = self.mktemp()
        with open(path, "w") as handle:
            handle.write(f'data = "{self.folders[name]}"\nhello-port = 2020\n')
        return path

    def users(self, *argv, environ=None):
        """
        @return: the users C{suto-admin argv user list} lists.
        """
        code, out, err = run_admin(*argv, "user", "list", environ=environ)
        self.assertEqual((code, err), (0, ""))
        return [line.split("\t")[0] for line in out.splitlines()[1:]]

    def test_precedence(self):
        """
        C{--data} wins over C{--config}, which wins over C{SUTO_CONFIG}.
        """
        given = ("--data", self.folders["given"])
        self.assertEqual(
            self.users(*given, "--config", self.config, environ=self.environ),
            ["given"],
        )
        self.assertEqual(
            self.users("--config", self.config, environ=self.environ),
            ["configured"],
        )
        self.assertEqual(self.users(environ=self.environ), ["environment"])

    def test_unusable_file(self):
        """
        A configuration file the daemon would refuse is refused with one
        line naming its problems, exit 1.
        """
        with open(self.config, "w") as handle:
            handle.write('data = "x"\nhelo-port = 2020\n')
        code, out, err = run_admin("--config", self.config, "user", "list")
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn(f"cannot use the configuration: {self.config}:2: ", err)
        self.assertIn("hello-port", err)

    def test_config_check_ignores_environment(self):
        """
        C{config check FILE} checks its file, whatever C{SUTO_CONFIG}
        names.
        """
        code, out, err = run_admin(
            "config", "check", self.config, environ={"SUTO_CONFIG": "absent"}
        )
        self.assertEqual((code, out, err), (0, f"{self.config}: ok\n", ""))


class LiveBackupTests(EnrollmentFixture, TestCase):
    """
    C{suto-admin backup} copies the store of a running daemon; C{restore}
    refuses to replace it.
    """

    @defer.inlineCallbacks
    def test_backup_while_running(self):
        """
        A backup made while the daemon runs holds the account just added
        and its audit record, and passes C{audit verify --file}.
        """
        code, _, err = yield self.admin(
            "user", "add", "dora", "--password-stdin", stdin="pw\n"
        )
        self.assertEqual((code, err), (0, ""))
        destination = os.path.abspath(self.mktemp())
        code, out, err = yield self.admin("backup", destination)
        self.assertEqual((code, err), (0, ""))
        self.assertIn(f"wrote {os.path.join(destination, DATABASE_FILE)}\n", out)
        copy = sqlite3.connect(os.path.join(destination, DATABASE_FILE))
        users = copy.execute("SELECT username FROM users").fetchall()
        copy.close()
        self.assertEqual(users, [("dora",)])
        code, out, err = yield self.admin(
            "audit", "verify", "--file", os.path.join(destination, DATABASE_FILE)
        )
        self.assertEqual((code, err), (0, ""))
        self.assertTrue(out.endswith("the audit log is intact\n"), out)

    @defer.inlineCallbacks
    def test_restore_refused_while_running(self):
        """
        C{restore} exits 1 with one line while the daemon answers, and
        changes nothing.
        """
        destination = os.path.abspath(self.mktemp())
        code, _, err = yield self.admin("backup", destination)
        self.assertEqual((code, err), (0, ""))
        code, out, err = yield self.admin("restore", destination)
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                f"suto-admin: the daemon of {self.data} is running: stop it "
                "to restore\n",
            ),
        )
