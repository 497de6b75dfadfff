# -*- test-case-name: tests.bench.test_tls_read -*-
"""
What the listener's TLS layer costs the server per message, in process:
one record read from a device connection and one record written back,
with no sockets, no reactor and no SUTO code behind TLS.

C{--connections} server connections are made as the TLS listener makes
them (its protocol factory over L{ReloadableServerTLS}, each protocol on
a C{StringTransport}), each finishes a TLS 1.3 handshake with a client of
this process (a plain pyOpenSSL connection over memory BIOs, as the
agent's OpenSSL speaks it), and then each message goes as a rotation's
do: the client sends one record of C{SUTO_C_ROTATE_}'s length, the whole
record arrives in one read (C{dataReceived}), and the protocol behind TLS
answers it in one write, as L{suto_server.phases.connection} does.  The
figure is the thread's CPU time inside C{dataReceived} only (the read,
the decryption, the answer's encryption and its write to the transport),
per message, the best of C{--repeat} rounds of C{--messages} messages
spread over the connections.

Each round is measured for the listener's protocol as served
(C{listener}) and for Twisted's own C{TLSMemoryBIOProtocol} (C{twisted},
which the listener's protocol extends only to tell its witness about
handshakes), each over as many new connections of the same TLS context,
one after the other, so the two figures see the same neighbours.  Every
message's answer is checked to be one write holding one record.

C{--variant} runs one of them alone, for C{valgrind --tool=callgrind},
whose instruction counts for two values of C{--messages} give the
instructions per message by their difference.

Run from the repository root, with the project's virtualenv, under the
bench lock:

    flock /tmp/suto-bench.lock python bench/tls_read.py [--messages N]
        [--connections N] [--repeat N] [--variant listener|twisted]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from OpenSSL import SSL  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402
from twisted.protocols.tls import TLSMemoryBIOProtocol  # noqa: E402

from bench.suto_server_process import make_identity  # noqa: E402
from suto_server.net.refusals import RefusingTLSFactory  # noqa: E402
from suto_server.net.tls import ReloadableServerTLS  # noqa: E402

#: As long as a C{SUTO_C_ROTATE_} line, roughly; the answer is as long.
MESSAGE = b"x" * 121

#: A TLS record's header: its type, version and length.
RECORD_HEADER = 5

VARIANTS = ("listener", "twisted")


class _Answer(Protocol):
    """
    Answers each read with one write of as many bytes, as the server's
    connection answers a read's messages in one write.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data[::-1])


class Transport(StringTransport):
    """
    A transport that counts the writes made to it.
    """

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class _TwistedTLSFactory(RefusingTLSFactory):
    """
    The listener's TLS factory, its connections read by Twisted's own
    C{TLSMemoryBIOProtocol}.
    """

    protocol = TLSMemoryBIOProtocol


def _records(data: bytes) -> int:
    """
    @return: how many whole TLS records C{data} holds.
    """
    count = offset = 0
    while offset < len(data):
        offset += RECORD_HEADER + int.from_bytes(data[offset + 3 : offset + 5], "big")
        count += 1
    return count


class Pair:
    """
    A server protocol of C{factory} on a L{Transport} and a pyOpenSSL
    client over memory BIOs, their handshake done (the server's last
    flight, in TLS 1.3 its session tickets, left for the client to read
    with its first C{recv}).
    """

    def __init__(self, factory) -> None:
        self.server = factory.buildProtocol(None)
        self.transport = Transport()
        self.server.makeConnection(self.transport)
        self.client = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
        self.client.set_connect_state()
        done = False
        while not (done and self.server._handshakeDone):
            try:
                self.client.do_handshake()
                done = True
            except SSL.WantReadError:
                pass
            sent = self.sent()
            if sent:
                self.server.dataReceived(sent)
            self.deliver()
        self.transport.writes = 0

    def sent(self) -> bytes:
        """
        @return: what the client wrote since last asked.
        """
        try:
            return self.client.bio_read(65536)
        except SSL.WantReadError:
            return b""

    def deliver(self) -> bytes:
        """
        Give the client what the server wrote.

        @return: those bytes.
        """
        written = self.transport.value()
        self.transport.clear()
        if written:
            self.client.bio_write(written)
        return written

    def records(self, count: int) -> list:
        """
        @return: C{count} records of the client's, each a message.
        """
        made = []
        for _ in range(count):
            self.client.send(MESSAGE)
            made.append(self.sent())
        return made

    def check(self, count: int) -> None:
        """
        Check that the server answered the last C{count} messages in one
        write of one record each, and that the client reads the answers.
        """
        answers = self.deliver()
        if self.transport.writes != count or _records(answers) != count:
            raise RuntimeError("an answer is not one record in one write")
        self.transport.writes = 0
        for _ in range(count):
            if self.client.recv(4096) != MESSAGE[::-1]:
                raise RuntimeError("an answer did not arrive whole")


def _factory(tls: ReloadableServerTLS, variant: str):
    kind = _TwistedTLSFactory if variant == "twisted" else RefusingTLSFactory
    return kind(tls, False, Factory.forProtocol(_Answer))


def microseconds(tls, variant: str, connections: int, messages: int) -> float:
    """
    @return: the server's CPU per message, in microseconds, over
        C{messages} messages on C{connections} new connections of
        C{variant}.
    """
    factory = _factory(tls, variant)
    pairs = [Pair(factory) for _ in range(connections)]
    each = messages // connections
    reads = []
    for pair in pairs:
        reads.extend((pair.server.dataReceived, record) for record in pair.records(each))
    # The connections take turns, as a fleet's do.
    reads = [reads[index :: each] for index in range(each)]
    reads = [read for turn in reads for read in turn]
    started = time.thread_time()
    for read, record in reads:
        read(record)
    spent = time.thread_time() - started
    for pair in pairs:
        pair.check(each)
    return spent / len(reads) * 1e6


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variant", choices=VARIANTS)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="suto-bench-") as directory:
        identity = make_identity(directory)
        tls = ReloadableServerTLS(identity.key, identity.cert)
        variants = VARIANTS if options.variant is None else (options.variant,)
        rounds = {variant: [] for variant in variants}
        for _ in range(options.repeat):
            for variant in variants:
                rounds[variant].append(
                    microseconds(tls, variant, options.connections, options.messages)
                )
    figures = {f"{variant}_us": round(min(each), 3) for variant, each in rounds.items()}
    for variant, each in rounds.items():
        print(
            f"{variant}: {min(each):.3f} µs of server CPU per message "
            f"(rounds: {', '.join(f'{one:.3f}' for one in each)})"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
