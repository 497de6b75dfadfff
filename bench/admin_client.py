"""
The load generator's side of the SUTO admin API: JSON over HTTP on the
server's UNIX socket, as C{suto-admin} speaks it, but asynchronous, so
one process can keep many authentication requests waiting at once.

C{suto-admin} makes one request per command, on a connection of its own
(L{suto_server.admin.client}), and so does a script calling the socket
with C{curl --unix-socket}: a scenario that stands for operators asking
for authentications says C{kept_alive=False}, so the server pays for
accepting and closing a connection per request as it does for them
(about 70 microseconds of its CPU per request, measured in
bench/RESULTS.md).  Connections kept alive are the way of a long-running
client; the other scenarios keep theirs.
"""

from __future__ import annotations

import json
from io import BytesIO

from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.web.client import (
    Agent,
    FileBodyProducer,
    HTTPConnectionPool,
    readBody,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory
from zope.interface import implementer

#: Largest answer read from the admin API; its answers are a few hundred
#: bytes.
MAX_ANSWER = 64 * 1024

#: Seconds allowed to connect to the admin socket.
CONNECT_TIMEOUT = 5.0

_HEADERS = Headers({b"content-type": [b"application/json"]})


class AdminAnswerError(Exception):
    """
    The admin API answered something that is not a JSON object of
    reasonable size.
    """


@implementer(IAgentEndpointFactory)
class _SocketEndpoints:
    """
    Every URI goes to the one admin socket.
    """

    def __init__(self, reactor, path: str) -> None:
        self._reactor = reactor
        self._path = path

    def endpointForURI(self, uri):
        return UNIXClientEndpoint(self._reactor, self._path, CONNECT_TIMEOUT)


class AdminClient:
    """
    Calls the admin API of one running server.
    """

    def __init__(
        self, reactor, socket_path: str, connections: int, *, kept_alive=True
    ) -> None:
        """
        @param socket_path: the server's admin socket.
        @param connections: how many requests may be waiting at once (each
            holds one connection until its answer).
        @param kept_alive: whether a connection is kept for the next
            request, or closed after its answer (as C{suto-admin}'s is).
        """
        self._pool = HTTPConnectionPool(reactor, persistent=kept_alive)
        self._pool.maxPersistentPerHost = connections
        self._pool.retryAutomatically = False
        self._agent = Agent.usingEndpointFactory(
            reactor, _SocketEndpoints(reactor, socket_path), pool=self._pool
        )

    @inlineCallbacks
    def call(self, method: bytes, path: bytes, body: dict | None = None):
        """
        Make one request.

        @return: a L{Deferred} firing with the HTTP status and the decoded
            JSON object answered.
        @raise AdminAnswerError: (through the L{Deferred}) the answer is
            too large or not a JSON object.
        """
        producer = None
        if body is not None:
            producer = FileBodyProducer(BytesIO(json.dumps(body).encode("utf-8")))
        response = yield self._agent.request(
            method, b"http://suto-admin" + path, _HEADERS, producer
        )
        if response.length is not UNKNOWN_LENGTH and response.length > MAX_ANSWER:
            # Read and drop it, so the connection is not left half-read.
            response.deliverBody(Protocol())
            raise AdminAnswerError(f"an answer of {response.length} bytes")
        data = yield readBody(response)
        try:
            answer = json.loads(data)
        except ValueError:
            raise AdminAnswerError("an answer that is not JSON") from None
        if not isinstance(answer, dict):
            raise AdminAnswerError("an answer that is not a JSON object")
        return response.code, answer

    def authenticate(self, user: str, target: str, timeout: float):
        """
        C{POST /v1/auth}: authenticate C{user} at the device at C{target}.

        @return: a L{Deferred} firing, once the server has its verdict,
            with the status and the answer (C{verdict}, C{reason}, ...).
        """
        return self.call(
            b"POST",
            b"/v1/auth",
            {"user": user, "target": target, "timeout": timeout},
        )

    def status(self):
        """
        C{GET /v1/status}.

        @return: a L{Deferred} firing with the status and the answer.
        """
        return self.call(b"GET", b"/v1/status")

    def close(self):
        """
        Close the idle connections.

        @return: a L{Deferred} firing once they are closed.
        """
        return self._pool.closeCachedConnections()
