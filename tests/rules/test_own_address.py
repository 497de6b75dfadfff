"""
Failures that only name a profile's key id, from the profile's own
address (docs/PROTOCOL.md §9.3, §10.3): the connection gate observing the
real reconnection and rotation rules forgives them within
L{OwnAddressAllowance}, so a peer behind the endpoint's NAT cannot get the
shared address refused, and penalises them past it, so it cannot fail for
free without end either; from any other address they are penalised as
before.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.rules.expected import ExpectedSources, KnownLocations
from suto_server.rules.gate import ConnectionGate
from suto_server.rules.limits import Limits, OwnAddressAllowance
from suto_server.rules.reconnection import Reconnected, Reconnection
from suto_server.rules.rendezvous import Rendezvous
from suto_server.rules.rotation import Rotation
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.records import AuditEvent
from tests.support.reconnection import ReconnectionMixin, reconnect_message
from tests.support.rotation import ELSEWHERE, FIRST_KEY, SOURCE
from tests.support.stores import MemoryStoreMixin

#: How many times the neighbour names the key id.
TIMES = 20


class OwnAddressAllowanceTests(SynchronousTestCase):
    """
    L{OwnAddressAllowance}, the pure rule.
    """

    def test_allowance_per_window(self):
        """
        Each profile and source has C{allowance} forgiven failures per
        window; the next is not forgiven, and a new window starts afresh.
        """
        allowance = OwnAddressAllowance(allowance=2, window=60)
        self.assertEqual(
            [allowance.forgive("alice", "192.0.2.1", 0) for _ in range(3)],
            [True, True, False],
        )
        self.assertTrue(allowance.forgive("bob", "192.0.2.1", 0))
        self.assertTrue(allowance.forgive("alice", "192.0.2.2", 0))
        self.assertFalse(allowance.forgive("alice", "192.0.2.1", 59))
        self.assertTrue(allowance.forgive("alice", "192.0.2.1", 60))

    def test_bounded(self):
        """
        When the table is full, a new pair's failure is not forgiven until
        an entry has expired.
        """
        allowance = OwnAddressAllowance(allowance=2, window=60, max_entries=2)
        self.assertTrue(allowance.forgive("alice", "192.0.2.1", 0))
        self.assertTrue(allowance.forgive("bob", "192.0.2.1", 0))
        self.assertFalse(allowance.forgive("carol", "192.0.2.1", 1))
        self.assertTrue(allowance.forgive("carol", "192.0.2.1", 60))


class RegisteredAtTests(SynchronousTestCase):
    """
    L{ExpectedSources.registered_at}: the source of a profile's location.
    """

    def test_source(self):
        """
        The same IPv4 address or the same IPv6 /64 is the profile's own
        source; another address, another profile's location, or a peer
        that is no IP address is not.
        """
        expected = ExpectedSources(
            Rendezvous(None),
            KnownLocations([("alice", "192.0.2.7"), ("bob", "2001:db8::1")]),
        )
        self.assertTrue(expected.registered_at("alice", "192.0.2.7"))
        self.assertTrue(expected.registered_at("alice", "::ffff:192.0.2.7"))
        self.assertFalse(expected.registered_at("alice", "192.0.2.8"))
        self.assertTrue(expected.registered_at("bob", "2001:db8::2"))
        self.assertFalse(expected.registered_at("bob", "2001:db8:0:1::1"))
        self.assertFalse(expected.registered_at("carol", "192.0.2.7"))
        self.assertFalse(expected.registered_at("alice", None))


class OwnAddressGateTests(ReconnectionMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    The gate observing the audit log of the real reconnection and rotation
    rules, with the default limits, penalties and allowance; C{alice} is
    registered at L{SOURCE}, and a neighbour behind the same address names
    her key ids.
    """

    def setUp(self):
        super().setUp()
        self.gate = ConnectionGate(self.clock, Limits())
        self.gate.expect(ExpectedSources.of(Rendezvous(self.clock), self.store))
        audit = AuditLog(self.store, observers=[self.gate.audited])
        committer = GroupCommitter(self.clock, self.store.commit_rotations)
        self.rotation = Rotation(self.calls, self.master_key, committer, audit)
        self.reconnection = Reconnection(
            self.calls, self.rotation, audit
        )

    def junk_proof(self, source=SOURCE):
        """
        A reconnection naming the current key id with a junk proof.
        """
        message = reconnect_message(self.device, self.step())
        junk = wire.Reconnect(
            message.key_id, bytes(len(message.proof)), message.sealed, message.user
        )
        return self.refused(junk, source)

    def superseded(self, source=SOURCE):
        """
        A rotation naming a retired key id.
        """
        return self.refusal(
            self.rotation.check_key,
            "alice",
            keyschedule.key_id(FIRST_KEY),
            source,
            self.now(),
        )

    def retire_first_key(self):
        self.rotate()
        self.rotate()
        self.assertTrue(self.store.is_retired("alice", keyschedule.key_id(FIRST_KEY)))

    def admitted(self, source=SOURCE):
        return self.gate.admit(source) is not None

    def test_junk_proofs_from_own_address(self):
        """
        Twenty reconnections with the current key id and a junk proof from
        the profile's own address never get it refused, and the real
        agent then reconnects.
        """
        self.go_offline()
        for _ in range(TIMES):
            self.assertEqual(self.junk_proof(), "reconnect_failed")
            self.assertTrue(self.admitted())
        self.assertIsNone(self.gate.penalty_left(SOURCE))
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.assertIsInstance(accepted, Reconnected)
        self.assertIsNone(self.blacklisted())

    def test_plain_rotations_while_offline(self):
        """
        Twenty plain rotations of an offline profile from its own address
        never get it refused.
        """
        self.go_offline()
        for _ in range(TIMES):
            self.assertEqual(self.rotation_refused(self.device), "reconnect_failed")
        self.assertIsNone(self.gate.penalty_left(SOURCE))

    def test_superseded_key_from_own_address(self):
        """
        Twenty rotations naming a retired key id from the profile's own
        address never get it refused, and the real agent then rotates;
        each is still recorded as C{clone_suspected}.
        """
        self.retire_first_key()
        for _ in range(TIMES):
            self.assertEqual(self.superseded(), "unknown_key")
        self.assertIsNone(self.gate.penalty_left(SOURCE))
        self.assertEqual(len(self.events("clone_suspected")), TIMES)
        self.rotate()

    def test_flood_past_allowance(self):
        """
        Past the allowance the failures from the own address are penalised
        as any other: the fifth one after it (3 s each, against a 15 s
        minimum) gets the address refused.
        """
        self.go_offline()
        for _ in range(TIMES + 4):
            self.junk_proof()
        self.assertTrue(self.admitted())
        self.junk_proof()
        self.assertFalse(self.admitted())

    def test_allowance_renews(self):
        """
        The allowance is per window: a neighbour that keeps within it,
        minute after minute, never gets the address refused.
        """
        self.go_offline()
        for _ in range(10):
            for _ in range(TIMES):
                self.junk_proof()
            self.clock.advance(60)
        self.assertIsNone(self.gate.penalty_left(SOURCE))

    def test_rotation_abandoned_past_allowance(self):
        """
        Failed rotations from the own address (C{rotation_abandoned}) are
        covered by the same allowance, and penalised past it.
        """
        for _ in range(TIMES + 4):
            self.acknowledge_noise()
        self.assertTrue(self.admitted())
        self.acknowledge_noise()
        self.assertFalse(self.admitted())

    def test_elsewhere_penalised(self):
        """
        From another address the same failures are penalised as before:
        the fifth gets it refused, whichever failure it was.
        """
        self.go_offline()
        for _ in range(4):
            self.junk_proof(ELSEWHERE)
        self.assertTrue(self.admitted(ELSEWHERE))
        self.assertEqual(
            self.rotation_refused(self.device, ELSEWHERE), "reconnect_failed"
        )
        self.assertFalse(self.admitted(ELSEWHERE))
        self.assertTrue(self.admitted())

    def test_superseded_elsewhere_penalised(self):
        """
        A retired key id named from another address five times gets it
        refused.
        """
        self.retire_first_key()
        for _ in range(5):
            self.superseded(ELSEWHERE)
        self.assertFalse(self.admitted(ELSEWHERE))


class ProvenElsewhereTests(SynchronousTestCase):
    """
    The gate alone, with an event of a profile it knows no location of.
    """

    def test_unknown_profile_penalised(self):
        """
        A C{reconnect_failed} of a profile with no known location is
        penalised, as the gate cannot tell it is the profile's own.
        """
        clock = task.Clock()
        gate = ConnectionGate(clock, Limits())
        gate.expect(ExpectedSources(Rendezvous(clock), KnownLocations()))
        for _ in range(5):
            gate.audited(
                AuditEvent(0.0, "reconnect_failed", "alice", SOURCE, "why", ())
            )
        self.assertIsNone(gate.admit(SOURCE))

