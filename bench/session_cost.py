"""
What pieces of the server's rotation path cost on their own, per rotation:
the rotation machine (L{RotationConversation}), the codec, and the
connection's timeout changes among many connections; the memory each
machine's session holds; and the server's whole side of a rotation
without its sockets and TLS.

A rotation is the four calls the protocol makes on an idle connection:
C{receive(Rotate)}, C{started}, C{receive(RotateAck)}, C{committed}.
The machine is timed alone: no wire, no key schedule, no store.  The
codec figure decodes a rotation's two client lines (each on a fresh
decoder's buffer, as they arrive) and encodes its two answers.  The
timeout figure is the four timeout changes of one rotation (a reset for
each message received, the exchange timeout when it begins, the idle
period when it commits) on one of C{--connections} connections whose
timeouts share a real reactor's timers, with the reactor's own pass over
its timers after each turn, as it runs between events.  Memory is what
C{tracemalloc} sees allocated by C{--sessions} sessions after each has
made one rotation (as an idle connection's session has), divided by
their number.

The server figure runs the server's own code for one rotation, as the
daemon assembles it: C{ServerProtocol} over a C{StringTransport} for each
of C{--profiles} profiles seeded in a SQLite store as the fleet is
(L{bench.fleet.seed}), the rotation, reconnection and tracking rules
that L{suto_server.keyrules.assemble} puts together for the daemon, with
its default settings, over the store's calls, and the group commit on the
same thread (the daemon runs its statements on the database thread).
The agents' side is computed between the server's calls, with the
agent's functions, and not counted: the figure is the thread's CPU time inside the server's calls
(the two reads and the group commit's turn), per rotation.  What it
leaves out is what the fleet adds: the sockets, TLS and the reactor's
dispatch of each read.

Run from the repository root, with the project's virtualenv, under the
bench lock:

    flock /tmp/suto-bench.lock python bench/session_cost.py [--rotations N]
        [--repeat N] [--sessions N] [--connections N] [--profiles N]
        [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import timeit
import tracemalloc
from dataclasses import replace

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives.asymmetric.x25519 import (  # noqa: E402
    X25519PrivateKey,
)
from twisted.cred.portal import Portal  # noqa: E402
from twisted.internet import task  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.defer import succeed  # noqa: E402
from twisted.internet.epollreactor import EPollReactor  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from bench import fleet  # noqa: E402
from suto_client import rotation_keys  # noqa: E402
from suto_server.audit.log import AuditLog  # noqa: E402
from suto_server.core import keyschedule, wire  # noqa: E402
from suto_server.cred.hashpool import HashPool  # noqa: E402
from suto_server.cred.realm import SutoRealm  # noqa: E402
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE  # noqa: E402
from suto_server.keyrules import assemble  # noqa: E402
from suto_server.locations import Locations  # noqa: E402
from suto_server.machines.rotation import RotationConversation  # noqa: E402
from suto_server.masterkey import MasterKey  # noqa: E402
from suto_server.phases.classic import ClassicRules  # noqa: E402
from suto_server.phases.connection import ServerFactory  # noqa: E402
from suto_server.phases.timeout import (  # noqa: E402
    DeadlineWheel,
    WheelTimeoutMixin,
)
from suto_server.rules.registry import LiveSessions  # noqa: E402
from suto_server.rules.rendezvous import Rendezvous  # noqa: E402
from suto_server.settings import Alerting, EnrollmentSettings, Timing  # noqa: E402
from suto_server.store.calls import LocalCalls  # noqa: E402
from suto_server.store.groupcommit import GroupCommitter  # noqa: E402
from suto_server.store.open import open_store  # noqa: E402

USER = "alice"
ROTATE = wire.Rotate("0" * 32, bytes(32), bytes(32), USER)
ACK = wire.RotateAck(bytes(16))
SERVER_PUBLIC = bytes(32)
SEALED = bytes(16)


def rotate(session: RotationConversation) -> None:
    """
    Take C{session} through one rotation, from idle back to idle.
    """
    session.receive(ROTATE)
    session.started(SERVER_PUBLIC, SEALED)
    session.receive(ACK)
    session.committed(SEALED)


def rotation_microseconds(rotations: int, repeat: int) -> float:
    """
    @return: the best, over C{repeat} runs of C{rotations} rotations on
        one session, of the time of one rotation, in microseconds.
    """
    session = RotationConversation(USER)
    rotate(session)
    runs = timeit.repeat(
        lambda: rotate(session), number=rotations, repeat=repeat
    )
    return min(runs) / rotations * 1e6


FRAMED = wire.Framing.FRAMED
CLIENT_LINES = (
    wire.encode(wire.Rotate("0" * 32, bytes(32), bytes(32), USER), FRAMED),
    wire.encode(wire.RotateAck(bytes(48)), FRAMED),
)
ANSWERS = (wire.RotateOk(bytes(32), bytes(48)), wire.RotateDone(bytes(48)))


def codec_rotation() -> None:
    """
    What the codec does in one rotation: decode the two client lines,
    encode the two answers.
    """
    for line in CLIENT_LINES:
        decoder = wire.Decoder(FRAMED)
        decoder.receive_data(line)
        decoder.next_event()
    for answer in ANSWERS:
        wire.encode(answer, FRAMED)


def codec_microseconds(rotations: int, repeat: int) -> float:
    """
    @return: the best, over C{repeat} runs, of the codec's time for one
        rotation, in microseconds.
    """
    runs = timeit.repeat(codec_rotation, number=rotations, repeat=repeat)
    return min(runs) / rotations * 1e6


class _Timed(WheelTimeoutMixin):
    """
    A connection's timeout, as L{ServerProtocol} keeps it.
    """

    def __init__(self, clock, deadlines) -> None:
        self.clock = clock
        self.deadlines = deadlines

    def timeoutConnection(self) -> None:
        raise AssertionError("no timeout falls while timed")


#: The server's default exchange timeout and idle period (s).
EXCHANGE_TIMEOUT = Timing().exchange_timeout
IDLE_TIMEOUT = Timing().idle_timeout


def timeout_microseconds(connections: int, rotations: int, repeat: int) -> float:
    """
    @return: the best, over C{repeat} runs, of one rotation's timeout
        changes on one of C{connections} connections sharing a real
        reactor's timers (the reactor is built, never run: its pass over
        due timers is called after each turn), in microseconds.
    """
    reactor = EPollReactor()
    deadlines = DeadlineWheel(reactor)
    fleet = [_Timed(reactor, deadlines) for _ in range(connections)]
    for index, connection in enumerate(fleet):
        # Idle connections, their deadlines spread over the idle period.
        connection.setTimeout(IDLE_TIMEOUT - index % 60)
    reactor.runUntilCurrent()
    turn = reactor.runUntilCurrent
    position = 0

    def rotation() -> None:
        nonlocal position
        connection = fleet[position]
        position = (position + 1) % connections
        connection.resetTimeout()
        connection.setTimeout(EXCHANGE_TIMEOUT)
        turn()
        connection.resetTimeout()
        turn()
        connection.setTimeout(IDLE_TIMEOUT)
        turn()

    runs = timeit.repeat(rotation, number=rotations, repeat=repeat)
    return min(runs) / rotations * 1e6


class _Agent:
    """
    One seeded profile's agent, computing its side of each rotation with
    the agent's own functions (L{suto_client.rotation_keys}), and the
    server's connection it talks to.
    """

    def __init__(self, member: fleet.Member, protocol, transport) -> None:
        self.profile = member.profile
        self.fingerprint = member.fingerprint_hash
        self.protocol = protocol
        self.transport = transport
        self._pending = None
        self._next = None
        self._sealing = None

    def rotate(self) -> bytes:
        self._pending = rotation_keys.Pending(JUNK, X25519PrivateKey.generate())
        self.transport.clear()
        return wire.encode(self._pending.rotate(self.profile), FRAMED)

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
        _opened(rotation_keys.confirms(self._sealing, done.sealed), "done")
        self.profile = replace(
            self.profile,
            key=self._next,
            key_id=keyschedule.key_id(self._next),
            generation=self.profile.generation + 1,
        )
        self._next = self._sealing = None


JUNK = bytes(range(32))


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


def server_rotation_microseconds(profiles: int, rounds: int) -> float:
    """
    @return: the CPU time of the server's calls in one rotation, in
        microseconds: each of C{profiles} agents rotates C{rounds} times
        after a first rotation that is not counted, all of them in each
        round, as a fleet at interval 0 does, so that one group commit
        takes the round's rotations.
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
            agents.append(_Agent(member, protocol, transport))
        spent = 0.0

        def server(call, *args) -> None:
            nonlocal spent
            started = time.thread_time()
            call(*args)
            spent += time.thread_time() - started

        for round_ in range(rounds + 1):
            if round_ == 1:
                spent = 0.0
            for agent in agents:
                line = agent.rotate()
                if round_ == 0:
                    line = wire.encode(wire.Version(2), FRAMED) + line
                server(agent.protocol.dataReceived, line)
            for agent in agents:
                server(agent.protocol.dataReceived, agent.acknowledge())
            server(clock.advance, 0)
            for agent in agents:
                agent.commit()
        return spent / (profiles * rounds) * 1e6


