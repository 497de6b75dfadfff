"""
The minimal TLS echo server the TLS and message ceilings are measured
against: Twisted's stock C{ssl:} endpoint and a L{LineReceiver} that sends
every line back.  It does nothing SUTO does, so what it sustains is the
most any TLS server in Python on this machine could.

Run in a process of its own (C{python -m bench.echo_server --key K --cert
C}); it prints its port on one line once listening, and exits when its
standard input closes (the benchmark ended or died) or after
C{--lifetime} seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver

#: Longest line echoed; the benchmark's lines are far shorter.
MAX_LINE = 1024


class LineEcho(LineReceiver):
    """
    Sends every line back as it came.
    """

    MAX_LENGTH = MAX_LINE

    def lineReceived(self, line: bytes) -> None:
        self.sendLine(line)


class _WatchInput(Protocol):
    """
    Ends the server when standard input closes.
    """

    def __init__(self, closed: Deferred) -> None:
        self._closed = closed

    def connectionLost(self, reason=None) -> None:
        if not self._closed.called:
            self._closed.callback(None)


def listen_description(key: str, cert: str) -> str:
    """
    @return: the stock Twisted TLS endpoint on a free loopback port.
    """
    return (
        f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
        f":certKey={quoteStringArgument(cert)}"
    )


async def _serve(reactor, key: str, cert: str, lifetime: float) -> None:
    endpoint = serverFromString(reactor, listen_description(key, cert))
    port = await endpoint.listen(Factory.forProtocol(LineEcho))
    print(port.getHost().port, flush=True)
    finished: Deferred = Deferred()
    stdio.StandardIO(_WatchInput(finished), reactor=reactor)
    timer = reactor.callLater(lifetime, finished.callback, None)
    await finished
    if timer.active():
        timer.cancel()
    await port.stopListening()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--cert", required=True, help="PEM certificate")
    parser.add_argument(
        "--lifetime", type=float, default=300.0, help="seconds before exiting"
    )
    options = parser.parse_args(argv)
    react(
        lambda reactor: Deferred.fromCoroutine(
            _serve(reactor, options.key, options.cert, options.lifetime)
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
