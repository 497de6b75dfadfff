# -*- test-case-name: tests.client.pam.test_verify -*-
"""
One C{POST /v1/verify} to the SUTO server, over mutual TLS, within a
deadline.

The request is made with C{twisted.web.client.Agent}, the server's
certificate checked by the agent's own L{suto_client.tls} (pin or CA
bundle, inside the handshake), the host presenting its certificate.  The
standard library's C{http.client} and C{ssl} start faster: C{python
bench/pam_startup.py} measures, in a fresh C{python -I}, about 50 ms for
them, 135 ms for the agent's certificate checks (C{cryptography} and
pyOpenSSL), 210 ms for this module's imports, and 240 ms for the whole
helper as C{pam_exec} runs it (best of five, on the reference machine).
Most of the difference is the certificate checks, which are needed
whichever client carries the request unless they are written a second
time for C{ssl}; the remaining 75 ms buy one certificate check for the
agent and the host instead of two, a pin refused inside the handshake
rather than after the host has sent its certificate (C{ssl} can compare
a pin only once the handshake is over), and the same cancellation and
timeout machinery as the rest of SUTO.  A device's answer takes longer
than all of it.

Every way the request can fail becomes a L{Decision} denying the user,
of a kind that says what failed: C{unreachable} (no TCP connection: the
only kind the offline policy may override), C{tls}, C{http}, C{answer},
C{deadline}.
"""

from __future__ import annotations

import json

from OpenSSL import SSL
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from suto_client.pam.config import PamConfig
from suto_client.pam.verdict import MAX_ANSWER_BYTES, Decision, denied, judge
from suto_client.tls import (
    CertificateRejected,
    ClientTLSError,
    PinMismatch,
    authority_client_creator,
    load_client_identity,
    pinned_client_creator,
)

#: The path of the verification API.
VERIFY_PATH = b"/v1/verify"

#: Seconds the server's deadline is set short of ours, so that its answer
#: (even "the device did not answer in time") arrives before we give up.
ANSWER_MARGIN = 1.0

#: Connection failures that mean the server could not be reached at all
#: (checked after the deadline's own L{net_error.TimeoutError}).
_UNREACHABLE = (net_error.ConnectError, net_error.DNSLookupError)


@implementer(IPolicyForHTTPS)
class _HostTrust:
    """
    The TLS settings of the one server the host asks, for any URL.
    """

    def __init__(self, creator) -> None:
        self._creator = creator

    def creatorForNetloc(self, hostname, port):
        return self._creator


def trust(config: PamConfig):
    """
    The TLS client settings C{config} names: its pin or CA bundle, and the
    host's certificate and key.

    @raise ClientTLSError: a file is unusable or the key is not the
        certificate's.
    """
    identity = load_client_identity(config.certificate, config.key)
    if config.ca is not None:
        return authority_client_creator(config.host, config.ca, identity)
    return pinned_client_creator(config.pin, identity)


def verify(reactor, config: PamConfig, user: str, creator=None) -> Deferred:
    """
    Ask the server whether C{user}'s device vouches for them.

    @param creator: the TLS settings to use; by default L{trust}.
    @return: a Deferred firing with a L{Decision}, never failing, within
        C{config.deadline} seconds of C{reactor}'s clock.
    """
    try:
        if creator is None:
            creator = trust(config)
    except ClientTLSError as failure:
        return succeed(denied("config", str(failure)))
    payload = {"user": user, "deadline": max(1.0, config.deadline - ANSWER_MARGIN)}
    asked = post(reactor, config, creator, payload)
    asked.addCallback(lambda answer: judge(user, *answer))
    asked.addErrback(failure_decision, config)
    return asked


