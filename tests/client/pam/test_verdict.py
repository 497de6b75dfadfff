"""
Tests for L{suto_client.pam.verdict}: only HTTP 200 with C{accepted} for
the same user lets anyone in.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from suto_client.pam.verdict import Decision, judge, printable


def _body(**fields) -> bytes:
    return json.dumps(fields).encode()


class JudgeTests(SynchronousTestCase):
    def test_accepted(self):
        """
        200, C{accepted}, the same user: accepted, with the server's reason.
        """
        self.assertEqual(
            judge("alice", 200, _body(user="alice", verdict="accepted", reason="device answered")),
            Decision(True, "accepted", "device answered"),
        )

    def test_other_user(self):
        """
        An acceptance of another user denies.
        """
        decision = judge("alice", 200, _body(user="bob", verdict="accepted"))
        self.assertEqual(decision, Decision(False, "answer", "the server's answer is about another user"))

    def test_unknown_verdict(self):
        """
        A verdict outside the contract, or none, denies.
        """
        for body in (_body(user="alice", verdict="ACCEPTED"), _body(user="alice"), _body(user="alice", verdict=1)):
            self.assertEqual(judge("alice", 200, body).verdict, "answer")

    def test_not_json(self):
        """
        A body that is not a JSON object denies.
        """
        for body in (b"", b"accepted", b"[]", b"\xff", b"[" * 100_000):
            self.assertEqual(
                judge("alice", 200, body),
                Decision(False, "answer", "the server's answer is not a JSON object"),
            )

    def test_statuses(self):
        """
        Any status but 200 denies, even with an accepting body; the known
        ones are explained, with the server's error.
        """
        accepting = _body(user="alice", verdict="accepted")
        self.assertEqual(judge("alice", 201, accepting).verdict, "http")
        self.assertEqual(
            judge("alice", 413, _body(error="body too large")).reason,
            "HTTP 413, the server refused the request as too large: body too large",
        )
        self.assertEqual(
            judge("alice", 500, b"oops").reason,
            "HTTP 500, the server answered with an unexpected status",
        )

    def test_denial_reason(self):
        """
        A denying verdict carries the server's reason, made printable.
        """
        decision = judge("alice", 200, _body(user="alice", verdict="blacklisted", reason="cloned\nkey"))
        self.assertEqual(decision, Decision(False, "blacklisted", "blacklisted: cloned?key"))


class PrintableTests(SynchronousTestCase):
    def test_control_characters(self):
        """
        Control characters become C{?}, so a reason stays one log line.
        """
        self.assertEqual(printable("a\r\nb\x1b[31m"), "a??b?[31m")

    def test_capped(self):
        """
        A long reason is cut, and the cut is shown.
        """
        self.assertEqual(printable("x" * 1000), "x" * 400 + "...")
