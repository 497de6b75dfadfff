"""
Tests for L{suto_server.rules.tracking}: what the server decides when a profile
shows up at an address other than the one the registry holds.  The real
L{CheckService} runs on a memory reactor with a clock and fake datagram
transports; the audit log is a recording fake; the store is in memory.
"""

import ipaddress
from dataclasses import replace

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.aggregation import DEFAULT_INTERVAL
from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.locations import Location, Locations
from suto_server.net.checks import CheckError, CheckService
from suto_server.rules.registry import LiveSession, LiveSessions
from suto_server.rules.tracking import Tracking
from suto_server.store.calls import LocalCalls
from suto_server.store.memory import MemoryStore
from suto_server.store.records import Move
from tests.support.alerts import RecordingSink
from tests.support.checks import answer
from tests.support.coroutines import result_of
from tests.support.factories import connected
from tests.support.rotation import (
    ELSEWHERE,
    FIRST_KEY,
    OTHER_FINGERPRINT,
    SOURCE,
    Device,
)
from tests.support.rotation_listener import VERSION, RotationListenerMixin
from tests.support.store_suite.values import PROFILE, WINDOW, numbered_rotation
from tests.support.tracking import admit
from tests.support.udp import MemoryUDPReactor

NOW = 1_700_000_000.0
OLD = PROFILE.location  # 10.2.3.17, in "lab-east"
NEW = "10.9.0.4"
THIRD = "10.9.0.5"
KEY = bytes(range(32))
PREVIOUS = bytes(range(32, 64))
WRONG_KEY = bytes(range(64, 96))
LOCATIONS = Locations(
    {"lab-east": Location((ipaddress.ip_network("10.2.3.0/24"),), "lab-east")}
)


class RecordingAudit:
    """
    Records what would go to the audit log, in order, and which events
    were recorded as unproven.
    """

    def __init__(self):
        self.records = []
        self.unproven = []

    def record(self, now, event, user, source, reason, locations=(), *, unproven=False):
        self.records.append((now, event, user, source, reason, tuple(locations)))
        if unproven:
            self.unproven.append(event)

    def events(self):
        return [record[1] for record in self.records]