def post(reactor, config: PamConfig, creator, payload: dict) -> Deferred:
    """
    Send C{payload} to the verification API and read the answer, within
    C{config.deadline} seconds.

    @return: a Deferred firing with the status code and the body (at most
        L{MAX_ANSWER_BYTES}), or failing as L{failure_decision} reads.
    """
    agent = Agent(reactor, contextFactory=_HostTrust(creator))
    requested = agent.request(
        b"POST",
        _url(config),
        Headers({b"content-type": [b"application/json"]}),
        _Body(json.dumps(payload).encode("utf-8")),
    )
    requested.addCallback(_read)
    requested.addTimeout(config.deadline, reactor, onTimeoutCancel=_timed_out)
    return requested


class _NotConnected(Exception):
    """
    The deadline passed before a TCP connection to the server was made:
    for the offline policy, the server could not be reached.
    """


def _timed_out(result, timeout) -> Failure:
    """
    What a request the deadline cancelled failed with: still connecting
    (its own error, L{net_error.ConnectingCancelledError}), the server
    could not be reached; connected, it did not answer in time.
    """
    if isinstance(result, Failure) and result.check(net_error.ConnectingCancelledError):
        return Failure(_NotConnected(f"no connection within {timeout:g} s"))
    return Failure(net_error.TimeoutError(f"no answer within {timeout:g} s"))


def _url(config: PamConfig) -> bytes:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"https://{host}:{config.port}".encode("idna") + VERIFY_PATH


def _read(response) -> Deferred:
    received = Deferred()
    response.deliverBody(_CappedBody(received))
    received.addCallback(lambda body: (response.code, body))
    return received


def failure_decision(failure, config: PamConfig) -> Decision:
    """
    Turn any failure of the request into a denial saying what failed.
    """
    where = f"{config.host}:{config.port}"
    if failure.check(net_error.TimeoutError):
        return denied("deadline", f"no answer from {where} within {config.deadline:g} s")
    if failure.check(_NotConnected, *_UNREACHABLE):
        return denied("unreachable", f"cannot reach the server at {where}: {failure.getErrorMessage()}")
    if failure.check(_TooLarge):
        return denied("answer", f"the server's answer is larger than {MAX_ANSWER_BYTES} bytes")
    reasons = [failure]
    if failure.check(
        ResponseNeverReceived, ResponseFailed, RequestTransmissionFailed, RequestGenerationFailed
    ):
        reasons = failure.value.reasons
    for reason in reasons:
        if reason.check(PinMismatch, CertificateRejected):
            return denied("tls", f"the server at {where} is refused: {reason.value}")
        if reason.check(SSL.Error):
            return denied("tls", f"TLS with {where} failed: {_ssl_reason(reason.value)}")
    return denied("http", f"the exchange with {where} failed: {reasons[0].getErrorMessage()}")


def _ssl_reason(error: SSL.Error) -> str:
    """
    OpenSSL's reasons, e.g. the alert a server sends when it refuses the
    host's certificate, without the library and function names.
    """
    try:
        return "; ".join(entry[2] for entry in error.args[0]) or "unknown error"
    except (IndexError, TypeError):
        return str(error)


@implementer(IBodyProducer)
class _Body:
    """
    A request body known in full in advance.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer) -> Deferred:
        consumer.write(self._data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _TooLarge(Exception):
    """
    The server's answer is longer than L{MAX_ANSWER_BYTES}.
    """


class _CappedBody(Protocol):
    """
    Collects a response body of at most L{MAX_ANSWER_BYTES}, and stops
    the transfer of a longer one.
    """

    def __init__(self, finished: Deferred) -> None:
        self._finished = finished
        self._parts: list[bytes] = []
        self._size = 0

    def dataReceived(self, data: bytes) -> None:
        if self._finished is None:
            return
        self._size += len(data)
        if self._size > MAX_ANSWER_BYTES:
            finished, self._finished = self._finished, None
            self.transport.stopProducing()
            finished.errback(_TooLarge())
            return
        self._parts.append(data)

    def connectionLost(self, reason) -> None:
        if self._finished is None:
            return
        finished, self._finished = self._finished, None
        if reason.check(ResponseDone, PotentialDataLoss):
            finished.callback(b"".join(self._parts))
        else:
            finished.errback(reason)
