"""
Tests for L{suto_client.cli}, the C{suto-client} command, through C{main}
with injected streams, and for L{suto_client.tap}, the C{twistd} options.
"""

import io
import os

from twisted.internet.defer import fail, succeed
from twisted.internet.error import CannotListenError
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import cli, tap
from suto_client.agent import Agent
from suto_client.announcement import NoAnnouncement
from suto_client.cli import CommandError, main, parse_server
from suto_client.enrollment import EnrollOutcome, EnrollResult
from suto_client.fingerprint import compute_fingerprint
from suto_client.statefile import (
    Account,
    ClientState,
    EnrolledProfile,
    load_state,
    save_state,
)
from tests.support.pki import Authority, Files
from tests.support.sources import FixedSource

PIN = "AB:" * 31 + "AB"


class CommandTests(SynchronousTestCase):
    def setUp(self):
        self.state = os.path.join(self.mktemp(), "client.json")

    def run_command(self, *argv, stdin=""):
        """
        Run C{suto-client argv... --state <temp>}; return the exit status,
        standard output and standard error.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            list(argv) + ["--state", self.state],
            stdin=io.StringIO(stdin),
            stdout=stdout,
            stderr=stderr,
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def add_alice(self):
        return self.run_command(
            "account",
            "add",
            "alice",
            "--server",
            "192.0.2.10",
            "--pin",
            PIN,
            "--password-stdin",
            stdin="alice's secret\n",
        )

    def test_add(self):
        """
        Adding a TLS account stores its server, default port, normalised
        pin and the password read from standard input (without its line
        ending).
        """
        self.assertEqual(
            self.add_alice(), (0, "added alice for 192.0.2.10:2021\n", "")
        )
        self.assertEqual(
            load_state(self.state).accounts["alice"],
            Account(
                user="alice",
                server_host="192.0.2.10",
                server_port=2021,
                pin="ab" * 32,
                password="alice's secret",
            ),
        )

    def test_add_legacy_ipv6(self):
        """
        A legacy account needs no pin, and an IPv6 server with a port is
        written in brackets.
        """
        code, out, err = self.run_command(
            "account",
            "add",
            "bob",
            "--server",
            "[::1]:3021",
            "--legacy",
            "--password-stdin",
            stdin="pw",
        )
        self.assertEqual(
            (code, out, err), (0, "added bob for [::1]:3021\n", "")
        )
        account = load_state(self.state).accounts["bob"]
        self.assertEqual(
            (account.server_host, account.server_port, account.legacy),
            ("::1", 3021, True),
        )

    def test_missing_pin_refused(self):
        """
        A TLS account without a pin is refused with a message saying what
        is missing, and nothing is written.
        """
        code, out, err = self.run_command(
            "account",
            "add",
            "alice",
            "--server",
            "192.0.2.10",
            "--password-stdin",
            stdin="pw\n",
        )
        self.assertEqual((code, out), (1, ""))
        self.assertIn("--pin", err)
        self.assertFalse(os.path.exists(self.state))

    def test_bad_arguments_refused(self):
        """
        A bad pin, a pin on a legacy account, a host name, an invalid user
        name and an empty password are each refused with status 1.
        """
        cases = [
            ["alice", "--server", "192.0.2.10", "--pin", "abc"],
            ["alice", "--server", "192.0.2.10", "--pin", PIN, "--legacy"],
            ["alice", "--server", "suto.example", "--legacy"],
            ["al ice", "--server", "192.0.2.10", "--legacy"],
        ]
        for arguments in cases:
            code, out, err = self.run_command(
                "account", "add", *arguments, "--password-stdin", stdin="pw\n"
            )
            self.assertEqual((code, out), (1, ""))
            self.assertTrue(err.startswith("suto-client: "))
        code, out, err = self.run_command(
            "account",
            "add",
            "alice",
            "--server",
            "192.0.2.10",
            "--legacy",
            "--password-stdin",
            stdin="\n",
        )
        self.assertEqual(
            (code, err), (1, "suto-client: refusing an empty password\n")
        )
        self.assertFalse(os.path.exists(self.state))

    def test_prompt_input_ends(self):
        """
        Without C{--password-stdin}, a prompt whose input ends (a closed
        pipe) is one line and status 1, not a traceback, and writes no
        state file.
        """

        def closed(prompt, stream=None):
            raise EOFError()

        self.patch(cli.getpass, "getpass", closed)
        code, out, err = self.run_command(
            "account", "add", "alice", "--server", "192.0.2.10", "--legacy"
        )
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                "suto-client: no password: the input ended "
                "(use --password-stdin in scripts)\n",
            ),
        )
        self.assertFalse(os.path.exists(self.state))

    def test_add_twice(self):
        """
        Adding an account that exists is refused and keeps the old one.
        """
        self.add_alice()
        code, out, err = self.run_command(
            "account",
            "add",
            "alice",
            "--server",
            "192.0.2.99",
            "--legacy",
            "--password-stdin",
            stdin="other\n",
        )
        self.assertEqual(code, 1)
        self.assertIn("already", err)
        self.assertEqual(
            load_state(self.state).accounts["alice"].server_host, "192.0.2.10"
        )

    def test_list(self):
        """
        The list shows one row per account, with its server, transport and
        whether a salt is cached, and no secret.
        """
        self.add_alice()
        self.run_command(
            "account",
            "add",
            "bob",
            "--server",
            "[2001:db8::1]:3021",
            "--legacy",
            "--password-stdin",
            stdin="bob's secret\n",
        )
        state = load_state(self.state)
        state.accounts["bob"].salted_hash = "$6$salt$" + "h" * 86
        save_state(self.state, state)
        code, out, err = self.run_command("account", "list")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(
            out.splitlines(),
            [
                "USER   SERVER              TRANSPORT  SALT",
                "alice  192.0.2.10:2021     tls        not cached",
                "bob    [2001:db8::1]:3021  legacy     cached",
            ],
        )
        self.assertNotIn("secret", out)
        self.assertNotIn("hhhh", out)

    def test_list_empty(self):
        """
        With no accounts, the list says so.
        """
        self.assertEqual(
            self.run_command("account", "list"), (0, "no accounts\n", "")
        )

    def test_delete(self):
        """
        Deleting removes the account; deleting it again is an error.
        """
        self.add_alice()
        self.assertEqual(
            self.run_command("account", "del", "alice"),
            (0, "deleted alice\n", ""),
        )
        self.assertEqual(load_state(self.state).accounts, {})
        code, out, err = self.run_command("account", "del", "alice")
        self.assertEqual(
            (code, err), (1, "suto-client: no account for alice\n")
        )

    def test_corrupt_state(self):
        """
        A corrupt state file is reported, naming it, with status 1.
        """
        os.makedirs(os.path.dirname(self.state))
        with open(self.state, "w") as stream:
            stream.write("[")
        os.chmod(self.state, 0o600)
        code, out, err = self.run_command("account", "list")
        self.assertEqual(code, 1)
        self.assertIn(self.state, err)

    def test_usage_error(self):
        """
        Unknown or missing arguments give status 2 and a usage message on
        the injected error stream.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(["account", "frobnicate"], stdout=stdout, stderr=stderr)
        self.assertEqual(code, 2)
        self.assertIn("usage:", stderr.getvalue())


