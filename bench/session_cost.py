"""
What pieces of the server's rotation path cost on their own, per rotation:
the rotation machine (L{RotationConversation}), the codec, and the
connection's timeout changes among many connections; and the memory each
machine's session holds.

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

Run from the repository root, with the project's virtualenv, under the
bench lock:

    flock /tmp/suto-bench.lock python bench/session_cost.py [--rotations N]
        [--repeat N] [--sessions N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import timeit
import tracemalloc

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.epollreactor import EPollReactor  # noqa: E402

from suto_server.core import wire  # noqa: E402
from suto_server.machines.rotation import RotationConversation  # noqa: E402
from suto_server.phases.timeout import (  # noqa: E402
    DeadlineWheel,
    WheelTimeoutMixin,
)

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
EXCHANGE_TIMEOUT = 10.0
IDLE_TIMEOUT = 96.0


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
    }
    print(f"one rotation through RotationConversation: {figures['rotation_us']} µs")
    print(f"one rotation's codec work: {figures['codec_us']} µs")
    print(
        f"one rotation's timeout changes among {options.connections} "
        f"connections: {figures['timeouts_us']} µs"
    )
    print(f"memory per session after a rotation: {figures['bytes_per_session']} B")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
