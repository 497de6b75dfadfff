"""
"Authenticate this user at that place": the account check, the pending
request and the hellos, with a recording hello sender and a
L{task.Clock}.
"""

import errno

from twisted.internet import task
from twisted.internet.defer import Deferred, fail
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.net.discovery import parse_targets
from suto_server.net.refusals import IListenerWitness
from suto_server.rules.authenticator import (
    Authenticator,
    TargetTooWide,
    UnknownAccount,
)
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.rendezvous import (
    Outcome,
    Rendezvous,
    RequestConflict,
    Verdict,
)
from suto_server.store.errors import StoreError
from tests.support.coroutines import result_of
from tests.support.sources import DictSource


def authenticating(authenticator, *args, **kwargs):
    """
    The authentication C{authenticator} starts, as its callers wrap it.
    """
    return Deferred.fromCoroutine(authenticator.authenticate(*args, **kwargs))

STORED = (
    "$6$abcdefghijklmnop$q2YZbPhm1LySTIzZVDisu/y2CX1McrFsw529ViOLMxoKT."
    "sfgjBo4aFu.hwtGjEDxRb6mn/TZMj7V4/1AUTLi1"
)


class RecordingHelloSender:
    """
    Records the hellos it is asked to send; fails with C{error} if set, as
    a socket would.
    """

    def __init__(self):
        self.sent = []
        self.error = None

    def send_hello(self, user, target):
        if self.error is not None:
            raise self.error
        self.sent.append((user, target))


class AuthenticatorTests(SynchronousTestCase):
    """
    L{Authenticator.authenticate} opens one request and sends its hellos.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.hello = RecordingHelloSender()
        self.source = DictSource({"alice": STORED, "bob": STORED})
        self.authenticator = Authenticator(
            self.rendezvous, self.hello, self.source
        )

    def test_source_interface(self):
        """
        The fake source provides the interface the authenticator needs.
        """
        self.assertTrue(verifyObject(IPasswordHashSource, self.source))

    def test_unknown_account(self):
        """
        A user with no usable hash is refused before anything happens: no
        request is opened and no hello is sent.
        """
        self.source.hashes["locked"] = None
        for user in ("mallory", "locked"):
            error = self.failureResultOf(
                authenticating(self.authenticator, user, parse_targets("192.0.2.7")),
                UnknownAccount,
            ).value
            self.assertIn(user, str(error))
        self.assertEqual(self.rendezvous.pending, ())
        self.assertEqual(self.hello.sent, [])

    def test_store_unreadable(self):
        """
        A store that cannot say whether the user has a hash fails the
        authentication with its error: nothing is pending, no hello goes.
        """

        class Unreachable:
            def hash_for(self, username):
                return fail(StoreError("the database went away"))

        authenticator = Authenticator(self.rendezvous, self.hello, Unreachable())
        self.failureResultOf(
            authenticating(authenticator, "alice", parse_targets("192.0.2.7")),
            StoreError,
        )
        self.assertEqual((self.rendezvous.pending, self.hello.sent), ((), []))

    def test_hellos_to_every_target(self):
        """
        One hello goes to each target, in order, for the user.
        """
        targets = parse_targets(
            "192.0.2.7,[2001:db8::7]:3030,198.51.100.0/24"
        )
        authenticating(self.authenticator, "alice", targets)
        self.assertEqual(
            self.hello.sent, [("alice", target) for target in targets]
        )

    def test_accepts_from_every_target(self):
        """
        The request accepts exactly the networks of all its targets, so the
        device may answer from whichever place it was reached at.
        """
        targets = parse_targets("192.0.2.7,2001:db8::7") + parse_targets(
            "255.255.255.255", accept="198.51.100.0/24,203.0.113.9"
        )
        authenticating(self.authenticator, "alice", targets)
        [request] = self.rendezvous.pending
        self.assertEqual(request.user, "alice")
        self.assertEqual(
            request.accept_from,
            tuple(net for target in targets for net in target.accept_from),
        )
        for address in ("192.0.2.7", "2001:db8::7", "198.51.100.20"):
            self.assertTrue(request.accepts(address))
        self.assertFalse(request.accepts("203.0.113.10"))

    def test_conflict_propagates(self):
        """
        A request overlapping one already waiting raises
        L{RequestConflict}, and the second user's hello is not sent.
        """
        authenticating(self.authenticator, "alice", parse_targets("192.0.2.0/24"))
        self.failureResultOf(
            authenticating(self.authenticator, "bob", parse_targets("192.0.2.7")),
            RequestConflict,
        )
        self.assertEqual([user for user, _ in self.hello.sent], ["alice"])
        self.assertEqual(
            [request.user for request in self.rendezvous.pending], ["alice"]
        )

    def test_no_targets(self):
        """
        Authenticating nowhere is refused and sends nothing.
        """
        self.failureResultOf(authenticating(self.authenticator, "alice", ()), ValueError)
        self.assertEqual(self.hello.sent, [])
        self.assertEqual(self.rendezvous.pending, ())

    def test_fires_with_outcome(self):
        """
        The returned Deferred fires with the outcome the rendezvous
        records when the request is finished.
        """
        done = authenticating(self.authenticator, "alice", parse_targets("192.0.2.7"))
        self.assertNoResult(done)
        request = result_of(self, self.rendezvous.claim("192.0.2.7"))
        self.rendezvous.finish(request, Verdict.ACCEPTED)
        self.assertEqual(
            self.successResultOf(done),
            Outcome("alice", Verdict.ACCEPTED, "192.0.2.7"),
        )

    def test_timeout(self):
        """
        Without a timeout the rendezvous default applies; with one, that
        timeout does.
        """
        default = authenticating(self.authenticator, "alice", parse_targets("192.0.2.7"))
        short = authenticating(
            self.authenticator, "bob", parse_targets("192.0.2.8"), timeout=1
        )
        self.clock.advance(1)
        self.assertNoResult(default)
        self.assertEqual(self.successResultOf(short).verdict, Verdict.TIMEOUT)
        self.clock.advance(4)
        self.assertEqual(
            self.successResultOf(default).verdict, Verdict.TIMEOUT
        )

    def test_send_failure_frees_addresses(self):
        """
        When a hello cannot be sent the error propagates and the request
        does not stay pending, so its addresses are free at once for
        another attempt.
        """
        self.hello.error = OSError(errno.ENETUNREACH, "network unreachable")
        self.failureResultOf(
            authenticating(self.authenticator, "alice", parse_targets("192.0.2.7")),
            OSError,
        )
        self.assertEqual(self.rendezvous.pending, ())



class WitnessTests(SynchronousTestCase):
    """
    As the TLS listeners' witness, the authenticator turns the connections
    that ended before answering into the cause a timed-out request names.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.rendezvous = Rendezvous(self.clock, timeout=5)
        self.authenticator = Authenticator(
            self.rendezvous, RecordingHelloSender(), DictSource({"alice": STORED})
        )

    def test_interface(self):
        """
        The authenticator provides L{IListenerWitness}.
        """
        self.assertTrue(verifyObject(IListenerWitness, self.authenticator))

    def test_handshake_failed(self):
        """
        A failed handshake from the target ends the request, at its
        timeout, as a TLS trust failure naming the device and the reason,
        and is logged at once.
        """
        done = authenticating(self.authenticator, "alice", parse_targets("192.0.2.7"))
        with capturedLogs() as events:
            self.authenticator.handshake_failed("192.0.2.7", "tlsv1 alert unknown ca")
        self.assertEqual([e["source"] for e in events], ["192.0.2.7"])
        self.clock.advance(5)
        outcome = self.successResultOf(done)
        self.assertEqual(outcome.verdict, Verdict.TLS_TRUST_FAILURE)
        self.assertIn("192.0.2.7", outcome.reason)
        self.assertIn("tlsv1 alert unknown ca", outcome.reason)

    def test_refused(self):
        """
        A connection from the target refused by the limits ends the
        request, at its timeout, as refused by limits.
        """
        done = authenticating(self.authenticator, "alice", parse_targets("192.0.2.7"))
        self.authenticator.refused("192.0.2.7")
        self.clock.advance(5)
        outcome = self.successResultOf(done)
        self.assertEqual(outcome.verdict, Verdict.REFUSED_BY_LIMITS)
        self.assertIn("connection limits", outcome.reason)

    def test_elsewhere_not_logged(self):
        """
        Failures from sources no request waits for (or from no IP peer)
        are not the authenticator's to log: the gate and the listener
        already are.
        """
        authenticating(self.authenticator, "alice", parse_targets("192.0.2.7"))
        with capturedLogs() as events:
            self.authenticator.handshake_failed("198.51.100.1", "http request")
            self.authenticator.refused("198.51.100.1")
            self.authenticator.refused(None)
        self.assertEqual(events, [])


