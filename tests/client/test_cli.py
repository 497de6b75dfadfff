"""
Tests for L{suto_client.cli}, the C{suto-client} command's own commands
(C{fingerprint}) through C{main} with injected streams, and for
L{suto_client.tap}, the C{twistd} options.
"""

import io
import os

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import cli, tap
from suto_client.agent import Agent
from suto_client.cli import main
from suto_client.fingerprint import compute_fingerprint
from tests.support.sources import FixedSource


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


class StateFileLocationTests(SynchronousTestCase):
    """
    C{suto-client} finds the agent's state file as the agent does:
    C{--state}, else the C{state} key of the C{--config} file, else of the
    file named by C{SUTO_CLIENT_CONFIG}, else the default.
    """

    def setUp(self):
        self.states = {}
        self.configs = {}
        for name in ("given", "configured", "environment"):
            folder = os.path.abspath(self.mktemp())
            state = self.states[name] = os.path.join(folder, "client.json")
            code, _, err = self.client(
                "account", "add", name, "--server", "192.0.2.10", "--legacy",
                "--password-stdin", "--state", state,
            )
            self.assertEqual((code, err), (0, ""))
            config = self.configs[name] = os.path.join(folder, "agent.toml")
            with open(config, "w") as handle:
                handle.write(f'state = "{state}"\ntimeout = 5.0\n')

    def client(self, *argv, environ=None):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            stdin=io.StringIO("pw\n"),
            stdout=stdout,
            stderr=stderr,
            environ={} if environ is None else environ,
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def listed(self, *argv, environ=None):
        """
        @return: the first user C{suto-client argv account list} lists.
        """
        code, out, err = self.client(*argv, environ=environ)
        self.assertEqual((code, err), (0, ""))
        return out.splitlines()[1].split()[0]

    def test_precedence(self):
        """
        C{--state} wins over C{--config}, which wins over
        C{SUTO_CLIENT_CONFIG}.
        """
        environ = {"SUTO_CLIENT_CONFIG": self.configs["environment"]}
        configured = ("--config", self.configs["configured"])
        self.assertEqual(
            self.listed(
                *configured, "account", "list", "--state", self.states["given"],
                environ=environ,
            ),
            "given",
        )
        self.assertEqual(
            self.listed(*configured, "account", "list", environ=environ),
            "configured",
        )
        self.assertEqual(
            self.listed("account", "list", environ=environ), "environment"
        )

    def test_unusable_file(self):
        """
        A configuration file the agent would refuse is refused with one
        line naming its problems, exit 1.
        """
        with open(self.configs["configured"], "w") as handle:
            handle.write('stat = "x"\n')
        code, out, err = self.client(
            "--config", self.configs["configured"], "account", "list"
        )
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn("cannot use the configuration", err)
