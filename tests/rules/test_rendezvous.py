"""
The rendezvous table: which pending request a connection answers, when a
request times out, and which requests may not wait side by side.
"""

import ipaddress

from twisted.internet import task
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.rules.rendezvous import (
    AuthRequest,
    Outcome,
    Rendezvous,
    RequestConflict,
    Verdict,
)
from tests.support.coroutines import result_of


class RendezvousTests(SynchronousTestCase):
    """
    Opening, claiming and finishing requests, with time driven by a
    L{task.Clock}.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.outcomes = []

    def open(self, user, accept_from, timeout=None):
        "Open a request and record the outcome its Deferred fires with."
        request = self.rendezvous.open(user, accept_from, timeout)
        request.done.addCallback(self.outcomes.append)
        return request

    def test_open_records_networks(self):
        """
        An opened request is pending, names its user and accepts the given
        addresses and networks as networks, hosts as single-address ones.
        """
        request = self.open("alice", ["192.0.2.7", "198.51.100.0/24"])
        self.assertIsInstance(request, AuthRequest)
        self.assertEqual(request.user, "alice")
        self.assertEqual(
            request.accept_from,
            (
                ipaddress.ip_network("192.0.2.7/32"),
                ipaddress.ip_network("198.51.100.0/24"),
            ),
        )
        self.assertIsNone(request.claimed_by)
        self.assertEqual(self.rendezvous.pending, (request,))
        self.assertEqual(self.outcomes, [])

    def test_open_needs_a_source(self):
        """
        A request that accepts no source could never be answered, so
        opening one is refused.
        """
        self.assertRaises(ValueError, self.rendezvous.open, "alice", [])
        self.assertEqual(self.rendezvous.pending, ())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_open_rejects_non_addresses(self):
        """
        A source that is not an address or network is refused with
        L{ValueError} and nothing is left pending.
        """
        self.assertRaises(
            ValueError, self.rendezvous.open, "alice", ["device.example"]
        )
        self.assertEqual(self.rendezvous.pending, ())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_claim_and_finish(self):
        """
        A connection from an accepted address claims the request; finishing
        it fires the request's Deferred with the verdict, the claiming
        address and the reason, and removes it from the table.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), request)
        self.assertEqual(request.claimed_by, "192.0.2.7")
        self.assertEqual(self.outcomes, [])
        self.rendezvous.finish(request, Verdict.ACCEPTED, "right answer")
        self.assertEqual(
            self.outcomes,
            [Outcome("alice", Verdict.ACCEPTED, "192.0.2.7", "right answer")],
        )
        self.assertEqual(self.rendezvous.pending, ())

    def test_claim_from_subnet(self):
        """
        A request that accepts a network is claimed by any address in it.
        """
        request = self.open("alice", ["192.0.2.0/24"])
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.200")), request)
        self.assertEqual(request.claimed_by, "192.0.2.200")

    def test_claim_from_elsewhere(self):
        """
        A connection from an address no request accepts claims nothing and
        leaves the pending request untouched.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.assertIsNone(result_of(self, self.rendezvous.claim("192.0.2.8")))
        self.assertIsNone(result_of(self, self.rendezvous.claim("2001:db8::7")))
        self.assertIsNone(request.claimed_by)
        self.assertEqual(self.rendezvous.pending, (request,))

    def test_claim_garbage_address(self):
        """
        An address that cannot be parsed claims nothing rather than raising.
        """
        self.open("alice", ["192.0.2.0/24"])
        self.assertIsNone(result_of(self, self.rendezvous.claim("not an address")))

    def test_second_claim_gets_nothing(self):
        """
        A request is claimed at most once: a second connection from the same
        address gets L{None} and the first claim stands.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), request)
        self.assertIsNone(result_of(self, self.rendezvous.claim("192.0.2.7")))
        self.assertEqual(request.claimed_by, "192.0.2.7")

    def test_claim_ipv6(self):
        """
        IPv6 requests are claimed by IPv6 addresses in their networks.
        """
        request = self.open("alice", ["2001:db8::/64"])
        self.assertIs(result_of(self, self.rendezvous.claim("2001:db8::42")), request)

    def test_ipv4_mapped_source_claims_ipv4_request(self):
        """
        A dual-stack listener reports an IPv4 peer as an IPv4-mapped IPv6
        address; it still claims the request for the IPv4 address, and the
        outcome names the address as the listener reported it.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.assertIs(result_of(self, self.rendezvous.claim("::ffff:192.0.2.7")), request)
        self.rendezvous.finish(request, Verdict.ACCEPTED)
        self.assertEqual(
            self.outcomes,
            [Outcome("alice", Verdict.ACCEPTED, "::ffff:192.0.2.7")],
        )

    def test_ipv4_mapped_accept_is_claimed_by_ipv4(self):
        """
        A request that names its device by an IPv4-mapped IPv6 address is
        claimed by a connection from that IPv4 device, however the listener
        reports it.
        """
        request = self.open("alice", ["::ffff:192.0.2.7"])
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), request)

    def test_network_objects(self):
        """
        Networks given as objects, as parsed hello targets are, accept as
        their text does: an IPv4 network as it is, an IPv4-mapped IPv6
        one as the IPv4 network it maps.
        """
        ipv4 = ipaddress.ip_network("192.0.2.0/30")
        request = self.open("alice", [ipv4, ipaddress.ip_network("::ffff:198.51.100.7")])
        self.assertEqual(
            request.accept_from, (ipv4, ipaddress.ip_network("198.51.100.7/32"))
        )
        self.assertIs(result_of(self, self.rendezvous.claim("198.51.100.7")), request)

    def test_timeout(self):
        """
        A request nobody claims ends as L{Verdict.TIMEOUT} when its timeout
        passes, with no source, and leaves the table.
        """
        self.open("alice", ["192.0.2.7"])
        self.clock.advance(4.9)
        self.assertEqual(self.outcomes, [])
        self.clock.advance(0.1)
        self.assertEqual(
            self.outcomes,
            [
                Outcome(
                    "alice",
                    Verdict.TIMEOUT,
                    None,
                    "no device connected in time",
                )
            ],
        )
        self.assertEqual(self.rendezvous.pending, ())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout_is_logged(self):
        """
        A timeout is logged with the user's name, so an operator sees why
        an authentication failed.
        """
        with capturedLogs() as events:
            self.open("alice", ["192.0.2.7"])
            self.clock.advance(5)
        self.assertEqual(
            [event.get("user") for event in events if "user" in event],
            ["alice"],
        )

    def test_timeout_override(self):
        """
        A per-request timeout replaces the default for that request only.
        """
        self.open("alice", ["192.0.2.7"], timeout=1)
        self.open("bob", ["192.0.2.8"])
        self.clock.advance(1)
        self.assertEqual(
            [(o.user, o.verdict) for o in self.outcomes],
            [("alice", Verdict.TIMEOUT)],
        )
        self.clock.advance(4)
        self.assertEqual(
            [(o.user, o.verdict) for o in self.outcomes],
            [("alice", Verdict.TIMEOUT), ("bob", Verdict.TIMEOUT)],
        )

    def test_claim_cancels_timer(self):
        """
        Once a device has connected the rendezvous timeout no longer
        applies: the timer is cancelled and the request stays pending until
        finished.
        """
        request = self.open("alice", ["192.0.2.7"])
        result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(60)
        self.assertEqual(self.outcomes, [])
        self.assertEqual(self.rendezvous.pending, (request,))

    def test_finish_cancels_timer(self):
        """
        Finishing an unclaimed request cancels its timer, so it cannot end
        a second time.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.rendezvous.finish(request, Verdict.CANCELLED, "withdrawn")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(60)
        self.assertEqual(
            self.outcomes,
            [Outcome("alice", Verdict.CANCELLED, None, "withdrawn")],
        )

    def test_finish_twice_keeps_first_verdict(self):
        """
        A second finish (a connection lost after its verdict) changes
        nothing: the Deferred fired once, with the first verdict.
        """
        request = self.open("alice", ["192.0.2.7"])
        result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.rendezvous.finish(request, Verdict.ACCEPTED)
        self.rendezvous.finish(request, Verdict.ERROR, "connection lost")
        self.assertEqual(
            self.outcomes, [Outcome("alice", Verdict.ACCEPTED, "192.0.2.7")]
        )

    def test_finished_request_is_not_claimed(self):
        """
        After a request ends its addresses are free: a late connection
        claims nothing and a new request for them may open.
        """
        request = self.open("alice", ["192.0.2.7"])
        self.clock.advance(5)
        self.assertIsNone(result_of(self, self.rendezvous.claim("192.0.2.7")))
        again = self.open("alice", ["192.0.2.7"])
        self.assertIsNot(again, request)
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), again)

    def test_claim_picks_the_matching_request(self):
        """
        With several requests pending, a connection claims the one whose
        networks contain its address.
        """
        alice = self.open("alice", ["192.0.2.7"])
        bob = self.open("bob", ["198.51.100.0/24"])
        self.assertIs(result_of(self, self.rendezvous.claim("198.51.100.9")), bob)
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), alice)

    def test_pending_view(self):
        """
        C{pending} lists the waiting requests in opening order, claimed or
        not, and is a snapshot the caller cannot use to alter the table.
        """
        alice = self.open("alice", ["192.0.2.7"])
        bob = self.open("bob", ["192.0.2.8"])
        result_of(self, self.rendezvous.claim("192.0.2.8"))
        pending = self.rendezvous.pending
        self.assertEqual(pending, (alice, bob))
        self.assertIsInstance(pending, tuple)
        self.rendezvous.finish(alice, Verdict.REJECTED)
        self.assertEqual(pending, (alice, bob))
        self.assertEqual(self.rendezvous.pending, (bob,))

    def test_noticed_names_the_cause(self):
        """
        A connection from a request's source that ended before it could
        answer (a failed TLS handshake, a refusal by the gate) does not end
        the request; if no device answers in time, the request ends with
        what was noticed last instead of L{Verdict.TIMEOUT}, and the log
        names the cause.
        """
        self.open("alice", ["192.0.2.0/24"])
        self.rendezvous.noticed(
            "192.0.2.7", Verdict.REFUSED_BY_LIMITS, "its source is penalised"
        )
        self.rendezvous.noticed(
            "192.0.2.7", Verdict.TLS_TRUST_FAILURE, "the TLS handshake failed"
        )
        self.assertEqual(self.outcomes, [])
        with capturedLogs() as events:
            self.clock.advance(5)
        self.assertEqual(
            self.outcomes,
            [
                Outcome(
                    "alice",
                    Verdict.TLS_TRUST_FAILURE,
                    None,
                    "the TLS handshake failed",
                )
            ],
        )
        self.assertEqual(
            [e["reason"] for e in events if e.get("user") == "alice"],
            ["the TLS handshake failed"],
        )

    def test_noticed_then_answered(self):
        """
        A device that answers after a noticed failure claims the request
        as usual: the noticed cause only replaces a timeout.
        """
        alice = self.open("alice", ["192.0.2.7"])
        self.rendezvous.noticed(
            "192.0.2.7", Verdict.TLS_TRUST_FAILURE, "the TLS handshake failed"
        )
        self.assertIs(result_of(self, self.rendezvous.claim("192.0.2.7")), alice)
        self.rendezvous.finish(alice, Verdict.ACCEPTED)
        self.assertEqual(
            self.outcomes, [Outcome("alice", Verdict.ACCEPTED, "192.0.2.7")]
        )

    def test_noticed_elsewhere(self):
        """
        A failure from an address no request accepts changes nothing.
        """
        self.open("alice", ["192.0.2.7"])
        self.rendezvous.noticed(
            "198.51.100.1", Verdict.TLS_TRUST_FAILURE, "the TLS handshake failed"
        )
        self.clock.advance(5)
        self.assertEqual(
            [outcome.verdict for outcome in self.outcomes], [Verdict.TIMEOUT]
        )


