# -*- test-case-name: tests.bench.test_session_cost -*-
"""
The server's whole side of a rotation, in process, for
L{bench.session_cost}: the server's own code for one rotation, as the
daemon assembles it, without its sockets and TLS.

C{ServerProtocol} runs over a C{StringTransport} for each of the
profiles seeded in a SQLite store as the fleet is (L{bench.fleet.seed}),
with the rotation, reconnection and tracking rules that
L{suto_server.keyrules.assemble} puts together for the daemon, with its
default settings, over the store's calls, and the group commit on the
same thread (the daemon runs its statements on the database thread).
The agents' side is computed between the server's calls, with the
agent's functions (L{suto_client.rotation_keys}), and not counted: the
figure is the thread's CPU time inside the server's calls, per rotation.
What it leaves out is what the fleet adds: the sockets, TLS and the
reactor's dispatch of each read.

A connection announces version 2 or 3 (docs/PROTOCOL.md §9.2).  On a
version-2 connection every rotation is the two-message form: the
server's calls are the two reads (C{SUTO_C_ROTATE_}, then
C{SUTO_C_ROTATE_ACK_}) and the group commit's turn.  On a version-3
connection every rotation after the connection's first is primed: one
read (C{SUTO_C_ROTATE_PRIMED_}, checked, derived and acknowledged at
once) and the group commit's turn, which answers
C{SUTO_ROTATE_DONE_NEXT_} with the next share.  The connection's first
rotation is not counted, so a version-3 figure is the steady state.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.cred.portal import Portal
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.testing import StringTransport

from bench import fleet
from suto_client import rotation_keys
from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.cred.hashpool import HashPool
from suto_server.cred.realm import SutoRealm
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.keyrules import assemble
from suto_server.locations import Locations
from suto_server.masterkey import MasterKey
from suto_server.phases.classic import ClassicRules
from suto_server.phases.connection import ServerFactory
from suto_server.rules.registry import LiveSessions
from suto_server.rules.rendezvous import Rendezvous
from suto_server.settings import Alerting, EnrollmentSettings, Timing
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.open import open_store

FRAMED = wire.Framing.FRAMED
JUNK = bytes(range(32))


class _Agent:
    """
    One seeded profile's agent, computing its side of each rotation with
    the agent's own functions (L{suto_client.rotation_keys}), and the
    server's connection it talks to.  After a C{SUTO_ROTATE_DONE_NEXT_}
    it holds the server's share, and its next rotation is primed.
    """

    def __init__(
        self, member: fleet.Member, protocol, transport, version: int
    ) -> None:
        self.profile = member.profile
        self.fingerprint = member.fingerprint_hash
        self.protocol = protocol
        self.transport = transport
        # The answer every commit gets on a connection of this version.
        self._done = (
            wire.RotateDoneNext if version >= wire.PRIMED_SINCE else wire.RotateDone
        )
        self.share = None
        self._pending = None
        self._next = None
        self._sealing = None

    def rotate(self) -> bytes:
        """
        The rotation's first message: C{SUTO_C_ROTATE_PRIMED_} from the
        share held, else C{SUTO_C_ROTATE_}.
        """
        pending = rotation_keys.Pending(JUNK, X25519PrivateKey.generate())
        self.transport.clear()
        if self.share is None:
            self._pending = pending
            return wire.encode(pending.rotate(self.profile), FRAMED)
        self._next, self._sealing, message = rotation_keys.primed_rotation(
            self.profile, pending, self.fingerprint, self.share
        )
        self.share = None
        return wire.encode(message, FRAMED)

    def acknowledge(self) -> bytes:
        [*_, ok] = _decoded(self.transport.value())
        self._next = rotation_keys.next_key(
            self.profile, self._pending, self.fingerprint, ok.public
        )
        self._sealing = keyschedule.SealingKey(self._next, self.profile.user)
        _opened(rotation_keys.opens_ok(self._sealing, ok.sealed), "ok")
        self.transport.clear()
        return wire.encode(rotation_keys.acknowledgement(self._sealing), FRAMED)

    def commit(self) -> None:
        [done] = _decoded(self.transport.value())
        if not isinstance(done, self._done):
            raise RuntimeError(f"the server answered {type(done).__name__}")
        if isinstance(done, wire.RotateDoneNext):
            self.share = rotation_keys.next_share(self._sealing, done.sealed)
            _opened(self.share is not None, "done")
        else:
            _opened(rotation_keys.confirms(self._sealing, done.sealed), "done")
        self.profile = replace(
            self.profile,
            key=self._next,
            key_id=keyschedule.key_id(self._next),
            generation=self.profile.generation + 1,
        )
        self._next = self._sealing = None


def _opened(opened: bool, what: str) -> None:
    """
    @raise keyschedule.SealError: the server's C{what} did not open under
        the key the agent derived.
    """
    if not opened:
        raise keyschedule.SealError(f"the server's {what} did not open")


def _decoded(data: bytes) -> list:
    decoder = wire.Decoder(FRAMED)
    decoder.receive_data(data)
    messages = []
    while (message := decoder.next_event()) is not wire.NEED_DATA:
        messages.append(message)
    return messages


def _rotation_server(data: str, clock) -> ServerFactory:
    """
    The rotation listener's factory as the daemon builds it, over the
    store and master key of the data folder C{data}: the rules
    L{suto_server.keyrules.assemble} puts together for the daemon, with
    its default settings.
    """
    store = open_store(os.path.join(data, DATABASE_FILE))
    master_key = MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
    calls = LocalCalls(store)
    timing = Timing()
    keys = assemble(
        store=store,
        calls=calls,
        audit=AuditLog(store),
        live=LiveSessions(),
        # The seeded profiles connect from where they enrolled, so
        # tracking admits them without a check packet.
        checks=None,
        # Built, never started: no enrollment is timed.
        hash_pool=HashPool(clock),
        committer=GroupCommitter(clock, store.commit_rotations),
        locations=Locations(),
        settings=EnrollmentSettings(master_key),
        timing=timing,
        alerting=Alerting(),
    )
    return ServerFactory(
        framing=FRAMED,
        clock=clock,
        classic=ClassicRules(
            Rendezvous(clock),
            Portal(SutoRealm(), []),
            lambda user: succeed(None),
            lambda: "$6$ABCDEFGHIJKLMNOP",
        ),
        exchange_timeout=timing.exchange_timeout,
        **keys.phases(timing),
    )


def server_rotation_microseconds(profiles: int, rounds: int, version: int) -> float:
    """
    @return: the CPU time of the server's calls in one rotation, in
        microseconds: each of C{profiles} agents, on a connection that
        announced protocol C{version}, rotates C{rounds} times after a
        first rotation that is not counted, all of them in each round,
        as a fleet at interval 0 does, so that one group commit takes
        the round's rotations.
    """
    with tempfile.TemporaryDirectory() as data:
        members = fleet.seed(data, profiles, 0, "")
        clock = task.Clock()
        clock.advance(time.time())
        factory = _rotation_server(data, clock)
        agents = []
        for index, member in enumerate(members):
            address = IPv4Address("TCP", fleet.source_address(index), 40000)
            protocol = factory.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            protocol.makeConnection(transport)
            agents.append(_Agent(member, protocol, transport, version))
        spent = 0.0

        def server(call, *args) -> None:
            nonlocal spent
            started = time.thread_time()
            call(*args)
            spent += time.thread_time() - started

        for round_ in range(rounds + 1):
            if round_ == 1:
                spent = 0.0
            primed = [agent.share is not None for agent in agents]
            for agent in agents:
                line = agent.rotate()
                if round_ == 0:
                    line = wire.encode(wire.Version(version), FRAMED) + line
                server(agent.protocol.dataReceived, line)
            for agent, was_primed in zip(agents, primed):
                if not was_primed:
                    server(agent.protocol.dataReceived, agent.acknowledge())
            server(clock.advance, 0)
            for agent in agents:
                agent.commit()
        return spent / (profiles * rounds) * 1e6
