"""
Tests for L{suto_client.account_commands}: C{suto-client account add},
C{list} and C{del} through C{main} with injected streams, the trust
options, the server address, and the usage errors every command shares.
"""

import getpass
import io
import os

from twisted.trial.unittest import SynchronousTestCase

from suto_client.account_commands import parse_server
from suto_client.cli import main
from suto_client.state import Account
from suto_client.statefile import load_state, save_state
from suto_server.core.commandline import CommandError
from tests.support.pki import Authority, Files

PIN = "AB:" * 31 + "AB"


class CommandTests(SynchronousTestCase):
    def setUp(self):
        self.state = os.path.join(self.mktemp(), "client.json")

    def run_command(self, *argv, stdin="", getpass=None):
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
            getpass=getpass,
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

    def test_prompt_on_stderr(self):
        """
        Without C{--password-stdin}, the password is asked for twice, the
        prompts going to standard error so that standard output stays the
        command's result.
        """
        prompts = []

        def terminal(prompt, stream=None):
            prompts.append((prompt, stream))
            return "secret"

        self.patch(getpass, "getpass", terminal)
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            ["account", "add", "alice", "--server", "192.0.2.10", "--legacy",
             "--state", self.state],
            stdout=stdout,
            stderr=stderr,
        )
        self.assertEqual(
            (code, stdout.getvalue()), (0, "added alice for 192.0.2.10:2021\n")
        )
        self.assertEqual(
            prompts, [("Password for alice: ", stderr), ("Repeat it: ", stderr)]
        )

    def test_prompt_input_ends(self):
        """
        Without C{--password-stdin}, a prompt whose input ends (a closed
        pipe) is one line and status 1, not a traceback, and writes no
        state file.
        """

        def closed(prompt):
            raise EOFError()

        code, out, err = self.run_command(
            "account", "add", "alice", "--server", "192.0.2.10", "--legacy",
            getpass=closed,
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
        With no accounts left in the state file, the list says so.
        """
        self.add_alice()
        self.run_command("account", "del", "alice")
        self.assertEqual(
            self.run_command("account", "list"), (0, "no accounts\n", "")
        )

    def test_no_state_file(self):
        """
        Listing and deleting need the state file: without one they exit 1
        with one line naming it, and make neither it nor its folder.
        """
        expected = (
            f"suto-client: there is no state file {os.path.abspath(self.state)}: "
            f"the agent's first 'account add' or 'enroll' makes it\n"
        )
        for argv in (("account", "list"), ("account", "del", "alice")):
            self.assertEqual(self.run_command(*argv), (1, "", expected), argv)
        self.assertFalse(os.path.exists(os.path.dirname(self.state)))

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
