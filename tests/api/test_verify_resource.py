"""
C{POST /v1/verify} over the real site (L{suto_server.api.verify_resource},
L{suto_server.api.site}): what it reads, the limits per calling host, the
answers and their audit, with a verifier whose verdicts the test gives.
"""

import json

from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource

from suto_server.admin.httpjson import MAX_BODY
from suto_server.api.callers import CallerLimits
from suto_server.api.guard import SUPPRESSED, ApiRoot
from suto_server.api.site import ApiSite
from suto_server.api.verifier import Answer, VerifyResult
from suto_server.api.verify_resource import MAX_VERIFY_BODY, VerifyResource
from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import ALLOWANCE
from suto_server.cred.roles import RolePolicy
from suto_server.store.memory import MemoryStore
from tests.support.api import CALLER_ADDRESS, answer, caller, connect, request

POLICY = RolePolicy.from_options(verify_units="suto-hosts")
HOST = caller("db1", "suto-hosts")
OTHER_HOST = caller("db2", "suto-hosts")


class RecordingVerifier:
    """
    Records each verification asked for; the test fires its Deferred.
    """

    def __init__(self):
        self.asked = []

    def verify(self, user, deadline):
        d = defer.Deferred()
        self.asked.append((user, deadline, d))
        return d


class VerifyResourceTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.store = MemoryStore()
        self.verifier = RecordingVerifier()
        self.site = self.site_over(AuditLog(self.store))

    def site_over(self, audit):
        """
        @return: the API's site over C{self.verifier}, auditing into C{audit}.
        """
        verify = VerifyResource(
            self.verifier,
            CallerLimits(in_flight=2, per_minute=5),
            POLICY,
            audit,
            self.clock,
            (1.0, 30.0),
        )
        return ApiSite(
            ApiRoot(POLICY, verify, resource.Resource(), audit, self.clock), self.clock
        )

    def post(self, body, certificate=HOST):
        transport = connect(self.site, certificate)
        if not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        request(transport, "POST", "/v1/verify", body)
        return transport

    def test_accepted(self):
        """
        The verdict is the answer, 200 with the user, the verdict and its
        reason, written when the verifier answers; it is audited with the
        caller's subject.
        """
        transport = self.post({"user": "alice", "deadline": 5})
        [(user, deadline, d)] = self.verifier.asked
        self.assertEqual((user, deadline), ("alice", 5.0))
        self.assertIsNone(answer(transport))
        d.callback(VerifyResult("alice", Answer.ACCEPTED, "the device proved it", "127.0.0.5"))
        self.assertEqual(
            answer(transport),
            (200, {"user": "alice", "verdict": "accepted", "reason": "the device proved it"}),
        )
        [event] = self.store.audit_events()
        self.assertEqual(
            (event.event, event.username, event.source),
            ("verify_accepted", "alice", "OU=suto-hosts,CN=db1"),
        )
        self.assertEqual(
            event.reason,
            f"the device proved it (asked from {CALLER_ADDRESS}; device at 127.0.0.5)",
        )

    def test_answer_waits_for_audit_record(self):
        """
        A verdict is answered only once its C{verify_<verdict>} record (and
        every record before it) is on disk: with the append pending the
        host has no answer yet; when it lands, it has.
        """
        appends = []

        def append(record):
            appends.append(defer.Deferred())
            return appends[-1]

        self.site = self.site_over(AuditLog(MemoryStore(), sinks=[], append=append))
        transport = self.post({"user": "alice", "deadline": 5})
        [(_, _, d)] = self.verifier.asked
        d.callback(VerifyResult("alice", Answer.ACCEPTED, "the device proved its key"))
        self.assertEqual(len(appends), 1)
        self.assertIsNone(answer(transport))
        appends[0].callback(None)
        status, body = answer(transport)
        self.assertEqual((status, body["verdict"]), (200, "accepted"))

    def test_deadline(self):
        """
        No deadline is the default of 10 s; others are clamped to the
        server's bounds.
        """
        for body, expected in [
            ({"user": "alice"}, 10.0),
            ({"user": "alice", "deadline": 0.001}, 1.0),
            ({"user": "alice", "deadline": 3600}, 30.0),
        ]:
            self.post(body)
            _, deadline, d = self.verifier.asked.pop()
            self.assertEqual(deadline, expected)
            d.callback(VerifyResult("alice", Answer.ACCEPTED, "ok"))

    def test_bad_requests(self):
        """
        A body that is not JSON, not an object, without a valid user, or
        with a deadline that is not a positive number is answered 400
        and reaches no device.
        """
        for body in [
            b"{",
            b"[]",
            {"deadline": 5},
            {"user": "-rf"},
            {"user": "alice", "deadline": "soon"},
            {"user": "alice", "deadline": True},
            {"user": "alice", "deadline": -1},
            b'{"user": "alice", "deadline": NaN}',
            # An integer too large for a float.
            b'{"user": "alice", "deadline": 1' + b"0" * 400 + b"}",
        ]:
            status, error = answer(self.post(body))
            self.assertEqual(status, 400, body)
            self.assertIn("error", error)
        self.assertEqual(self.verifier.asked, [])
        events = self.store.audit_events()
        self.assertEqual({e.event for e in events}, {"verify_bad_request"})
        self.assertEqual({e.source for e in events}, {"OU=suto-hosts,CN=db1"})

    def test_too_large(self):
        """
        A body over the verification's bound is 413; one far larger is
        not kept whole by the site, and is 413 all the same.
        """
        padding = {"user": "alice", "pad": "x" * MAX_VERIFY_BODY}
        self.assertEqual(answer(self.post(padding))[0], 413)
        huge = self.post(b"x" * (MAX_BODY * 8))
        self.assertEqual(answer(huge)[0], 413)
        self.assertEqual(self.verifier.asked, [])

    def test_in_flight(self):
        """
        A host with as many verifications in flight as it may hold is
        answered C{rate_limited} at once, and audited; another host is
        not; once one answer is in, the host may ask again.
        """
        self.post({"user": "alice"})
        self.post({"user": "bob"})
        status, body = answer(self.post({"user": "carol"}))
        self.assertEqual((status, body["verdict"]), (200, "rate_limited"))
        self.post({"user": "carol"}, OTHER_HOST)
        self.assertEqual(len(self.verifier.asked), 3)
        self.verifier.asked[0][2].callback(VerifyResult("alice", Answer.REJECTED, "no"))
        self.post({"user": "carol"})
        self.assertEqual(len(self.verifier.asked), 4)
        events = [e.event for e in self.store.audit_events()]
        self.assertEqual(events, ["verify_rate_limited", "verify_rejected"])

    def test_per_minute(self):
        """
        Past its verifications a minute a host is answered
        C{rate_limited}; a minute later it is heard again.
        """
        for _ in range(5):
            self.post({"user": "alice"})
            self.verifier.asked.pop()[2].callback(
                VerifyResult("alice", Answer.ACCEPTED, "ok")
            )
        self.assertEqual(answer(self.post({"user": "alice"}))[1]["verdict"], "rate_limited")
        self.clock.advance(60)
        self.post({"user": "alice"})
        self.assertEqual(len(self.verifier.asked), 1)

    def test_refusals_bounded(self):
        """
        A host flooding bad requests, or verifications past its limits, is
        answered every time but writes at most the refusal allowance of
        audit records a minute, and one saying the rest went unrecorded.
        """
        for _ in range(ALLOWANCE):
            self.post(b"{")
        for _ in range(2):
            self.post({"user": "alice"})
        for _ in range(ALLOWANCE):
            status, body = answer(self.post({"user": "carol"}))
            self.assertEqual((status, body["verdict"]), (200, "rate_limited"))
        events = [e.event for e in self.store.audit_events()]
        self.assertEqual(
            events, ["verify_bad_request"] * ALLOWANCE + [SUPPRESSED]
        )

    def test_hung_up(self):
        """
        A caller that hangs up before the verdict frees its slot when the
        verdict comes, and nothing is written.
        """
        transport = self.post({"user": "alice"})
        transport.protocol.connectionLost(Failure(ConnectionDone()))
        self.verifier.asked[0][2].callback(VerifyResult("alice", Answer.ACCEPTED, "ok"))
        self.assertEqual(transport.value(), b"")
        self.post({"user": "bob"})
        self.post({"user": "carol"})
        self.assertEqual(len(self.verifier.asked), 3)