def bytes_per_session(sessions: int) -> float:
    """
    @return: the bytes C{tracemalloc} finds held by each of C{sessions}
        sessions that have made one rotation.
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = []
    for _ in range(sessions):
        session = RotationConversation(USER)
        rotate(session)
        held.append(session)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # The list that holds them is not theirs.
    return (after - before - sys.getsizeof(held)) / sessions


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args(argv)
    figures = {
        "rotation_us": round(
            rotation_microseconds(options.rotations, options.repeat), 2
        ),
        "codec_us": round(codec_microseconds(options.rotations, options.repeat), 2),
        "timeouts_us": round(
            timeout_microseconds(
                options.connections, options.rotations, options.repeat
            ),
            2,
        ),
        "bytes_per_session": round(bytes_per_session(options.sessions)),
        "server_rotation_us": round(
            server_rotation_microseconds(options.profiles, options.rounds), 1
        ),
    }
    print(f"one rotation through RotationConversation: {figures['rotation_us']} µs")
    print(f"one rotation's codec work: {figures['codec_us']} µs")
    print(
        f"one rotation's timeout changes among {options.connections} "
        f"connections: {figures['timeouts_us']} µs"
    )
    print(f"memory per session after a rotation: {figures['bytes_per_session']} B")
    print(
        f"the server's side of one rotation, {options.profiles} profiles, "
        f"no sockets or TLS: {figures['server_rotation_us']} µs of CPU"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
