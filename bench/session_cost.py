"""
What the server's rotation machine (L{RotationConversation}) costs on its own:
the CPU of one full rotation through it, and the memory each session
holds.

A rotation is the four calls the protocol makes on an idle connection:
C{receive(Rotate)}, C{started}, C{receive(RotateAck)}, C{committed}.
Only the machine is timed: no wire, no key schedule, no store.  Memory is
what C{tracemalloc} sees allocated by C{--sessions} sessions after each
has made one rotation (as an idle connection's session has), divided by
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

from suto_server.core import wire  # noqa: E402
from suto_server.machines.rotation import RotationConversation  # noqa: E402

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
    options = parser.parse_args(argv)
    figures = {
        "rotation_us": round(
            rotation_microseconds(options.rotations, options.repeat), 2
        ),
        "bytes_per_session": round(bytes_per_session(options.sessions)),
    }
    print(f"one rotation through RotationConversation: {figures['rotation_us']} µs")
    print(f"memory per session after a rotation: {figures['bytes_per_session']} B")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
