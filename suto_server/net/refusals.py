# -*- test-case-name: tests.net.test_refusals -*-
"""
What a TLS listener does with the connections that end before the protocol
behind TLS hears from them, and whom it tells.

The protocol factory (its connection gate) may refuse a connection by
building no protocol.  Such a connection is normally closed before the TLS
handshake, which costs a refused peer nothing of ours.  A source refused
for its penalty (failed attempts) is the exception, within a budget: a
person at an enrollment desk who typed the one-time password wrong a few
times must be told to wait, and how long, and only a message from the
server the device trusts can say so.  So a refused source that is
penalised gets the TLS handshake and then one line, C{SUTO_ERROR_PENALTY_<n>}
with the seconds left, and the connection closes (docs/PROTOCOL.md,
"Penalised sources").  A handshake costs the server CPU, so these notices
are limited (L{PenaltyNotices}): a few a second in all, and one per source
per few seconds; past the budget a penalised source is closed before TLS,
as before.

The listener's L{IListenerWitness} hears of refusals and of handshakes
that a peer began but never finished (most often: it does not trust our
certificate), which is what an operator waiting for that device needs to
know.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, LogLevel
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import Interface, implementer

from suto_server.core import wire
from suto_server.net.tls_read import SettledReadTLSProtocol

#: Penalty notices a listener may send in one second, all sources together.
NOTICES_PER_SECOND = 5

#: Seconds before the same source is sent another penalty notice.
NOTICE_EVERY = 5.0

#: Seconds a penalised peer has to finish the handshake and read its
#: notice before the connection is aborted.
NOTICE_TIMEOUT = 10.0


class IListenerWitness(Interface):
    """
    Told of the connections a TLS listener lost before the protocol behind
    TLS could hear from them.
    """

    def refused(host):
        """
        The protocol factory refused a connection from C{host} (the
        connection gate's limits).
        """

    def handshake_failed(host, reason):
        """
        The TLS handshake of a connection from C{host} failed, for
        C{reason} (OpenSSL's words, such as C{tlsv1 alert unknown ca}, or
        that the peer gave up: it does not trust our certificate).
        """


@implementer(IListenerWitness)
class _Unwatched:
    """
    The witness of a listener nobody watches.
    """

    def refused(self, host) -> None:
        pass

    def handshake_failed(self, host, reason) -> None:
        pass


UNWATCHED = _Unwatched()


@implementer(IListenerWitness)
class HandshakeLog:
    """
    The witness of a listener that no authentication waits on (the
    verification API, the console): it logs each failed handshake, which
    on a listener that takes client certificates is most often a refused
    one (revoked, expired, from another CA), paced by source so that no
    peer can make the server write more.

    @param listener: the listener's name, for the log line.
    @param paced: the server's paced logging
        (L{suto_server.rules.gate.ConnectionGate.paced}).
    """

    log = Logger()

    def __init__(self, listener: str, paced) -> None:
        self._listener = listener
        self._paced = paced

    def refused(self, host) -> None:
        """
        Nothing: the factory that refused the connection logs it.
        """

    def handshake_failed(self, host, reason) -> None:
        self._paced(
            self.log,
            LogLevel.warn,
            host,
            "tls_handshake_failed",
            "{listener}: the TLS handshake of a connection from {source} "
            "failed ({cause}): a client certificate revoked, expired or from "
            "another CA is refused so",
            listener=self._listener,
            cause=reason,
        )


class PenaltyNotices:
    """
    Which penalised sources are told their penalty: the budget of TLS
    handshakes spent on connections that are refused anyway.

    @param per_second: notices in one second, all sources together.
    @param every: seconds between two notices to the same source.
    @param max_sources: the most sources remembered; when full (and none
        may be forgotten yet) no notice is sent, so memory stays bounded.
    """

    def __init__(
        self,
        per_second: int = NOTICES_PER_SECOND,
        every: float = NOTICE_EVERY,
        max_sources: int = 4096,
    ) -> None:
        self._per_second = per_second
        self._every = every
        self._max_sources = max_sources
        self._second = None
        self._sent_this_second = 0
        self._last: dict[str, float] = {}

    def allow(self, source: str, now: float) -> bool:
        """
        May a notice go to C{source} (an address, or the source a gate
        counts it as) at C{now}?  If so, it counts as sent.
        """
        if int(now) != self._second:
            self._second = int(now)
            self._sent_this_second = 0
        if self._sent_this_second >= self._per_second:
            return False
        last = self._last.get(source)
        if last is not None and now - last < self._every:
            return False
        if last is None and len(self._last) >= self._max_sources:
            self._last = {
                key: when for key, when in self._last.items() if now - when < self._every
            }
            if len(self._last) >= self._max_sources:
                return False
        self._last[source] = now
        self._sent_this_second += 1
        return True


class _PenaltyNotice(Protocol):
    """
    Behind TLS, tells a penalised peer how long to wait and closes; a peer
    that does not finish the handshake in L{NOTICE_TIMEOUT} is dropped.
    """

    def __init__(self, seconds: float, clock) -> None:
        self._line = wire.encode(
            wire.Error(wire.penalty_code(seconds)), wire.Framing.FRAMED
        )
        self._clock = clock
        self._timeout = None

    def connectionMade(self) -> None:
        self._timeout = self._clock.callLater(
            NOTICE_TIMEOUT, self.transport.abortConnection
        )
        # TLS holds the line until the handshake is done.
        self.transport.write(self._line)
        self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()


def _openssl_reason(error: SSL.Error) -> str:
    """
    @return: OpenSSL's own words for C{error} (its error queue's reasons),
        which say whether the peer refused our certificate.
    """
    queue = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [entry[-1] for entry in queue if isinstance(entry, tuple) and entry]
    return ", ".join(str(reason) for reason in reasons) or "TLS error"


class _WitnessedTLSProtocol(SettledReadTLSProtocol):
    """
    TLS that tells the listener's witness when a handshake the peer began
    never finished: OpenSSL failed it, or the peer gave up on it (a client
    that does not trust our certificate may just close the connection,
    without an alert).  A peer that sent nothing did not begin one.

    Its reads are the listener's settled reads (L{SettledReadTLSProtocol}).
    """

    host = None
    _began = False

    def makeConnection(self, transport):
        # Only the first read tells whether the peer began: it is taken by
        # an attribute of this connection, which then gives way to the
        # class's own dataReceived, so that no later read pays for it.
        self.dataReceived = self._first_read
        super().makeConnection(transport)

    def _first_read(self, data):
        self._began = True
        del self.dataReceived
        self.dataReceived(data)

    def connectionLost(self, reason):
        self.__dict__.pop("dataReceived", None)
        failure = self._reason or reason
        if not self._handshakeDone:
            if failure.check(SSL.Error):
                self.factory.witness.handshake_failed(
                    self.host, _openssl_reason(failure.value)
                )
            elif self._began:
                self.factory.witness.handshake_failed(
                    self.host, "the peer closed the connection during the handshake"
                )
        super().connectionLost(reason)


class RefusingTLSFactory(TLSMemoryBIOFactory):
    """
    TLS that lets the wrapped factory refuse a connection (by building
    L{None}, as a plain TCP factory may) and tells C{witness} about
    refusals and failed handshakes.

    A refused connection is closed before TLS, unless its source is
    penalised and L{PenaltyNotices} allows a notice: the wrapped factory's
    C{gate} (L{suto_server.rules.limits.ConnectionGate}) says how long the
    penalty lasts.
    """

    protocol = _WitnessedTLSProtocol

    def __init__(
        self, contextFactory, isClient, wrappedFactory, witness=UNWATCHED
    ) -> None:
        super().__init__(contextFactory, isClient, wrappedFactory)
        self.witness = witness
        self.notices = PenaltyNotices()

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None)
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            self.witness.refused(host)
            wrapped = self._notice(host)
            if wrapped is None:
                return None
        protocol = self.protocol(self, wrapped)
        protocol.host = host
        return protocol

    def _notice(self, host) -> _PenaltyNotice | None:
        """
        @return: the protocol telling C{host} its penalty, if it is refused
            for one and the budget allows; else L{None}.
        """
        gate = getattr(self.wrappedFactory, "gate", None)
        penalty_left = getattr(gate, "penalty_left", None)
        if host is None or penalty_left is None:
            return None
        seconds = penalty_left(host)
        # One notice per source, not per address: a /64 stepping through
        # its addresses must not take the whole budget.
        source = gate.source(host)
        if seconds is None or not self.notices.allow(source, gate.clock.seconds()):
            return None
        return _PenaltyNotice(seconds, gate.clock)
