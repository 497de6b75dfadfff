"""
Tests for L{suto_client.enroll_command}: C{suto-client enroll} through
C{main} with injected streams, with the reactor run, the enrollment and
the wait for the server's hello replaced by fakes.
"""

import io
import os
import socket

from twisted.internet.defer import ensureDeferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from suto_client import enroll_command
from suto_client.announcement import NoAnnouncement
from suto_client.cli import main
from suto_client.enrollment import EnrollResult
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.fingerprint import IFingerprintSource
from suto_client.state import ClientState, EnrolledProfile
from suto_client.statefile import load_state, save_state

PIN = "AB:" * 31 + "AB"


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
        self.patch(enroll_command, "react", self.fake_react)
        self.patch(enroll_command, "enroll", self.fake_enroll)

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

    def test_failover(self):
        """
        C{--failover} servers, in the order given, are stored with the
        enrolled profile, their addresses canonical.
        """
        code, _, err = self.run_enroll(
            "--server", "192.0.2.10", "--user", "alice", "--pin", PIN,
            "--failover", "192.0.2.11", "--failover", "[2001:DB8::12]:2022",
        )  # fmt: skip
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(
            load_state(self.state).profiles["alice"].failover,
            (("192.0.2.11", 2021), ("2001:db8::12", 2022)),
        )

    def test_failover_refused(self):
        """
        A failover server that is the server itself, or named twice, or
        not an IP address, is refused before any enrollment.
        """
        for servers in (
            ["192.0.2.10:2021"],
            ["192.0.2.11", "192.0.2.11:2021"],
            ["suto.example"],
        ):
            arguments = [item for server in servers for item in ("--failover", server)]
            code, _, err = self.run_enroll(
                "--server", "192.0.2.10", "--user", "alice", "--pin", PIN, *arguments
            )
            self.assertEqual(code, 1, err)
        self.assertEqual(self.enrollments, [])

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

        self.patch(enroll_command, "react", interrupted_react)
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


@implementer(IFingerprintSource)


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

        self.patch(enroll_command, "wait_for_announcement", fake_wait)

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
                "port 2020 of every address\n",
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
            "suto-client: no hello for alice came within 300 s on UDP port "
            "2020 of every address; check the window, or give --server",
        )
        self.assertEqual(self.enrollments, [])
        self.assertFalse(os.path.exists(self.state))

    def test_port_taken(self):
        """
        A hello port already in use (by the running agent, nearly always)
        is one line that says what to do, and exit 1.
        """

        def taken(reactor, user, port, interface, wait):
            raise CannotListenError(interface, port, OSError(98, "Address in use"))

        self.patch(enroll_command, "wait_for_announcement", taken)
        code, out, err = self.run_enroll("--user", "alice", "--pin", PIN)
        self.assertEqual(code, 1)
        self.assertEqual(
            err.splitlines()[-1],
            "suto-client: UDP port 2020 is in use (is the agent running? stop "
            "it during enrollment or give --server)",
        )
        self.assertEqual(self.enrollments, [])

    def test_cannot_listen(self):
        """
        Any other reason the hello port cannot be listened on is named,
        with the address.
        """

        def refused(reactor, user, port, interface, wait):
            raise CannotListenError(interface, port, OSError(13, "Permission denied"))

        self.patch(enroll_command, "wait_for_announcement", refused)
        code, out, err = self.run_enroll(
            "--user", "alice", "--pin", PIN, "--hello-interface", "192.0.2.55"
        )
        self.assertEqual(code, 1)
        last = err.splitlines()[-1]
        self.assertTrue(
            last.startswith(
                "suto-client: cannot listen for the server's hello on UDP "
                "port 2020 of 192.0.2.55"
            ),
            last,
        )


class PortInUseTests(EnrollCommandFixture, SynchronousTestCase):
    """
    C{suto-client enroll} while another socket holds the hello port, as
    the agent does: a real UDP socket bound on 127.0.0.1.
    """

    def fake_react(self, main, argv=()):
        """
        Run C{main} with the real reactor, which is never started: binding
        fails at once.  What C{main} returns must be something
        L{twisted.internet.task.react} can wait on.
        """
        from twisted.internet import reactor

        ensureDeferred(main(reactor, *argv))
        raise SystemExit(0)

    def test_port_in_use(self):
        """
        With the hello port held, the command exits 1 with the one line
        that names the port and what to do, and no traceback.
        """
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        code, out, err = self.run_enroll(
            "--user", "alice", "--pin", PIN,
            "--hello-port", str(port), "--hello-interface", "127.0.0.1",
        )
        self.assertEqual(
            (code, err.splitlines()[-1]),
            (
                1,
                f"suto-client: UDP port {port} is in use (is the agent running? "
                f"stop it during enrollment or give --server)",
            ),
        )
        self.assertNotIn("Traceback", err)
        self.assertEqual(self.enrollments, [])