class TrackingTests(SynchronousTestCase):
    """
    L{Tracking.admit} with a real check service on a fake UDP reactor.
    """

    def setUp(self):
        self.reactor = MemoryUDPReactor()
        self.reactor.advance(NOW)
        self.store = MemoryStore()
        self.store.open_window(WINDOW)
        self.store.complete_enrollment(PROFILE)
        self.audit = RecordingAudit()
        self.live = LiveSessions()
        self.checks = CheckService(self.reactor)
        self.tracking = Tracking(
            LocalCalls(self.store), self.audit, self.live, self.checks, LOCATIONS
        )

    def admit(self, address, connection, previous=None, proven=True):
        """
        Ask whether C{connection} from C{address} may serve alice.

        @return: a list that receives the decision.
        """
        return admit(
            self.tracking, self.store, KEY, address, connection,
            self.reactor.seconds(), previous=previous, proven=proven,
        )

    def commit(self, connection, address, now):
        """
        Commit a rotation of alice from C{address} on C{connection}, as the
        rotation phase does before it calls L{Tracking.proven}: the
        store's commit sets the profile's address itself.
        """
        profile = self.store.get_profile("alice")
        rotation = numbered_rotation(
            "alice",
            profile.generation,
            profile.generation + 1,
            now,
            expected_key_id=profile.key_id,
            address=address,
        )
        self.assertEqual(self.store.commit_rotations([rotation]), [True])
        result_of(self, self.tracking.proven(connection, now))

    def sent(self):
        """
        The check packets sent, as (L{wire.Check}, destination).
        """
        return [
            (wire.parse_datagram(datagram), destination)
            for _, protocol in self.reactor.udp
            for datagram, destination in protocol.transport.written
        ]

    def reply(self, datagram, source=OLD):
        [(_, protocol)] = self.reactor.udp
        protocol.datagramReceived(datagram, (source, 2020))

    def assert_not_moved(self):
        profile = self.store.get_profile("alice")
        self.assertEqual((profile.last_address, self.store.moves("alice")), (OLD, []))

    def test_same_address(self):
        """
        A connection from the address the registry holds is admitted at
        once and becomes the live one: no check, nothing recorded.
        """
        decisions = self.admit(OLD, "conn")
        self.assertEqual(decisions, [True])
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.audit.records, [])
        self.assertEqual(
            (self.live.get("alice").address, self.live.get("alice").connection),
            (OLD, "conn"),
        )

    def test_answered(self):
        """
        When the old location answers the check with a valid proof in
        time, the newcomer is refused at once and C{clone_suspected} names
        both locations; the registry does not move and the newcomer is not
        live.
        """
        decisions = self.admit(NEW, "thief")
        [(check, destination)] = self.sent()
        self.assertEqual((check.user, destination), ("alice", (OLD, 2020)))
        self.assertEqual(decisions, [])
        self.reactor.advance(2.9)
        self.reply(answer(check.nonce, key=KEY))
        self.assertEqual(decisions, [False])
        [(now, event, user, source, reason, locations)] = self.audit.records
        self.assertEqual(
            (now, event, user, source, locations),
            (
                NOW,
                "clone_suspected",
                "alice",
                NEW,
                (f"{OLD} (lab-east)", NEW),
            ),
        )
        self.assertIn("answered at its old location", reason)
        self.assert_not_moved()
        self.assertIsNone(self.live.get("alice"))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_answered_with_previous_key(self):
        """
        A proof under the previous key, which a client that missed the end
        of a rotation still holds, answers the check as well.
        """
        decisions = self.admit(NEW, "thief", previous=PREVIOUS)
        [(check, _)] = self.sent()
        self.reply(answer(check.nonce, key=PREVIOUS))
        self.assertEqual(decisions, [False])
        self.assertEqual(self.audit.events(), ["clone_suspected"])

    def test_silent(self):
        """
        When the old location stays silent for the check timeout (3 s, not
        less), the newcomer is admitted and live, the move is kept with
        both location names, the profile's current location is the new
        address at once, and C{location_changed} names both.
        """
        decisions = self.admit(NEW, "mover")
        self.reactor.advance(2.9)
        self.assertEqual(decisions, [])
        self.reactor.advance(0.1)
        self.assertEqual(decisions, [True])
        self.assertEqual(
            self.store.moves("alice"),
            [Move("alice", NOW, OLD, NEW, "lab-east", None)],
        )
        profile = self.store.get_profile("alice")
        self.assertEqual((profile.last_address, profile.last_seen), (NEW, NOW))
        [(_, event, _, source, reason, locations)] = self.audit.records
        self.assertEqual(
            (event, source, locations),
            ("location_changed", NEW, (f"{OLD} (lab-east)", NEW)),
        )
        self.assertEqual(reason, f"moved from {OLD} (lab-east) to {NEW}")
        self.assertEqual(self.live.get("alice").connection, "mover")

    def test_forged(self):
        """
        An answer from the old location with the check's nonce but a proof
        made without the key counts as silence: the newcomer is admitted
        and moved, and C{check_forged} is recorded first, naming the old
        location.
        """
        decisions = self.admit(NEW, "mover")
        [(check, _)] = self.sent()
        self.reply(answer(check.nonce, key=WRONG_KEY))
        self.assertEqual(decisions, [])
        self.reactor.advance(3)
        self.assertEqual(decisions, [True])
        self.assertEqual(self.audit.events(), ["check_forged", "location_changed"])
        _, _, user, source, _, locations = self.audit.records[0]
        self.assertEqual((user, source, locations), ("alice", OLD, (f"{OLD} (lab-east)",)))
        self.assertEqual(self.store.get_profile("alice").last_address, NEW)

    def test_replayed_answer(self):
        """
        A valid answer captured from one check and sent again to the next
        one does not answer it: the second check runs its full timeout and
        ends silent, so the newcomer is admitted as a move.
        """
        first = self.admit(NEW, "thief")
        [(check, _)] = self.sent()
        captured = answer(check.nonce, key=KEY)
        self.reply(captured)
        self.assertEqual(first, [False])
        second = self.admit(NEW, "mover")
        self.assertEqual(len(self.sent()), 2)
        self.reply(captured)
        self.reactor.advance(2.9)
        self.assertEqual(second, [])
        self.reactor.advance(0.1)
        self.assertEqual(second, [True])
        self.assertEqual(self.audit.events(), ["clone_suspected", "location_changed"])

    def test_answer_from_elsewhere(self):
        """
        A valid proof that comes from an address other than the old one
        (the newcomer answering for itself) does not count.
        """
        decisions = self.admit(NEW, "mover")
        [(check, _)] = self.sent()
        self.reply(answer(check.nonce, key=KEY), source=NEW)
        self.reactor.advance(3)
        self.assertEqual(decisions, [True])
        self.assertEqual(self.audit.events(), ["location_changed"])

    def test_live_session_elsewhere(self):
        """
        While another connection is live for the profile from another
        address, a newcomer is refused with C{clone_suspected} at once,
        without any check packet, and the live session stays.
        """
        self.live.attach("alice", OLD, NOW - 10, "legitimate")
        decisions = self.admit(NEW, "thief")
        self.assertEqual(decisions, [False])
        self.assertEqual(self.sent(), [])
        [(_, event, _, source, reason, locations)] = self.audit.records
        self.assertEqual(
            (event, source, locations),
            ("clone_suspected", NEW, (f"{OLD} (lab-east)", NEW)),
        )
        self.assertIn("a live session exists there", reason)
        self.assertEqual(self.live.get("alice").connection, "legitimate")
        self.assert_not_moved()

    def test_live_session_same_address(self):
        """
        A second connection from the live session's own address (a client
        reconnecting before the server noticed its old connection died)
        is admitted without a check and replaces the live one.
        """
        self.live.attach("alice", OLD, NOW - 10, "old connection")
        decisions = self.admit(OLD, "new connection")
        self.assertEqual(decisions, [True])
        self.assertEqual(self.sent(), [])
        self.assertEqual(self.live.get("alice").connection, "new connection")

    def test_unproven_newcomer_at_live_address(self):
        """
        A connection from the live session's own address that has proven
        nothing (anyone behind the same NAT or on the same host can name
        the current key id) is admitted, but the live session stays live,
        and is still live after the newcomer hung up.
        """
        self.live.attach("alice", OLD, NOW - 10, "live connection")
        self.assertEqual(self.admit(OLD, "named a key id", proven=False), [True])
        self.assertEqual(self.live.get("alice").connection, "live connection")
        self.tracking.detach("alice", "named a key id")
        self.assertEqual(self.live.get("alice").connection, "live connection")
        self.assertEqual((self.sent(), self.audit.records), ([], []))

    def test_proven_newcomer_at_live_address(self):
        """
        Once such a newcomer proves the key (its rotation committed), it
        replaces the live session, as a reconnection does at once (a
        client that reconnected before the server noticed its old
        connection died); the old connection's end then changes nothing.
        """
        self.live.attach("alice", OLD, NOW - 10, "old connection")
        self.admit(OLD, "new connection", proven=False)
        result_of(self, self.tracking.proven("new connection", NOW + 5))
        self.assertEqual(
            self.live.get("alice"),
            LiveSession("alice", OLD, NOW + 5, "new connection"),
        )
        self.tracking.detach("alice", "old connection")
        self.assertEqual(self.live.get("alice").connection, "new connection")
        self.assertEqual(self.audit.records, [])

    def test_claimed(self):
        """
        C{claimed} says whether a connection holds a claim L{proven} would
        settle: one admitted before proving the key, until it proves it or
        its commit fails; never one admitted proven, nor an unknown one.
        """
        self.assertFalse(self.tracking.claimed("peer"))
        self.admit(OLD, "newcomer", proven=False)
        self.admit(OLD, "failing", proven=False)
        self.admit(OLD, "reconnected", proven=True)
        self.assertEqual(
            [self.tracking.claimed(c) for c in ("newcomer", "failing", "reconnected")],
            [True, True, False],
        )
        result_of(self, self.tracking.proven("newcomer", NOW + 5))
        self.tracking.forget("failing")
        self.assertFalse(self.tracking.claimed("newcomer"))
        self.assertFalse(self.tracking.claimed("failing"))

    def test_held_elsewhere(self):
        """
        C{held_elsewhere} says whether a connection other than the one
        named is the profile's live one: not while none is, nor while a
        newcomer has yet to prove the key, nor for the live one itself.
        """
        self.assertFalse(self.tracking.held_elsewhere("alice", "peer"))
        self.admit(OLD, "newcomer", proven=False)
        self.assertFalse(self.tracking.held_elsewhere("alice", "peer"))
        result_of(self, self.tracking.proven("newcomer", NOW + 5))
        self.assertTrue(self.tracking.held_elsewhere("alice", "peer"))
        self.assertFalse(self.tracking.held_elsewhere("alice", "newcomer"))

    def test_unproven_newcomer_is_no_evidence(self):
        """
        A newcomer that has only named a key id is no evidence against the
        next one: while it has yet to prove the key, a newcomer from a
        third address is checked at the old location like any other,
        rather than refused as a clone of it.
        """
        first = self.admit(NEW, "first", proven=False)
        self.reactor.advance(3)
        second = self.admit("10.9.0.5", "second", proven=False)
        self.assertEqual(len(self.sent()), 2)
        self.reactor.advance(3)
        self.assertEqual((first, second), ([True], [True]))
        self.assertEqual(self.audit.records, [])
        self.assertNotIn("alice", self.live)

    def test_newcomers_during_one_check(self):
        """
        Two newcomers from different addresses that arrive while the old
        location is silent are not both moves: the first admitted is live,
        and the second is refused with C{clone_suspected} naming it, as if
        it had come after.
        """
        other = "10.9.0.5"
        first = self.admit(NEW, "first")
        second = self.admit(other, "second")
        self.assertEqual(len(self.sent()), 2)
        self.reactor.advance(3)
        self.assertEqual((first, second), ([True], [False]))
        self.assertEqual(self.audit.events(), ["location_changed", "clone_suspected"])
        _, _, _, source, reason, locations = self.audit.records[1]
        self.assertEqual((source, locations), (other, (NEW, other)))
        self.assertIn("a live session exists there", reason)
        self.assertEqual(
            self.store.moves("alice"), [Move("alice", NOW, OLD, NEW, "lab-east", None)]
        )
        self.assertEqual(self.live.get("alice").connection, "first")
        self.assertEqual(self.store.get_profile("alice").last_address, NEW)

    def test_same_newcomer_twice_during_one_check(self):
        """
        Two connections from one new address during the check are one
        move: the later replaces the earlier as live, and the move is
        recorded once.
        """
        first = self.admit(NEW, "first")
        second = self.admit(NEW, "second")
        self.reactor.advance(3)
        self.assertEqual((first, second), ([True], [True]))
        self.assertEqual(self.audit.events(), ["location_changed"])
        self.assertEqual(len(self.store.moves("alice")), 1)
        self.assertEqual(self.live.get("alice").connection, "second")

    def test_unproven_move_waits(self):
        """
        A newcomer that has not proven the machine's fingerprint is
        admitted once its check ends silent, but it is not live, the
        registry stays where it was and nothing is recorded until it
        proves it; then it is live and the move is recorded, at that time.
        """
        decisions = self.admit(NEW, "mover", proven=False)
        self.reactor.advance(3)
        self.assertEqual(decisions, [True])
        self.assertNotIn("alice", self.live)
        self.assert_not_moved()
        self.assertEqual(self.audit.records, [])
        self.commit("mover", NEW, NOW + 5)
        self.assertEqual(
            (self.live.get("alice").connection, self.live.get("alice").since),
            ("mover", NOW + 5),
        )
        self.assertEqual(
            self.store.moves("alice"),
            [Move("alice", NOW + 5, OLD, NEW, "lab-east", None)],
        )
        self.assertEqual(self.store.get_profile("alice").last_address, NEW)
        self.assertEqual(self.audit.events(), ["location_changed"])
        result_of(self, self.tracking.proven("mover", NOW + 6))
        self.assertEqual(len(self.store.moves("alice")), 1)

    def test_unproven_copy_cannot_take_the_registry(self):
        """
        A copy that never proves the fingerprint (it cannot rotate) and
        hangs up leaves the registry at the old address: the legitimate
        client coming back there is admitted at once, with no check sent
        to the copy, which would answer it.
        """
        self.admit(NEW, "copy", proven=False)
        self.reactor.advance(3)
        self.tracking.detach("alice", "copy")
        self.assertNotIn("alice", self.live)
        checks = len(self.sent())
        self.assertEqual(self.admit(OLD, "legitimate", proven=False), [True])
        self.assertEqual(len(self.sent()), checks)
        self.assert_not_moved()
        self.assertEqual(self.audit.records, [])
        result_of(self, self.tracking.proven("copy", NOW + 5))
        self.assert_not_moved()

    def test_unproven_move_kept_for_commit(self):
        """
        A connection that ends while the commit proving its move is on its
        way still has the move recorded when it commits; one whose commit
        failed has none.
        """
        self.admit(NEW, "mover", proven=False)
        self.reactor.advance(3)
        self.tracking.detach("alice", "mover", keep_move=True)
        self.commit("mover", NEW, NOW + 5)
        self.assertEqual(len(self.store.moves("alice")), 1)
        self.admit("10.9.0.5", "failing", proven=False)
        self.reactor.advance(3)
        self.tracking.forget("failing")
        result_of(self, self.tracking.proven("failing", NOW + 9))
        self.assertEqual(len(self.store.moves("alice")), 1)

    def test_joining_newcomer_takes_over_move(self):
        """
        Two connections from the same new address admitted during their
        checks are one move: the first to prove records it, and the
        other's later proof nothing more.
        """
        self.admit(NEW, "first", proven=False)
        self.admit(NEW, "second", proven=False)
        self.reactor.advance(3)
        self.commit("second", NEW, NOW + 5)
        self.commit("first", NEW, NOW + 6)
        self.assertEqual(
            self.store.moves("alice"),
            [Move("alice", NOW + 5, OLD, NEW, "lab-east", None)],
        )

    def moved_elsewhere_first(self, address):
        """
        Another server process over the same store moves alice from the
        old address to C{address}, as its own reconnection of her would.
        """
        self.assertTrue(
            self.store.record_move("alice", NOW + 1, OLD, address, None, None)
        )

    def test_move_decided_elsewhere_to_same_address(self):
        """
        A reconnection whose move another process decided first, to the
        same address while the check was out (the same device reaching
        two processes at once), is admitted and live without a second
        move, a second check or any alert: the winner raised
        C{location_changed}, and there is no clone.
        """
        decisions = self.admit(NEW, "loser")
        self.moved_elsewhere_first(NEW)
        self.reactor.advance(3)
        self.assertEqual(decisions, [True])
        self.assertEqual(len(self.sent()), 1)
        self.assertEqual(
            self.store.moves("alice"), [Move("alice", NOW + 1, OLD, NEW, None, None)]
        )
        self.assertEqual(self.audit.records, [])
        self.assertEqual(self.live.get("alice").connection, "loser")

    def test_move_decided_elsewhere_answered_there(self):
        """
        When another process moved the profile to a third address first,
        the reconnection is checked again, there: the winner answering
        refuses it as C{clone_suspected}, and nothing more moves.
        """
        decisions = self.admit(NEW, "loser")
        self.moved_elsewhere_first(THIRD)
        self.reactor.advance(3)
        self.assertEqual(decisions, [])
        check, destination = self.sent()[-1]
        self.assertEqual(destination, (THIRD, 2020))
        self.reply(answer(check.nonce, key=KEY), source=THIRD)
        self.assertEqual(decisions, [False])
        self.assertEqual(self.audit.events(), ["clone_suspected"])
        self.assertEqual(len(self.store.moves("alice")), 1)
        self.assertEqual(self.store.get_profile("alice").last_address, THIRD)
        self.assertNotIn("alice", self.live)

    def test_move_decided_elsewhere_silent_there(self):
        """
        A third address that stays silent in turn lets the reconnection
        move the profile on from there, one move after the winner's.
        """
        decisions = self.admit(NEW, "loser")
        self.moved_elsewhere_first(THIRD)
        self.reactor.advance(3)
        self.reactor.advance(3)
        self.assertEqual(decisions, [True])
        self.assertEqual(
            self.store.moves("alice"),
            [
                Move("alice", NOW + 1, OLD, THIRD, None, None),
                Move("alice", NOW, THIRD, NEW, None, None),
            ],
        )
        self.assertEqual(self.audit.events(), ["location_changed"])
        self.assertEqual(self.live.get("alice").connection, "loser")

    def test_move_of_removed_profile(self):
        """
        A reconnection whose profile was removed while its check was out
        records no move and is not admitted.
        """
        decisions = self.admit(NEW, "mover")
        self.store.remove_profile("alice")
        self.reactor.advance(3)
        self.assertEqual((decisions, self.store.moves("alice")), ([False], []))
        self.assertNotIn("alice", self.live)

    def test_check_cannot_be_sent(self):
        """
        When the check cannot even be sent, admission fails with the
        error: nothing is recorded, moved or made live.
        """

        class Broken:
            def check(self, user, address, key, previous=None):
                raise CheckError("cannot check")

        tracking = Tracking(
            LocalCalls(self.store), self.audit, self.live, Broken(), LOCATIONS
        )
        decisions = []
        Deferred.fromCoroutine(
            tracking.admit(
                self.store.get_profile("alice"), KEY, NEW, "mover", NOW, proven=True
            )
        ).addBoth(decisions.append)
        [failure] = decisions
        failure.trap(CheckError)
        self.assertEqual(self.audit.records, [])
        self.assert_not_moved()
        self.assertIsNone(self.live.get("alice"))

    def test_detach(self):
        """
        C{detach} forgets the live connection it names, and only that one.
        """
        self.admit(OLD, "conn")
        self.tracking.detach("alice", "another")
        self.assertIn("alice", self.live)
        self.tracking.detach("alice", "conn")
        self.assertNotIn("alice", self.live)

    def test_no_key_in_records(self):
        """
        Nothing recorded about a check carries the key, a proof or the
        nonce.
        """
        self.admit(NEW, "thief")
        [(check, _)] = self.sent()
        proof = keyschedule.check_proof(KEY, check.nonce, "alice")
        self.reply(answer(check.nonce, key=KEY))
        text = repr(self.audit.records)
        for secret in (KEY, proof, check.nonce):
            self.assertNotIn(secret.hex(), text)
            self.assertNotIn(repr(secret), text)

    def test_evidence_of_clones(self):
        """
        A C{clone_suspected} is unproven when the newcomer proved nothing
        (it named a key id: an answer at the old location proves only that
        the client is there), and raised at once when it proved the key
        and the fingerprint (a reconnection); the same for a live session
        elsewhere.
        """
        for proven in (False, True):
            decisions = self.admit(NEW, "thief", proven=proven)
            self.reply(answer(self.sent_check(decisions), key=KEY))
        self.live.attach("alice", OLD, NOW, "legitimate")
        self.admit(NEW, "thief", proven=False)
        self.admit(NEW, "thief", proven=True)
        self.assertEqual(self.audit.events(), ["clone_suspected"] * 4)
        self.assertEqual(self.audit.unproven, ["clone_suspected"] * 2)
        self.assertEqual(
            [record[4].split(":")[0] for record in self.audit.records],
            ["the client answered at its old location"] * 2
            + ["a live session exists there"] * 2,
        )

    def test_evidence_of_forged_answers(self):
        """
        A forged answer proves nothing (C{check_forged} is unproven); the
        move recorded after a proof is raised at once.
        """
        decisions = self.admit(NEW, "mover")
        self.reply(answer(self.sent_check(decisions), key=WRONG_KEY))
        self.reactor.advance(3)
        self.assertEqual(self.audit.events(), ["check_forged", "location_changed"])
        self.assertEqual(self.audit.unproven, ["check_forged"])

    def test_named_key_id_from_elsewhere(self):
        """
        A peer that names alice's key id from another address twenty times
        while her client answers at its old location is twenty
        C{clone_suspected} records, but two alerts at the sink: the first
        at once, one for the other nineteen when the interval ends.  A
        newcomer that proved the key is raised at once every time.
        """
        sink = RecordingSink()
        audit = AuditLog(self.store, [sink], clock=self.reactor)
        self.tracking = Tracking(
            LocalCalls(self.store), audit, self.live, self.checks, LOCATIONS
        )
        for _ in range(20):
            decisions = self.admit(NEW, "thief", proven=False)
            self.reply(answer(self.sent_check(decisions), key=KEY))
            self.assertEqual(decisions, [False])
        self.assertEqual(
            [e.event for e in self.store.audit_events()], ["clone_suspected"] * 20
        )
        self.assertEqual(sink.counted(), [("clone_suspected", 1)])
        self.reactor.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            sink.counted(), [("clone_suspected", 1), ("clone_suspected", 19)]
        )
        for _ in range(3):
            decisions = self.admit(NEW, "reconnected copy", proven=True)
            self.reply(answer(self.sent_check(decisions), key=KEY))
        self.assertEqual(sink.counted()[2:], [("clone_suspected", 1)] * 3)

    def sent_check(self, decisions):
        """
        The nonce of the check packet sent last, which C{decisions} (an
        admission still waiting) waits on.
        """
        self.assertEqual(decisions, [])
        check, _ = self.sent()[-1]
        return check.nonce