class TLSOptionTests(SynchronousTestCase):
    """
    C{--ca}, C{--client-cert} and C{--client-key} on C{account add}.
    """

    def setUp(self):
        self.state = os.path.join(self.mktemp(), "client.json")
        files = Files(self.mktemp())
        authority = Authority("SUTO Test CA")
        key, certificate = authority.issue("alice", client=True)
        self.bundle = files.write("ca.pem", authority.certificate)
        self.client_cert = files.write("client.crt", certificate)
        self.client_key = files.write("client.key", key)
        self.missing = os.path.join(files.directory, "missing.pem")

    def add(self, *options):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            ["account", "add", "alice", "--server", "192.0.2.10"]
            + list(options)
            + ["--password-stdin", "--state", self.state],
            stdin=io.StringIO("pw\n"),
            stdout=stdout,
            stderr=stderr,
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def test_ca_with_client_certificate(self):
        """
        An account trusting a CA bundle and presenting a client certificate
        stores the three paths, made absolute, and no pin.
        """
        relative = os.path.relpath(self.bundle)
        code, out, err = self.add(
            "--ca",
            relative,
            "--client-cert",
            self.client_cert,
            "--client-key",
            self.client_key,
        )
        self.assertEqual((code, err), (0, ""))
        account = load_state(self.state).accounts["alice"]
        self.assertEqual(
            (account.pin, account.ca, account.client_cert, account.client_key),
            (
                None,
                os.path.abspath(self.bundle),
                os.path.abspath(self.client_cert),
                os.path.abspath(self.client_key),
            ),
        )

    def test_pin_with_client_certificate(self):
        """
        A pinned account may present a client certificate too.
        """
        code, _, err = self.add(
            "--pin",
            PIN,
            "--client-cert",
            self.client_cert,
            "--client-key",
            self.client_key,
        )
        self.assertEqual((code, err), (0, ""))
        account = load_state(self.state).accounts["alice"]
        self.assertEqual(
            (account.pin, account.client_cert),
            ("ab" * 32, os.path.abspath(self.client_cert)),
        )

    def test_contradictions_refused(self):
        """
        Both --pin and --ca, a client certificate without its key (or the
        reverse), and any TLS option on a legacy account are refused with
        status 1 and a message naming the options; nothing is written.
        """
        cases = [
            (["--pin", PIN, "--ca", self.bundle], "--pin or --ca"),
            (["--ca", self.bundle, "--client-cert", self.client_cert],
             "--client-cert and --client-key"),
            (["--ca", self.bundle, "--client-key", self.client_key],
             "--client-cert and --client-key"),
            (["--legacy", "--ca", self.bundle], "--ca has no use with --legacy"),
            (["--legacy", "--client-cert", self.client_cert,
              "--client-key", self.client_key],
             "--client-cert has no use with --legacy"),
            ([], "--ca"),
        ]
        for options, message in cases:
            code, out, err = self.add(*options)
            self.assertEqual((code, out), (1, ""))
            self.assertIn(message, err)
        self.assertFalse(os.path.exists(self.state))

    def test_unusable_files_refused(self):
        """
        A CA bundle, client certificate or client key that cannot be used
        is refused when the account is added, naming the file.
        """
        cases = [
            (["--ca", self.missing], self.missing),
            (["--ca", self.client_key], self.client_key),
            (["--ca", self.bundle, "--client-cert", self.client_cert,
              "--client-key", self.missing], self.missing),
            (["--pin", PIN, "--client-cert", self.client_key,
              "--client-key", self.client_key], self.client_key),
        ]
        for options, named in cases:
            code, out, err = self.add(*options)
            self.assertEqual((code, out), (1, ""))
            self.assertTrue(err.startswith("suto-client: "))
            self.assertIn(os.path.abspath(named), err)
        self.assertFalse(os.path.exists(self.state))


