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


class FakeSource:
    """
    A fingerprint source that reads a fixed value.
    """

    def __init__(self, name, value):
        self.name = name
        self.value = value

    def read(self):
        return self.value


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
            FakeSource("machine-id", "secret-machine-id"),
            FakeSource("cpu-model", "secret-cpu"),
            FakeSource("dmi-product-uuid", None),
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
        code, out, err = self.run_fingerprint([FakeSource("machine-id", None)])
        self.assertEqual(
            (code, out, err),
            (
                1,
                "",
                "suto-client: no fingerprint source is available on this "
                "machine\n",
            ),
        )
