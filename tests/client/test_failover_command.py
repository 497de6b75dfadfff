# -*- test-case-name: tests.client.test_failover_command -*-
"""
Tests for L{suto_client.failover_command}: C{suto-client failover}
through C{main} with injected streams, on a state file in a temporary
folder.
"""

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from suto_client.cli import main
from suto_client.state import ClientState, EnrolledProfile
from suto_client.state_document import MAX_FAILOVER
from suto_client.statefile import load_state, save_state

PROFILE = EnrolledProfile(
    user="alice",
    server_host="192.0.2.10",
    server_port=2021,
    pin="ab" * 32,
    key=b"k" * 32,
    key_id="0123abcd" * 4,
    generation=4,
    enrolled_at=1700000000.0,
)


class FailoverCommandTests(SynchronousTestCase):
    """
    C{suto-client failover USER [HOST[:PORT] ...] [--none]}.
    """

    def setUp(self):
        self.state = os.path.join(self.mktemp(), "client.json")
        save_state(self.state, ClientState(profiles={"alice": PROFILE}))

    def run_failover(self, *argv):
        """
        @return: the exit status, standard output and standard error of
            C{suto-client failover argv... --state <temp>}.
        """
        stdout, stderr = io.StringIO(), io.StringIO()
        code = main(
            ["failover", *argv, "--state", self.state],
            stdin=io.StringIO(""),
            stdout=stdout,
            stderr=stderr,
            environ={},
        )
        return code, stdout.getvalue(), stderr.getvalue()

    def test_set_and_show(self):
        """
        Given servers, the profile's failover list becomes them, in
        order, and the command prints every server of the profile, its
        own first; without servers it only prints them.  The key stays as
        it was.
        """
        expected = (0, "192.0.2.10:2021\n192.0.2.11:2021\n[2001:db8::12]:2022\n", "")
        self.assertEqual(
            self.run_failover("alice", "192.0.2.11", "[2001:DB8::12]:2022"), expected
        )
        self.assertEqual(self.run_failover("alice"), expected)
        stored = load_state(self.state).profiles["alice"]
        self.assertEqual(
            stored.failover, (("192.0.2.11", 2021), ("2001:db8::12", 2022))
        )
        self.assertEqual((stored.key, stored.generation), (PROFILE.key, 4))

    def test_none(self):
        """
        C{--none} clears the list.
        """
        self.run_failover("alice", "192.0.2.11")
        self.assertEqual(
            self.run_failover("alice", "--none"), (0, "192.0.2.10:2021\n", "")
        )
        self.assertEqual(load_state(self.state).profiles["alice"].failover, ())

    def test_refused(self):
        """
        A server named twice or the profile's own, more servers than a
        profile may hold, an address that is not an IP address, servers
        with C{--none}, and a user not enrolled are refused, and the file
        is left as it was.
        """
        too_many = [f"192.0.2.{n}" for n in range(20, 21 + MAX_FAILOVER)]
        for argv in (
            ("alice", "192.0.2.10"),
            ("alice", "192.0.2.11", "192.0.2.11:2021"),
            ("alice", *too_many),
            ("alice", "suto.example"),
            ("alice", "192.0.2.11", "--none"),
            ("bob", "192.0.2.11"),
        ):
            code, out, err = self.run_failover(*argv)
            self.assertEqual((code, out), (1, ""), argv)
            self.assertTrue(err.startswith("suto-client: "), err)
        self.assertEqual(load_state(self.state).profiles, {"alice": PROFILE})

    def test_no_state_file(self):
        """
        Without a state file there is nothing to set, and none is made.
        """
        os.unlink(self.state)
        code, _, err = self.run_failover("alice", "192.0.2.11")
        self.assertEqual(code, 1)
        self.assertIn("there is no state file", err)
        self.assertFalse(os.path.exists(self.state))
