# -*- test-case-name: tests.bench.test_session_cost -*-
"""
What pieces of the server's rotation path cost on their own, per rotation:
the rotation machine (L{RotationConversation}), the codec, and the
connection's timeout changes among many connections; the memory each
machine's session holds; and the server's whole side of a rotation
without its sockets and TLS (L{bench.server_rotation}).

Each figure is given for both forms of a rotation (docs/PROTOCOL.md
§9.2): the two-message form of a version-2 connection
(C{SUTO_C_ROTATE_}, C{SUTO_ROTATE_OK_}, C{SUTO_C_ROTATE_ACK_},
C{SUTO_ROTATE_DONE_}), and the primed form of a version-3 connection in
its steady state, every rotation after the connection's first
(C{SUTO_C_ROTATE_PRIMED_}, C{SUTO_ROTATE_DONE_NEXT_}).

A rotation through the machine is the calls the protocol makes on a
connection between rotations: C{receive(Rotate)}, C{started},
C{receive(RotateAck)}, C{committed} for the two-message form;
C{receive(RotatePrimed)}, C{committed_next} for the primed one.  The
machine is timed alone: no wire, no key schedule, no store.  The codec
figure decodes a rotation's client lines (each on a fresh decoder's
buffer, as they arrive) and encodes its answers.  The timeout figure is
one rotation's timeout changes (a reset for each message received, the
exchange timeout when it begins, the idle period when it commits) on one
of C{--connections} connections whose timeouts share a real reactor's
timers, with the reactor's own pass over its timers after each turn, as
it runs between events.  Memory is what C{tracemalloc} sees allocated by
C{--sessions} sessions after a rotation of the form (as an idle
connection's session has), divided by their number; a version-3
connection's session also holds the server's share for its next
rotation, an X25519 private key, whose OpenSSL part outside Python's
allocator is counted from glibc's C{mallinfo2}.

The server figure (L{bench.server_rotation}) is the CPU time of the
server's own code, as the daemon assembles it, per rotation of C{--profiles}
agents over C{--rounds} rounds.

Run from the repository root, with the project's virtualenv, under the
bench lock:

    flock /tmp/suto-bench.lock python bench/session_cost.py [--rotations N]
        [--repeat N] [--sessions N] [--connections N] [--profiles N]
        [--rounds N]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import timeit
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives.asymmetric.x25519 import (  # noqa: E402
    X25519PrivateKey,
)
from twisted.internet.epollreactor import EPollReactor  # noqa: E402

from bench.figures import rounded  # noqa: E402
from bench.server_rotation import server_rotation_microseconds  # noqa: E402
from suto_server.core import wire  # noqa: E402
from suto_server.machines.rotation import RotationConversation  # noqa: E402
from suto_server.phases.timeout import (  # noqa: E402
    DeadlineWheel,
    WheelTimeoutMixin,
)
from suto_server.settings import Timing  # noqa: E402

USER = "alice"
ROTATE = wire.Rotate("0" * 32, bytes(32), bytes(32), USER)
ACK = wire.RotateAck(bytes(16))
PRIMED = wire.RotatePrimed("0" * 32, bytes(32), bytes(32), bytes(16), USER)
SERVER_PUBLIC = bytes(32)
SEALED = bytes(16)
#: A sealed share: the server's next public key and its tag.
SEALED_SHARE = bytes(48)


def rotate(session: RotationConversation) -> None:
    """
    Take C{session} through one two-message rotation, from idle back to
    idle.
    """
    session.receive(ROTATE)
    session.started(SERVER_PUBLIC, SEALED)
    session.receive(ACK)
    session.committed(SEALED)


def rotate_first_primed(session: RotationConversation) -> None:
    """
    Take C{session} through a version-3 connection's first rotation, the
    two-message form whose commit primes the next: from idle to primed.
    """
    session.receive(ROTATE)
    session.started(SERVER_PUBLIC, SEALED)
    session.receive(ACK)
    session.committed_next(SEALED_SHARE)


def rotate_primed(session: RotationConversation) -> None:
    """
    Take C{session} through one primed rotation, from primed back to
    primed.
    """
    session.receive(PRIMED)
    session.committed_next(SEALED_SHARE)


FRAMED = wire.Framing.FRAMED


@dataclass(frozen=True)
class Form:
    """
    One form of a rotation, as each figure runs it.

    @ivar name: the suffix of its figures' names in the JSON line.
    @ivar label: how its figures are labelled in the printed lines.
    @ivar version: the protocol version a connection rotating so announces.
    @ivar first: takes a new session through the connection's first
        rotation, to where the timed rotations start.
    @ivar rotate: takes the session through one timed rotation, back to
        where it started.
    @ivar client_lines: a rotation's client lines, as they arrive.
    @ivar answers: the server's answers to them.
    @ivar holds_share: whether the session holds the server's share for
        its next rotation between rotations.
    """

    name: str
    label: str
    version: int
    first: Callable[[RotationConversation], None]
    rotate: Callable[[RotationConversation], None]
    client_lines: tuple[bytes, ...]
    answers: tuple
    holds_share: bool


TWO_MESSAGE = Form(
    name="v2",
    label="two-message (version 2)",
    version=2,
    first=rotate,
    rotate=rotate,
    client_lines=(
        wire.encode(ROTATE, FRAMED),
        wire.encode(wire.RotateAck(bytes(48)), FRAMED),
    ),
    answers=(wire.RotateOk(bytes(32), bytes(48)), wire.RotateDone(bytes(48))),
    holds_share=False,
)
PRIMED_FORM = Form(
    name="v3_primed",
    label="primed (version 3, steady state)",
    version=3,
    first=rotate_first_primed,
    rotate=rotate_primed,
    client_lines=(
        wire.encode(
            wire.RotatePrimed("0" * 32, bytes(32), bytes(32), bytes(48), USER),
            FRAMED,
        ),
    ),
    answers=(wire.RotateDoneNext(SEALED_SHARE),),
    holds_share=True,
)
FORMS = (TWO_MESSAGE, PRIMED_FORM)


def best_microseconds(call: Callable[[], None], number: int, repeat: int) -> float:
    """
    @return: the best, over C{repeat} runs of C{number} calls of C{call},
        of the time of one call, in microseconds.
    """
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def rotation_microseconds(rotations: int, repeat: int, form: Form) -> float:
    """
    @return: the best, over C{repeat} runs of C{rotations} rotations of
        C{form} on one session, of the time of one rotation, in
        microseconds.
    """
    session = RotationConversation(USER)
    form.first(session)
    return best_microseconds(lambda: form.rotate(session), rotations, repeat)


def codec_rotation(form: Form) -> None:
    """
    What the codec does in one rotation of C{form}: decode the client
    lines, encode the answers.
    """
    for line in form.client_lines:
        decoder = wire.Decoder(FRAMED)
        decoder.receive_data(line)
        decoder.next_event()
    for answer in form.answers:
        wire.encode(answer, FRAMED)


def codec_microseconds(rotations: int, repeat: int, form: Form) -> float:
    """
    @return: the best, over C{repeat} runs, of the codec's time for one
        rotation of C{form}, in microseconds.
    """
    return best_microseconds(lambda: codec_rotation(form), rotations, repeat)


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


def timeout_microseconds(
    connections: int, rotations: int, repeat: int, form: Form
) -> float:
    """
    @return: the best, over C{repeat} runs, of the timeout changes of one
        rotation of C{form} on one of C{connections} connections sharing
        a real reactor's timers (the reactor is built, never run: its pass
        over due timers is called after each turn), in microseconds.
    """
    reactor = EPollReactor()
    deadlines = DeadlineWheel(reactor)
    fleet = [_Timed(reactor, deadlines) for _ in range(connections)]
    for index, connection in enumerate(fleet):
        # Idle connections, their deadlines spread over the idle period.
        connection.setTimeout(IDLE_TIMEOUT - index % 60)
    reactor.runUntilCurrent()
    turn = reactor.runUntilCurrent
    # The two-message form's acknowledgement is a turn of its own.
    later_lines = form.client_lines[1:]
    position = 0

    def rotation() -> None:
        nonlocal position
        connection = fleet[position]
        position = (position + 1) % connections
        connection.resetTimeout()
        connection.setTimeout(EXCHANGE_TIMEOUT)
        turn()
        for _ in later_lines:
            connection.resetTimeout()
            turn()
        connection.setTimeout(IDLE_TIMEOUT)
        turn()

    return best_microseconds(rotation, rotations, repeat)


class _MallInfo2(ctypes.Structure):
    """
    glibc's C{struct mallinfo2}: C{uordblks} is the bytes C{malloc} has
    handed out and not taken back.
    """

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use() -> int:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2().uordblks


def share_heap_bytes(shares: int) -> float:
    """
    @return: the bytes OpenSSL allocates for each of C{shares} held X25519
        private keys, outside Python's allocator (so outside what
        C{tracemalloc} sees), as glibc's C{malloc} counts them.  Measured
        with C{tracemalloc} stopped, whose own records would count too.
    """
    X25519PrivateKey.generate()
    gc.collect()
    before = _malloc_in_use()
    held = [X25519PrivateKey.generate() for _ in range(shares)]
    gc.collect()
    after = _malloc_in_use()
    # The list that holds them is not theirs.
    return (after - before - sys.getsizeof(held)) / shares


def bytes_per_session(sessions: int, form: Form) -> float:
    """
    @return: the bytes held by each of C{sessions} sessions after a
        rotation of C{form}: what C{tracemalloc} finds, and for a form
        whose sessions hold the server's next share, that share's
        OpenSSL part (L{share_heap_bytes}).
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = []
    shares = []
    for _ in range(sessions):
        session = RotationConversation(USER)
        form.first(session)
        form.rotate(session)
        held.append(session)
        if form.holds_share:
            shares.append(X25519PrivateKey.generate())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # The lists that hold them are not theirs.
    traced = after - before - sys.getsizeof(held) - sys.getsizeof(shares)
    outside = share_heap_bytes(sessions) if form.holds_share else 0.0
    return traced / sessions + outside