class PacedWitnessTests(SynchronousTestCase):
    """
    A flood of refused connections and failed handshakes from a pending
    request's target network writes one line per source and cause per
    interval, through the gate's pacing, however many arrive.
    """

    def test_flood_paced(self):
        clock = task.Clock()
        gate = ConnectionGate(clock, log_interval=60)
        authenticator = Authenticator(
            Rendezvous(clock, timeout=5),
            RecordingHelloSender(),
            DictSource({"alice": STORED}),
            paced=gate.paced,
        )
        authenticating(authenticator, "alice", parse_targets("192.0.2.0/24"))
        with capturedLogs() as events:
            for _ in range(1000):
                authenticator.refused("192.0.2.7")
                authenticator.handshake_failed("192.0.2.7", "tlsv1 alert unknown ca")
        self.assertEqual(
            sorted(e["verdict"] for e in events),
            ["refused_by_limits", "tls_trust_failure"],
        )


class TargetBoundsTests(SynchronousTestCase):
    """
    A target is held to the enrollment window's bound: no network wider
    than /16 (IPv4) or /48 (IPv6) unless asked for with C{wide}.
    """

    def setUp(self):
        self.rendezvous = Rendezvous(task.Clock(), timeout=5)
        self.hello = RecordingHelloSender()
        self.authenticator = Authenticator(
            self.rendezvous, self.hello, DictSource({"alice": STORED})
        )

    def test_too_wide_refused(self):
        """
        A /8 target, or a limited broadcast accepting a /8, is refused with
        a message naming the network and C{--wide}; nothing is sent.
        """
        for targets in (
            parse_targets("10.0.0.0/8"),
            parse_targets("255.255.255.255", accept="10.0.0.0/8"),
        ):
            error = self.failureResultOf(
                authenticating(self.authenticator, "alice", targets), TargetTooWide
            ).value
            self.assertIn("10.0.0.0/8", str(error))
            self.assertIn("--wide", str(error))
        self.assertEqual((self.hello.sent, self.rendezvous.pending), ([], ()))

    def test_bound_itself(self):
        """
        A /16 is the widest target taken without asking.
        """
        authenticating(self.authenticator, "alice", parse_targets("10.1.0.0/16"))
        self.assertEqual(len(self.hello.sent), 1)

    def test_wide_on_request(self):
        """
        With C{wide} the /8 is authenticated at.
        """
        authenticating(
            self.authenticator, "alice", parse_targets("10.0.0.0/8"), wide=True
        )
        self.assertEqual(len(self.hello.sent), 1)
