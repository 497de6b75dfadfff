# -*- test-case-name: tests.net.test_checks -*-
"""
Check packets: is a profile's legitimate client still at its old location?

Before a profile may be served from a new address, the server sends a
L{wire.Check} to the agent port at the old one and waits a few seconds.
An agent that holds the profile's key answers with a L{wire.CheckProof}, a
MAC of the check's nonce under that key (L{keyschedule.check_proof}).  A
valid answer means the legitimate client is online where it was, so
whoever showed up elsewhere holds a copy.

Each check draws a fresh nonce and keeps, under it, the address asked,
the proofs that would be valid, and a timer.  An answer is looked up by
its nonce; one that names no pending check (a replay, or one that came too
late) or that comes from any other address is ignored.  The first valid
proof ends the check at once and forgets its nonce, so no answer counts
twice.  An answer with the right nonce from the right address but a wrong
proof is remembered, and a check that ends without a valid proof reports
it: someone is answering for the client without its key.  Nothing of a
check outlives its timer, and the key itself is never kept: only the
expected proofs are.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from functools import partial

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel

from suto_server.core import keyschedule, wire
from suto_server.core.throttle import unpaced
from suto_server.net.discovery import DEFAULT_HELLO_PORT

DEFAULT_CHECK_TIMEOUT = 3.0
"""Seconds a check waits for an answer."""


class CheckResult(enum.Enum):
    """
    How a check ended.
    """

    ANSWERED = "answered"
    """A valid proof came from the address checked, in time."""

    SILENT = "silent"
    """No valid proof came in time."""

    FORGED = "forged"
    """
    No valid proof came in time, but an answer with a wrong proof did: as
    silent for deciding a move, and worth an alert of its own.
    """


class CheckError(Exception):
    """
    A check cannot be sent: its user, address or key is invalid.
    """


def _normalise(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """
    The address that C{address} names, an IPv4 address seen through an
    IPv6 socket (C{::ffff:192.0.2.1}) being its IPv4 self, so that an
    answer is matched to its check however either was spelled.

    @raise ValueError: C{address} is not an IP address.
    """
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


@dataclass
class _Pending:
    """
    One check waiting for its answer.

    @ivar user: the profile checked.
    @ivar address: where the check went; only answers from there count.
    @ivar proofs: the proofs that would be valid.
    @ivar result: fires with the L{CheckResult}.
    @ivar forged: whether a wrong proof came from C{address}.
    """

    user: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    proofs: tuple[bytes, ...]
    result: Deferred = field(repr=False)
    timer: object = field(default=None, repr=False)
    forged: bool = False


class _CheckSocket(DatagramProtocol):
    """
    One UDP socket of a L{CheckService}: sends its checks and hands every
    datagram that arrives to the service.
    """

    def __init__(self, received) -> None:
        self._received = received

    def datagramReceived(self, datagram: bytes, address) -> None:
        self._received(datagram, address[0])


class CheckService(Service):
    """
    Sends check packets and matches their answers.  Owns one UDP socket
    per address family, bound on first use to an ephemeral port (answers
    come back to it), and closed when the service stops.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        port: int = DEFAULT_HELLO_PORT,
        timeout: float = DEFAULT_CHECK_TIMEOUT,
        interface: str = "",
        paced=None,
    ) -> None:
        """
        @param reactor: provides UDP and the clock the timeouts run on.
        @param port: the agents' UDP port, where checks are sent.
        @param timeout: seconds a check waits for a valid answer.
        @param interface: the local IPv4 address to send from (C{""} for
            any).
        @param paced: writes the lines about the datagrams that arrive,
            as L{suto_server.rules.gate.ConnectionGate.paced} does: once
            per source and reason per interval, since anyone can send
            them; by default every line is written.
        """
        self._reactor = reactor
        self._port = port
        self._timeout = timeout
        self._interface = interface
        self._listening: dict[int, object] = {}
        self._sockets: dict[int, _CheckSocket] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._paced = unpaced if paced is None else paced

    def check(
        self,
        user: str,
        address: str,
        key: bytes,
        *,
        previous: bytes | None = None,
    ) -> Deferred:
        """
        Ask C{address} whether the legitimate client of C{user} is there.

        @param user: the profile to check.
        @param address: the profile's old IP address.
        @param key: the profile's current key.
        @param previous: the key the profile held before, while the server
            still keeps it because the client has not yet proven it holds
            the new one (docs/PROTOCOL.md §9.3): a client that missed the
            end of a rotation answers with that one.
        @return: a L{Deferred} firing with a L{CheckResult} within the
            timeout.  Cancelling it abandons the check.
        @raise CheckError: C{user}, C{address} or a key is invalid.
        @raise twisted.internet.error.CannotListenError: no socket could
            be opened to send from.
        """
        try:
            target = _normalise(address)
            nonce = secrets.token_bytes(keyschedule.CHECK_NONCE_SIZE)
            datagram = wire.encode_check(wire.Check(nonce, user))
            proofs = tuple(
                keyschedule.check_proof(each, nonce, user)
                for each in (key, previous)
                if each is not None
            )
        except (ValueError, wire.ProtocolError, keyschedule.KeyScheduleError):
            raise CheckError(
                "cannot check: invalid user, address or key"
            ) from None
        sender = self._socket(target.version)
        result = Deferred(lambda _: self._forget(nonce))
        pending = _Pending(user, target, proofs, result)
        self._pending[nonce] = pending
        pending.timer = self._reactor.callLater(
            self._timeout, self._expire, nonce
        )
        try:
            sender.transport.write(datagram, (str(target), self._port))
        except OSError:
            # As if the datagram were lost: nobody there can answer.
            self.log.failure(
                "cannot send the check for {user} to {address}",
                user=user,
                address=str(target),
            )
        else:
            self.log.info(
                "sent a check for {user} to {address}",
                user=user,
                address=str(target),
            )
        return result

    def stopService(self):
        """
        Abandon the checks still waiting and close the sockets.
        """
        super().stopService()
        for pending in list(self._pending.values()):
            pending.result.cancel()
        listening, self._listening, self._sockets = self._listening, {}, {}
        return gatherResults(
            [maybeDeferred(port.stopListening) for port in listening.values()]
        )

    def _socket(self, version: int) -> _CheckSocket:
        if version not in self._sockets:
            opened = _CheckSocket(self._received)
            if version == 6:
                interface = "::"
            else:
                interface = self._interface or "0.0.0.0"
            self._listening[version] = self._reactor.listenUDP(
                0, opened, interface=interface
            )
            self._sockets[version] = opened
        return self._sockets[version]

    def _received(self, datagram: bytes, source: str) -> None:
        """
        Match a datagram to the check it answers, if any.
        """
        paced = partial(self._paced, self.log)
        try:
            answer = wire.parse_datagram(datagram)
        except wire.ProtocolError as e:
            paced(
                LogLevel.debug,
                source,
                "malformed",
                "dropped a malformed datagram from {source}: {code}",
                code=e.code,
            )
            return
        if not isinstance(answer, wire.CheckProof):
            paced(
                LogLevel.debug,
                source,
                "not_an_answer",
                "dropped a datagram from {source}",
            )
            return
        pending = self._pending.get(answer.nonce)
        if pending is None:
            paced(
                LogLevel.info,
                source,
                "no_pending_check",
                "ignored an answer from {source} to no pending check",
            )
        elif _normalise(source) != pending.address:
            paced(
                LogLevel.warn,
                source,
                "wrong_address",
                "ignored an answer from {source} to the check for {user} "
                "sent to {address}",
                user=pending.user,
                address=str(pending.address),
            )
        elif any(hmac.compare_digest(answer.proof, p) for p in pending.proofs):
            self._end(answer.nonce, CheckResult.ANSWERED)
        else:
            pending.forged = True
            paced(
                LogLevel.warn,
                source,
                "wrong_proof",
                "an answer from {source} to the check for {user} carried a "
                "wrong proof",
                user=pending.user,
            )

    def _expire(self, nonce: bytes) -> None:
        pending = self._pending[nonce]
        pending.timer = None
        self._end(
            nonce, CheckResult.FORGED if pending.forged else CheckResult.SILENT
        )

    def _end(self, nonce: bytes, result: CheckResult) -> None:
        pending = self._pending[nonce]
        self.log.info(
            "the check for {user} sent to {address} ended: {result}",
            user=pending.user,
            address=str(pending.address),
            result=result.value,
        )
        self._forget(nonce).callback(result)

    def _forget(self, nonce: bytes) -> Deferred:
        """
        Drop a check and stop its timer.

        @return: the check's L{Deferred}.
        """
        pending = self._pending.pop(nonce)
        if pending.timer is not None:
            pending.timer.cancel()
        return pending.result
