"""
Tests for L{suto_client.pam.report}: one system log line per decision,
saying who, what and why.
"""

from __future__ import annotations

import syslog

from twisted.trial.unittest import SynchronousTestCase

from suto_client.pam.report import line, report
from suto_client.pam.verdict import Decision, denied


class LineTests(SynchronousTestCase):
    def test_accepted(self):
        """
        An acceptance is logged at C{info}.
        """
        self.assertEqual(
            line("alice", "sudo", Decision(True, "accepted", "the device answered")),
            (syslog.LOG_INFO, "accepted user=alice service=sudo verdict=accepted: the device answered"),
        )

    def test_denied(self):
        """
        A denial is logged at C{warning}, with its kind and reason.
        """
        self.assertEqual(
            line("alice", "login", denied("unreachable", "cannot reach the server")),
            (syslog.LOG_WARNING, "denied user=alice service=login verdict=unreachable: cannot reach the server"),
        )

    def test_user_made_printable(self):
        """
        A user name holding a line break cannot forge a second line.
        """
        priority, text = line("eve\naccepted user=root", "sudo", denied("rejected", "no"))
        self.assertNotIn("\n", text)
        self.assertTrue(text.startswith("denied user=eve?accepted"))

    def test_report(self):
        """
        L{report} hands the line to the writer.
        """
        written = []
        report(lambda *each: written.append(each), "alice", "sudo", denied("deadline", "late"))
        self.assertEqual(written, [(syslog.LOG_WARNING, "denied user=alice service=sudo verdict=deadline: late")])