class RequestConflictTests(SynchronousTestCase):
    """
    Two pending requests may never accept the same address, or a
    connection could answer the wrong user's request.
    """

    def setUp(self):
        self.rendezvous = Rendezvous(task.Clock())

    def assert_conflict(self, first, second):
        """
        Opening a request for C{second} while one for C{first} waits raises
        L{RequestConflict} and leaves only the first pending.
        """
        request = self.rendezvous.open("alice", first)
        self.assertRaises(RequestConflict, self.rendezvous.open, "bob", second)
        self.assertEqual(self.rendezvous.pending, (request,))

    def test_same_host(self):
        """
        Two requests for the same IPv4 address conflict.
        """
        self.assert_conflict(["192.0.2.7"], ["192.0.2.7/32"])

    def test_subnet_then_host(self):
        """
        A host inside a pending request's subnet conflicts with it.
        """
        self.assert_conflict(["192.0.2.0/24"], ["192.0.2.7"])

    def test_host_then_subnet(self):
        """
        A subnet containing a pending request's host conflicts with it.
        """
        self.assert_conflict(["192.0.2.7"], ["192.0.2.0/24"])

    def test_any_network_overlapping(self):
        """
        One overlapping network among several is enough for a conflict.
        """
        self.assert_conflict(
            ["198.51.100.1", "192.0.2.0/25"], ["203.0.113.5", "192.0.2.64/26"]
        )

    def test_ipv6(self):
        """
        IPv6 networks conflict the same way.
        """
        self.assert_conflict(["2001:db8::/64"], ["2001:db8::7"])

    def test_ipv4_mapped_conflicts_with_ipv4(self):
        """
        An IPv4-mapped address and the IPv4 address it maps are the same
        device, so requests for them conflict.
        """
        self.assert_conflict(["::ffff:192.0.2.7"], ["192.0.2.7"])

    def test_claimed_request_still_conflicts(self):
        """
        A claimed request still owns its addresses until it is finished.
        """
        request = self.rendezvous.open("alice", ["192.0.2.7"])
        result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.assertRaises(
            RequestConflict, self.rendezvous.open, "bob", ["192.0.2.7"]
        )
        self.assertEqual(self.rendezvous.pending, (request,))

    def test_conflict_message_names_the_waiting_user(self):
        """
        The error names whose request is in the way, so the operator knows
        what to wait for.
        """
        self.rendezvous.open("alice", ["192.0.2.7"])
        error = self.assertRaises(
            RequestConflict, self.rendezvous.open, "bob", ["192.0.2.7"]
        )
        self.assertIn("alice", str(error))

    def test_disjoint_requests(self):
        """
        Requests for different hosts, disjoint subnets, or different
        address families wait side by side.
        """
        opened = [
            self.rendezvous.open("alice", ["192.0.2.7"]),
            self.rendezvous.open("bob", ["192.0.2.8"]),
            self.rendezvous.open("carol", ["198.51.100.0/24"]),
            self.rendezvous.open("dave", ["2001:db8::7"]),
            self.rendezvous.open("erin", ["2001:db8:1::/64"]),
        ]
        self.assertEqual(self.rendezvous.pending, tuple(opened))

    def test_conflict_starts_no_timer(self):
        """
        A refused request leaves no timer behind.
        """
        clock = task.Clock()
        rendezvous = Rendezvous(clock)
        rendezvous.open("alice", ["192.0.2.7"])
        self.assertRaises(
            RequestConflict, rendezvous.open, "bob", ["192.0.2.7"]
        )
        self.assertEqual(len(clock.getDelayedCalls()), 1)


