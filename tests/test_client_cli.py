"""
Tests for L{suto_client.cli}, the C{suto-client} command, through C{main}
with injected streams, and for L{suto_client.tap}, the C{twistd} options.
"""

import io
import os

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import tap
from suto_client.agent import Agent
from suto_client.cli import CommandError, main, parse_server
from suto_client.statefile import Account, load_state, save_state

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