class TrackedRotationTests(RotationListenerMixin, SynchronousTestCase):
    """
    Rotation connections through the server's protocol with tracking on:
    the check runs before the rotation starts, on its own fake UDP
    reactor and clock.
    """

    def setUp(self):
        super().setUp()
        self.udp = MemoryUDPReactor()
        self.audit = RecordingAudit()
        self.live = LiveSessions()
        self.factory.rotation = replace(
            self.factory.rotation,
            tracking=Tracking(
                LocalCalls(self.store),
                self.audit,
                self.live,
                CheckService(self.udp),
                Locations(),
            ),
        )

    def connect_from(self, address):
        return connected(self.factory, address)

    def test_same_address_rotates(self):
        """
        From the registered address the rotation starts at once and the
        connection becomes the profile's live one; when it closes it is
        no longer live.
        """
        protocol, transport = self.rotated()
        self.assertEqual(self.live.get("alice").connection, protocol)
        self.assertEqual(self.udp.udp, [])
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertNotIn("alice", self.live)

    def test_move_then_rotate(self):
        """
        From a new address nothing is answered until the check ends; once
        it ends silent the rotation goes on (C{SUTO_ROTATE_OK_}), the
        newcomer not yet live; once its acknowledgement proved the key and
        the fingerprint and the rotation committed, it is live, the
        profile's location is the new address and the move is recorded.
        """
        protocol, transport = self.connect_from(ELSEWHERE)
        reply = self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.assertEqual(reply, VERSION)
        self.udp.advance(3)
        ok = transport.value()[len(VERSION) :]
        [message] = self.decode(ok)
        self.assertIsInstance(message, wire.RotateOk)
        self.assertNotIn("alice", self.live)
        self.assertEqual(self.store.get_profile("alice").last_address, SOURCE)
        self.assertEqual(self.audit.events(), [])
        self.exchange(protocol, transport, self.ok_line(ok))
        self.clock.advance(0)
        [done] = self.decode(transport.value())
        self.assertIsInstance(done, wire.RotateDone)
        self.assertEqual(self.live.get("alice").address, ELSEWHERE)
        self.assertEqual(self.store.get_profile("alice").last_address, ELSEWHERE)
        self.assertEqual(self.audit.events(), ["location_changed"])
        [move] = self.store.moves("alice")
        self.assertEqual((move.old_address, move.new_address), (SOURCE, ELSEWHERE))

    def test_lost_while_committing(self):
        """
        A mover whose connection ends after its acknowledgement, while the
        commit is on its way, still has its move recorded once the commit
        is durable.
        """
        protocol, transport = self.connect_from(ELSEWHERE)
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.udp.advance(3)
        ok = transport.value()[len(VERSION) :]
        self.exchange(protocol, transport, self.ok_line(ok))
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.store.moves("alice"), [])
        self.clock.advance(0)
        [move] = self.store.moves("alice")
        self.assertEqual(move.new_address, ELSEWHERE)
        self.assertEqual(self.audit.events(), ["location_changed"])
        self.assertNotIn("alice", self.live)

    def test_copy_without_fingerprint_does_not_move(self):
        """
        A copy of the state on another machine, at a new address while the
        legitimate client is away, gets through the silent check but
        cannot open C{SUTO_ROTATE_OK_}; when it gives up, the registry is
        still at the old address, so the legitimate client coming back
        there rotates at once, with no check sent to the copy (which holds
        the key and would answer it).
        """
        self.device = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        protocol, transport = self.connect_from(ELSEWHERE)
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.udp.advance(3)
        [message] = self.decode(transport.value()[len(VERSION) :])
        self.assertIsInstance(message, wire.RotateOk)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(self.store.get_profile("alice").last_address, SOURCE)
        self.assertEqual(self.store.moves("alice"), [])
        self.assertNotIn("location_changed", self.audit.events())
        [(_, listener)] = self.udp.udp
        checks = len(listener.transport.written)
        self.device = Device("alice", FIRST_KEY)
        self.rotated()
        self.assertEqual(len(listener.transport.written), checks)
        self.assertEqual(self.live.get("alice").address, SOURCE)

    def test_clone_refused(self):
        """
        When the old address answers the check, the newcomer gets
        C{SUTO_ERROR_UNKNOWN_KEY} and is closed; the key stays.
        """
        protocol, transport = self.connect_from(ELSEWHERE)
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        [(_, listener)] = self.udp.udp
        [(datagram, _)] = listener.transport.written
        nonce = wire.parse_datagram(datagram).nonce
        listener.datagramReceived(answer(nonce, key=FIRST_KEY), (SOURCE, 2020))
        self.assertEqual(
            transport.value(), VERSION + b"SUTO_ERROR_UNKNOWN_KEY\r\n"
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.key_id(), keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.audit.events(), ["clone_suspected"])

    def test_lost_during_check(self):
        """
        A newcomer that hangs up while its check runs is not left behind as
        the profile's live connection when the check ends silent, so the
        legitimate client is not later refused because of it.
        """
        protocol, transport = self.connect_from(ELSEWHERE)
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        protocol.connectionLost(Failure(error.ConnectionDone()))
        self.udp.advance(3)
        self.assertNotIn("alice", self.live)