class ExpectsTests(SynchronousTestCase):
    """
    L{Rendezvous.expects}: would a connection from an address claim a
    request now?  The connection gate keeps room for those that would.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock)

    def test_host_target(self):
        """
        The address of a pending request is expected, in IPv4-mapped form
        too; others and garbage are not, and asking claims nothing.
        """
        request = self.rendezvous.open("alice", ["192.0.2.7"])
        self.assertTrue(self.rendezvous.expects("192.0.2.7"))
        self.assertTrue(self.rendezvous.expects("::ffff:192.0.2.7"))
        self.assertFalse(self.rendezvous.expects("192.0.2.8"))
        self.assertFalse(self.rendezvous.expects("not an address"))
        self.assertIsNone(request.claimed_by)

    def test_network_target(self):
        """
        Every address of a pending request's network (a broadcast target)
        is expected while the request is unclaimed.
        """
        self.rendezvous.open("alice", ["192.0.2.0/24"])
        self.assertTrue(self.rendezvous.expects("192.0.2.1"))
        self.assertTrue(self.rendezvous.expects("192.0.2.254"))
        self.assertFalse(self.rendezvous.expects("192.0.3.1"))
        result_of(self, self.rendezvous.claim("192.0.2.9"))
        self.assertFalse(self.rendezvous.expects("192.0.2.1"))

    def test_not_after_claim_or_end(self):
        """
        Once claimed, or ended (here by its timeout), a request expects no
        one: a later connection from there would find nothing waiting.
        """
        self.rendezvous.open("alice", ["192.0.2.7"])
        result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.assertFalse(self.rendezvous.expects("192.0.2.7"))
        self.rendezvous.open("bob", ["192.0.2.8"])
        self.clock.advance(self.rendezvous.timeout)
        self.assertFalse(self.rendezvous.expects("192.0.2.8"))
