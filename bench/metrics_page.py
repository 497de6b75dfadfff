"""
Reading the server's Prometheus metrics page over HTTP.
"""

from __future__ import annotations

from twisted.internet.defer import inlineCallbacks
from twisted.web.client import Agent, readBody


@inlineCallbacks
def scrape(reactor, port: int):
    """
    Read the server's metrics page.

    @return: a L{Deferred} firing with C{{(name, labels): value}} for
        each sample, C{labels} being the text between braces.
    """
    response = yield Agent(reactor).request(
        b"GET", f"http://127.0.0.1:{port}/metrics".encode()
    )
    body = yield readBody(response)
    return parse_metrics(body.decode())


def parse_metrics(text: str) -> dict:
    """
    @return: the samples of a Prometheus text page, as L{scrape} gives
        them.
    """
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        labels = ""
        if "{" in name:
            name, _, labels = name.partition("{")
            labels = labels.rstrip("}")
        samples[(name, labels)] = float(value)
    return samples