class ParseServerTests(SynchronousTestCase):
    def test_forms(self):
        """
        Addresses with and without a port, IPv4 and IPv6, are read and
        brought to canonical form.
        """
        cases = {
            "192.0.2.1": ("192.0.2.1", 2021),
            "192.0.2.1:3000": ("192.0.2.1", 3000),
            "[::1]:2021": ("::1", 2021),
            "[2001:db8:0::1]": ("2001:db8::1", 2021),
            "::1": ("::1", 2021),
        }
        for text, expected in cases.items():
            self.assertEqual(parse_server(text), expected)

    def test_invalid(self):
        """
        Host names, bad ports and broken brackets are L{CommandError}s.
        """
        for text in (
            "suto.example",
            "192.0.2.1:0",
            "192.0.2.1:65536",
            "192.0.2.1:x",
            "[::1",
            "[::1]2021",
            "",
        ):
            self.assertRaises(CommandError, parse_server, text)


class TapOptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        With no options the agent uses its working-directory state file,
        UDP port 2020 on every address, and a 10 second timeout.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(
            (
                options["state"],
                options["hello-port"],
                options["hello-interface"],
                options["timeout"],
            ),
            (os.path.join("suto-client-data", "client.json"), 2020, "", 10.0),
        )

    def test_invalid(self):
        """
        An out-of-range port or timeout is a usage error.
        """
        for argv in (["--hello-port", "70000"], ["--timeout", "0"]):
            self.assertRaises(
                usage.UsageError, tap.Options().parseOptions, argv
            )

    def test_make_service(self):
        """
        The service is an agent, not yet listening.
        """
        options = tap.Options()
        options.parseOptions(["--state", "x.json", "--hello-port", "2999"])
        service = tap.makeService(options)
        self.assertIsInstance(service, Agent)
        self.assertIsNone(service.hello_port)


