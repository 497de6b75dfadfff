"""
Tests for L{suto_client.pam.offline}: who the offline policy lets in when
the server cannot be reached, and who it never does.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from suto_client.pam.config import Offline
from suto_client.pam.offline import admit, record
from suto_client.pam.verdict import Decision, denied

_UNREACHABLE = denied("unreachable", "cannot reach the server at 192.0.2.7:8443")


class OfflineTests(SynchronousTestCase):
    def setUp(self):
        self.policy = Offline(frozenset({"alice"}), 3600.0, os.path.abspath(self.mktemp()))

    def test_recent_acceptance(self):
        """
        A listed user the server accepted within the grace is let in while
        the server is unreachable, and the log says so.
        """
        record(self.policy, "alice", 1000.0)
        decision = admit(self.policy, "alice", _UNREACHABLE, 1000.0 + 600)
        self.assertEqual(
            decision,
            Decision(
                True,
                "offline",
                "cannot reach the server at 192.0.2.7:8443; let in offline, "
                "last verified 600 s ago (grace 3600 s)",
            ),
        )

    def test_stamps_private(self):
        """
        The stamp folder and its files are root's alone, and a stamp's name
        is not the user's.
        """
        record(self.policy, "alice", 1000.0)
        self.assertEqual(os.stat(self.policy.stamps).st_mode & 0o777, 0o700)
        (name,) = os.listdir(self.policy.stamps)
        self.assertEqual(len(name), 64)
        self.assertEqual(os.stat(os.path.join(self.policy.stamps, name)).st_mode & 0o777, 0o600)

    def test_grace_over(self):
        """
        An acceptance older than the grace lets nobody in.
        """
        record(self.policy, "alice", 1000.0)
        self.assertIs(admit(self.policy, "alice", _UNREACHABLE, 1000.0 + 3601), _UNREACHABLE)

    def test_stamp_from_the_future(self):
        """
        A stamp later than now (the clock was set back) counts as none.
        """
        record(self.policy, "alice", 5000.0)
        self.assertIs(admit(self.policy, "alice", _UNREACHABLE, 4000.0), _UNREACHABLE)

    def test_never_accepted(self):
        """
        A user never accepted on this host is not let in.
        """
        self.assertIs(admit(self.policy, "alice", _UNREACHABLE, 1000.0), _UNREACHABLE)

    def test_unlisted(self):
        """
        A user not in C{offline.users} is neither recorded nor let in.
        """
        record(self.policy, "bob", 1000.0)
        self.assertFalse(os.path.exists(self.policy.stamps))
        self.assertIs(admit(self.policy, "bob", _UNREACHABLE, 1000.0), _UNREACHABLE)

    def test_only_unreachable(self):
        """
        Every other failure, and every verdict, stays a denial.
        """
        record(self.policy, "alice", 1000.0)
        for kind in ("tls", "http", "answer", "deadline", "rejected", "blacklisted", "no_device"):
            denial = denied(kind, "no")
            self.assertIs(admit(self.policy, "alice", denial, 1001.0), denial)

    def test_off(self):
        """
        Without the policy nothing is recorded and nobody let in.
        """
        record(None, "alice", 1000.0)
        self.assertIs(admit(None, "alice", _UNREACHABLE, 1000.0), _UNREACHABLE)

    def test_corrupt_stamp(self):
        """
        A stamp that does not hold a time lets nobody in.
        """
        record(self.policy, "alice", 1000.0)
        (name,) = os.listdir(self.policy.stamps)
        with open(os.path.join(self.policy.stamps, name), "w") as handle:
            handle.write("soon")
        self.assertIs(admit(self.policy, "alice", _UNREACHABLE, 1000.0), _UNREACHABLE)
