# -*- test-case-name: tests.client.test_protocol,tests.client.test_enrollment,tests.client.test_rotation -*-
"""
Running one of the agent's conversations (L{suto_client.conversation}) on
a connection to a SUTO server.

L{ConversationProtocol} is the part every conversation shares on the wire:
bytes in through a L{wire.Decoder} and into the machine, the machine's
L{Send} and L{Close} carried out on the transport, a timeout scheduled on
an injected clock, and a lost connection told to the machine in words safe
to log (L{describe_failure}).  Each protocol built on it carries out the
actions that are its conversation's own.

L{SingleExchangeProtocol} adds what a conversation that runs once, for a
caller waiting on its result, needs: a cancellable C{finished}
L{Deferred}, and a connection attempt that failed ending the exchange.
L{run_exchange} connects one and makes sure no attempt outlives it;
L{log_result} logs how it ended, the reason in the text.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet import error as internet_error
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from suto_client.conversation import Conversation
from suto_client.tls import CertificateRejected, PinMismatch
from suto_server.core import wire
from suto_server.core.machine import Close, Send


class ConversationProtocol(Protocol):
    """
    Carries out one L{Conversation} on a connection.

    Subclasses say when the conversation is over (L{_ended}), after which
    the server's bytes are ignored, and carry out the actions other than
    L{Send} and L{Close} (L{_perform}).
    """

    def __init__(
        self,
        conversation: Conversation,
        framing: wire.Framing,
        clock: IReactorTime,
        timeout: float,
    ) -> None:
        """
        @param conversation: the machine to run.
        @param framing: the framing the server speaks.
        @param clock: schedules the timeouts.
        @param timeout: seconds allowed for each exchange, the first
            counted from connecting.
        """
        self._conversation = conversation
        self._framing = framing
        self._clock = clock
        self._timeout = timeout
        self._decoder = wire.Decoder(framing)
        self._timer = None

    def connectionMade(self) -> None:
        self._start_timer()
        self._carry_out(self._conversation.start())

    def dataReceived(self, data: bytes) -> None:
        if self._ended():
            return
        try:
            self._decoder.receive_data(data)
            while not self._ended():
                message = self._decoder.next_event()
                if message is wire.NEED_DATA:
                    break
                self._carry_out(self._conversation.receive(message))
        except wire.ProtocolError as e:
            self._carry_out(self._conversation.protocol_error(e))

    def connectionLost(self, reason: Failure = None) -> None:
        self.transport = None
        self._carry_out(
            self._conversation.connection_lost(describe_failure(reason))
        )

    def _ended(self) -> bool:
        """
        Whether the conversation is over, so nothing the server sends
        matters any more.
        """
        raise NotImplementedError()

    def _perform(self, action: object) -> None:
        """
        Carry out C{action}, one of the conversation's own.
        """
        raise NotImplementedError()

    def _start_timer(self) -> None:
        """
        Give the exchange that starts now its timeout.
        """
        self._timer = self._clock.callLater(self._timeout, self._expire)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._carry_out(self._conversation.timed_out())

    def _carry_out(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.write(
                    wire.encode(action.message, self._framing)
                )
            elif isinstance(action, Close):
                if self.transport is not None:
                    if action.abort:
                        self.transport.abortConnection()
                    else:
                        self.transport.loseConnection()
            else:
                self._perform(action)


class SingleExchangeProtocol(ConversationProtocol):
    """
    Carries out a conversation that runs once, for a caller waiting on its
    result.  The conversation also offers C{abandon(reason)}, which ends
    it when the caller gives up.

    @ivar finished: fires with the result once the exchange ends, exactly
        once; cancelling it abandons the exchange.  Subclasses fire it.
    """

    #: The reason an exchange ends with when its caller gives up on it.
    _abandoned = "the exchange was abandoned"

    def __init__(self, conversation, framing, clock, timeout) -> None:
        """
        Takes the arguments of L{ConversationProtocol}.
        """
        self.finished: Deferred = Deferred(self._cancel)
        super().__init__(conversation, framing, clock, timeout)

    def connection_failed(self, reason: Failure) -> None:
        """
        The connection could not be made: end the exchange.  A connection
        attempt that timed out ends it as a timeout.
        """
        if reason.check(internet_error.TimeoutError):
            self._carry_out(self._conversation.timed_out())
        else:
            self._carry_out(
                self._conversation.connection_lost(describe_failure(reason))
            )

    def _ended(self) -> bool:
        return self.finished.called

    def _cancel(self, finished: Deferred) -> None:
        self._carry_out(self._conversation.abandon(self._abandoned))


def run_exchange(
    endpoint: IStreamClientEndpoint, protocol: SingleExchangeProtocol
) -> Deferred:
    """
    Connect C{protocol} through C{endpoint}; a connection that cannot be
    made ends its exchange.

    @return: C{protocol.finished}.
    """
    attempt = connectProtocol(endpoint, protocol)
    attempt.addErrback(protocol.connection_failed)

    def stop_connecting(result):
        # The exchange can end before the connection is made (abandoned):
        # then the pending attempt must not linger.
        if not attempt.called:
            attempt.cancel()
        return result

    return protocol.finished.addBoth(stop_connecting)


def log_result(result, log: Logger, text: str, **fields):
    """
    Log how an exchange ended, with its outcome and its secret-free
    reason, and pass C{result} on; added as a callback to C{finished}.

    @param result: the exchange's result, with an C{outcome} enum and a
        C{reason}.
    @param log: the logger of the module that ran the exchange.
    @param text: the format of the event, naming C{{outcome}} and
        C{fields}.
    """
    text, ended = result_event(result, text)
    log.info(text, **fields, **ended)
    return result


def result_event(result, text: str) -> tuple[str, dict]:
    """
    The format and the fields of the line that says how an exchange
    ended: C{text}, then the reason, which the rendered text must carry
    (an operator reading the text log needs the wrong pin or the missing
    client certificate as much as one reading the JSON log).

    @param result: as L{log_result}'s.
    @return: the format, and the C{outcome} and C{reason} fields.
    """
    if result.reason:
        text += ": {reason}"
    return text, {"outcome": result.outcome.value, "reason": result.reason}


def describe_failure(reason: Failure | None) -> str:
    """
    Say why a connection ended or could not be made, in words safe to log:
    exception types, certificate fingerprints and OpenSSL's reasons, never
    data from the stream.
    """
    if reason is None or reason.check(internet_error.ConnectionDone):
        return "the server closed the connection"
    if reason.check(PinMismatch, CertificateRejected):
        return f"TLS: {reason.value}"
    if reason.check(SSL.Error):
        return _describe_tls_error(reason.value)
    if reason.check(internet_error.ConnectionRefusedError):
        return "connection refused"
    if reason.check(internet_error.ConnectionLost):
        return "the connection was lost"
    if reason.check(CancelledError):
        return "the connection attempt was abandoned"
    return f"connection failed: {reason.type.__name__}"


def _describe_tls_error(error: SSL.Error) -> str:
    """
    Name OpenSSL's reasons for a failed handshake, such as the server's
    C{certificate required} alert when it demands a client certificate.
    """
    reasons = []
    for entry in error.args[0] if error.args else ():
        if isinstance(entry, tuple) and entry and isinstance(entry[-1], str):
            reasons.append(entry[-1][:100])
    if not reasons:
        return "TLS handshake failed"
    return "TLS handshake failed: " + "; ".join(reasons[:4])