def sample_profile(
    user="alice", key_id="0123abcd" * 4, host="192.0.2.10", **trust
):
    return EnrolledProfile(
        user=user,
        server_host=host,
        server_port=2021,
        key=b"k" * 32,
        key_id=key_id,
        generation=0,
        enrolled_at=1700000000.0,
        **{"pin": "ab" * 32, **trust},
    )


class EnrollCommandFixture:
    """
    Runs C{suto-client enroll} with the reactor run and the enrollment
    itself replaced by fakes: the conversation with a real server is
    tested end to end elsewhere.
    """

    def setUp(self):
        self.state = os.path.join(self.mktemp(), "client.json")
        self.result = EnrollResult(
            EnrollOutcome.ENROLLED, "", sample_profile()
        )
        self.enrollments = []
        self.patch(cli, "react", self.fake_react)
        self.patch(cli, "enroll", self.fake_enroll)

    def fake_react(self, main, argv=()):
        """
        Run C{main} as L{twisted.internet.task.react} would, with a stand-in
        reactor, and exit as it does.
        """
        main(object(), *argv)
        raise SystemExit(0)

    def fake_enroll(self, reactor, **arguments):
        self.enrollments.append(arguments)
        return succeed(self.result)

    def run_enroll(self, *argv, stdin="one-time\n"):
        """
        Run C{suto-client enroll argv... --state <temp> --password-stdin};
        return the exit status, standard output and standard error.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            ["enroll", *argv, "--state", self.state, "--password-stdin"],
            stdin=io.StringIO(stdin),
            stdout=stdout,
            stderr=stderr,
        )
        return code, stdout.getvalue(), stderr.getvalue()


class EnrollCommandTests(EnrollCommandFixture, SynchronousTestCase):
    """
    C{suto-client enroll --server}.
    """

    def test_enrolled(self):
        """
        A successful enrollment runs with the server's canonical address,
        the normalised pin, the user and the password read from standard
        input, stores the profile, and says so in one line with a short
        prefix of the key id.
        """
        code, out, err = self.run_enroll(
            "--server", "192.0.2.10", "--user", "alice", "--pin", PIN
        )
        self.assertEqual(
            (code, out, err),
            (
                0,
                "enrolled alice with 192.0.2.10:2021, key id 0123abcd\u2026\n",
                "",
            ),
        )
        self.assertEqual(
            self.enrollments,
            [
                {
                    "host": "192.0.2.10",
                    "port": 2021,
                    "pin": "ab" * 32,
                    "ca": None,
                    "client_cert": None,
                    "client_key": None,
                    "user": "alice",
                    "password": "one-time",
                }
            ],
        )
        self.assertEqual(
            load_state(self.state).profiles, {"alice": sample_profile()}
        )

    def test_not_enrolled(self):
        """
        An enrollment that did not succeed is one line on standard error,
        status 1, and nothing is stored.
        """
        self.result = EnrollResult(
            EnrollOutcome.REJECTED, "the server refused the one-time password"
        )
        code, out, err = self.run_enroll(
            "--server", "[::1]:3021", "--user", "alice", "--pin", PIN
        )
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                "suto-client: alice was not enrolled: the server refused "
                "the one-time password\n",
            ),
        )
        self.assertFalse(os.path.exists(self.state))

    def test_interrupted(self):
        """
        A reactor stopped before the enrollment ended (Control-C) is an
        error, and nothing is stored.
        """

        def interrupted_react(main, argv=()):
            raise SystemExit(1)

        self.patch(cli, "react", interrupted_react)
        code, out, err = self.run_enroll(
            "--server", "192.0.2.10", "--user", "alice", "--pin", PIN
        )
        self.assertEqual(
            (code, err), (1, "suto-client: the enrollment was interrupted\n")
        )
        self.assertFalse(os.path.exists(self.state))

    def test_already_enrolled(self):
        """
        A user already enrolled is refused before the password is read or
        the server contacted, and the stored profile is kept; with
        C{--replace} it is replaced.
        """
        old = sample_profile(key_id="f" * 32, host="192.0.2.99")
        save_state(self.state, ClientState(profiles={"alice": old}))
        code, out, err = self.run_enroll(
            "--server", "192.0.2.10", "--user", "alice", "--pin", PIN
        )
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                "suto-client: alice is already enrolled with "
                "192.0.2.99:2021; use --replace to enroll again\n",
            ),
        )
        self.assertEqual(self.enrollments, [])
        self.assertEqual(load_state(self.state).profiles, {"alice": old})
        code, out, err = self.run_enroll(
            "--server",
            "192.0.2.10",
            "--user",
            "alice",
            "--pin",
            PIN,
            "--replace",
        )
        self.assertEqual(code, 0)
        self.assertEqual(
            load_state(self.state).profiles, {"alice": sample_profile()}
        )

    def test_bad_arguments(self):
        """
        A bad pin, a host name, a port out of range, a user name that
        cannot be enrolled and an empty password are each refused with
        status 1 and one line, without contacting the server or writing
        the state file.
        """
        cases = [
            (["192.0.2.10", "alice", "abc"], "one-time\n", "--pin: "),
            (["suto.example", "alice", PIN], "one-time\n", "the server"),
            (["192.0.2.10:0", "alice", PIN], "one-time\n", "the server"),
            (["192.0.2.10", "DATA_x", PIN], "one-time\n", "'DATA_x'"),
            (["192.0.2.10", "al ice", PIN], "one-time\n", "'al ice'"),
            (["192.0.2.10", "alice", PIN], "\n", "refusing an empty"),
        ]
        for (server, user, pin), stdin, start in cases:
            code, out, err = self.run_enroll(
                "--server", server, "--user", user, "--pin", pin, stdin=stdin
            )
            self.assertEqual((code, out), (1, ""))
            self.assertTrue(err.startswith("suto-client: " + start), err)
            self.assertEqual(len(err.splitlines()), 1)
        self.assertEqual(self.enrollments, [])
        self.assertFalse(os.path.exists(self.state))

    def test_missing_arguments(self):
        """
        Without --user the command is a usage error; without --pin or --ca
        it is refused as C{account add} refuses it, without the hint about
        --legacy, which enrollment does not take.
        """
        arguments = ["--server", "192.0.2.10", "--user", "alice"]
        code, out, err = self.run_enroll("--server", "192.0.2.10", "--pin", PIN)
        self.assertEqual(code, 2)
        self.assertIn("usage:", err)
        code, out, err = self.run_enroll(*arguments)
        self.assertEqual((code, out), (1, ""))
        self.assertTrue(
            err.startswith("suto-client: a TLS account needs --pin "), err
        )
        self.assertNotIn("--legacy", err)
        self.assertEqual(self.enrollments, [])

    def test_enroll_with_ca(self):
        """
        C{--ca}, C{--client-cert} and C{--client-key} are passed to the
        enrollment as absolute paths, with no pin, and the profile it
        returns is stored.
        """
        self.result = EnrollResult(
            EnrollOutcome.ENROLLED,
            "",
            sample_profile(
                pin=None,
                ca="/etc/suto/ca.pem",
                client_cert="/etc/suto/client.crt",
                client_key="/etc/suto/client.key",
            ),
        )
        code, out, err = self.run_enroll(
            "--server",
            "192.0.2.10",
            "--user",
            "alice",
            "--ca",
            "ca.pem",
            "--client-cert",
            "client.crt",
            "--client-key",
            "client.key",
        )
        self.assertEqual((code, err), (0, ""))
        [arguments] = self.enrollments
        self.assertEqual(
            {
                name: arguments[name]
                for name in ("pin", "ca", "client_cert", "client_key")
            },
            {
                "pin": None,
                "ca": os.path.abspath("ca.pem"),
                "client_cert": os.path.abspath("client.crt"),
                "client_key": os.path.abspath("client.key"),
            },
        )
        self.assertEqual(
            load_state(self.state).profiles, {"alice": self.result.profile}
        )

    def test_contradicting_trust(self):
        """
        As for C{account add}: C{--pin} and C{--ca} exclude each other,
        and a client certificate needs its key and the key its
        certificate; the server is not contacted.
        """
        cases = [
            (["--pin", PIN, "--ca", "ca.pem"], "give --pin or --ca, not both"),
            (["--ca", "ca.pem", "--client-cert", "c.crt"], "--client-cert and"),
            (["--pin", PIN, "--client-key", "c.key"], "--client-cert and"),
        ]
        for options, start in cases:
            code, out, err = self.run_enroll(
                "--server", "192.0.2.10", "--user", "alice", *options
            )
            self.assertEqual((code, out), (1, ""))
            self.assertTrue(err.startswith("suto-client: " + start), err)
        self.assertEqual(self.enrollments, [])


class FingerprintCommandTests(SynchronousTestCase):
    def run_fingerprint(self, sources):
        self.patch(cli, "default_sources", lambda: sources)
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(["fingerprint"], stdout=stdout, stderr=stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_fingerprint(self):
        """
        The command prints the fingerprint hash in hex and the names of
        the sources that contributed, never what they read.
        """
        sources = [
            FixedSource("secret-machine-id"),
            FixedSource("secret-cpu", name="cpu-model"),
            FixedSource(None, name="dmi-product-uuid"),
        ]
        code, out, err = self.run_fingerprint(sources)
        expected = compute_fingerprint(sources).hexdigest()
        self.assertEqual(
            (code, out, err),
            (0, f"{expected}\nsources: cpu-model, machine-id\n", ""),
        )
        self.assertNotIn("secret", out)

    def test_no_source(self):
        """
        A machine with no fingerprint source is an error, status 1.
        """
        code, out, err = self.run_fingerprint([FixedSource(None)])
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                "suto-client: no fingerprint source is available on this "
                "machine\n",
            ),
        )


class EnrollFromHelloTests(EnrollCommandFixture, SynchronousTestCase):
    """
    C{suto-client enroll} without C{--server}: the server is the sender of
    the hello that announces the window.
    """

    def wait_for(self, heard):
        """
        Replace the wait for the hello by one that records its arguments
        and fires with C{heard}.
        """
        self.waits = []

        def fake_wait(reactor, user, port, interface, wait):
            self.waits.append((user, port, interface, wait))
            return heard

        self.patch(cli, "wait_for_announcement", fake_wait)

    def test_enrolled(self):
        """
        By default the command waits 300 s on UDP port 2020 of every
        address for a hello for the user, says so on standard error, then
        enrolls with the hello's sender on port 2021.
        """
        self.wait_for(succeed("192.0.2.10"))
        code, out, err = self.run_enroll("--user", "alice", "--pin", PIN)
        self.assertEqual(
            (code, err),
            (
                0,
                "waiting up to 300 s for the server's hello for alice on UDP "
                "port 2020\n",
            ),
        )
        self.assertEqual(self.waits, [("alice", 2020, "", 300.0)])
        [arguments] = self.enrollments
        self.assertEqual(
            (arguments["host"], arguments["port"]), ("192.0.2.10", 2021)
        )
        self.assertEqual(
            out, "enrolled alice with 192.0.2.10:2021, key id 0123abcd\u2026\n"
        )

    def test_hello_options(self):
        """
        C{--hello-port}, C{--hello-interface} and C{--hello-wait} say where
        and how long to wait.
        """
        self.wait_for(succeed("192.0.2.10"))
        code, out, err = self.run_enroll(
            "--user", "alice", "--pin", PIN, "--hello-port", "3020",
            "--hello-interface", "192.0.2.55", "--hello-wait", "30",
        )
        self.assertEqual(code, 0, err)
        self.assertEqual(self.waits, [("alice", 3020, "192.0.2.55", 30.0)])

    def test_hello_options_with_server(self):
        """
        The hello options have no use with C{--server}, and are refused.
        """
        for option, value in (
            ("--hello-port", "3020"),
            ("--hello-interface", "192.0.2.55"),
            ("--hello-wait", "30"),
        ):
            code, out, err = self.run_enroll(
                "--server", "192.0.2.10", "--user", "alice", "--pin", PIN, option, value
            )
            self.assertEqual(
                (code, err),
                (1, f"suto-client: {option} has no use with --server: the hello "
                    f"is waited for only to learn the server's address\n"),
            )
        self.assertEqual(self.enrollments, [])

    def test_bad_hello_options(self):
        """
        A port outside 1-65535 or a wait that is not positive is refused.
        """
        for option, value in (("--hello-port", "0"), ("--hello-wait", "0")):
            code, out, err = self.run_enroll(
                "--user", "alice", "--pin", PIN, option, value
            )
            self.assertEqual(code, 1, err)
            self.assertIn(option, err)
        self.assertEqual(self.enrollments, [])

    def test_no_hello(self):
        """
        No hello within the wait: exit 1 with one line, nothing stored.
        """
        self.wait_for(fail(NoAnnouncement("no hello for alice came within 300 s")))
        code, out, err = self.run_enroll("--user", "alice", "--pin", PIN)
        self.assertEqual(code, 1)
        self.assertEqual(
            err.splitlines()[-1],
            "suto-client: no hello for alice came within 300 s; check the "
            "window, or give --server",
        )
        self.assertEqual(self.enrollments, [])
        self.assertFalse(os.path.exists(self.state))

    def test_port_taken(self):
        """
        A hello port already taken (by the running agent) is one line that
        says what to do.
        """

        def taken(reactor, user, port, interface, wait):
            raise CannotListenError(interface, port, OSError(98, "Address in use"))

        self.patch(cli, "wait_for_announcement", taken)
        code, out, err = self.run_enroll("--user", "alice", "--pin", PIN)
        self.assertEqual(code, 1)
        last = err.splitlines()[-1]
        self.assertTrue(
            last.startswith(
                "suto-client: cannot listen for the server's hello on UDP "
                "port 2020"
            ),
            last,
        )
        self.assertTrue(
            last.endswith("stop the agent while enrolling, or give --server"), last
        )
        self.assertEqual(self.enrollments, [])