def form_figures(options: argparse.Namespace, form: Form) -> list[tuple]:
    """
    @return: each figure of C{form}, as the options ask for it: its name
        in the JSON line, what it is, its value and unit.
    """
    timed = (options.rotations, options.repeat, form)
    return [
        (
            "rotation_us",
            "one rotation through RotationConversation",
            rounded(rotation_microseconds(*timed), 2),
            "µs",
        ),
        (
            "codec_us",
            "one rotation's codec work",
            rounded(codec_microseconds(*timed), 2),
            "µs",
        ),
        (
            "timeouts_us",
            f"one rotation's timeout changes among {options.connections} "
            "connections",
            rounded(timeout_microseconds(options.connections, *timed), 2),
            "µs",
        ),
        (
            "bytes_per_session",
            "memory per session after a rotation",
            rounded(bytes_per_session(options.sessions, form), 0),
            "B",
        ),
        (
            "server_rotation_us",
            f"the server's side of one rotation, {options.profiles} "
            "profiles, no sockets or TLS",
            rounded(
                server_rotation_microseconds(
                    options.profiles, options.rounds, form.version
                ),
                1,
            ),
            "µs of CPU",
        ),
    ]


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args(argv)
    figures = {}
    for form in FORMS:
        for name, what, value, unit in form_figures(options, form):
            figures[f"{name}_{form.name}"] = value
            print(f"{form.label}: {what}: {value} {unit}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
