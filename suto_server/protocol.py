"""
Twisted adapters for the server's side of the SUTO exchange.

The protocol is a thin shell: bytes go into a L{wire.Decoder}, messages go
into a L{ServerSession}, and the actions the session returns are carried
out here (write, verify through the cred portal, close, report the
verdict).  One factory serves one listener and one framing: the TLS
listener speaks the framed protocol, the opt-in plaintext listener speaks
SUTO 1.3.2's legacy framing.
"""

from __future__ import annotations

from typing import Callable

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from suto_server import wire
from suto_server.credentials import SaltedChallenge
from suto_server.hashpool import HashPoolBusy
from suto_server.realm import IAuthenticatedUser
from suto_server.rendezvous import Rendezvous, Verdict
from suto_server.session import Close, Finish, Send, ServerSession, Verify

#: Sent (framed only) to a connection that answers no pending request.
ERROR_NO_REQUEST = "NO_REQUEST"


class ServerProtocol(Protocol, TimeoutMixin):
    """
    One device's connection, answering one pending request.
    """

    log = Logger()

    def __init__(self, factory: ServerFactory) -> None:
        self.factory = factory
        self.callLater = factory.clock.callLater
        self._request = None
        self._session: ServerSession | None = None
        self._decoder = wire.Decoder(factory.framing)
        self._closing = False
        self._lost = False

    def connectionMade(self) -> None:
        source = getattr(self.transport.getPeer(), "host", None)
        self._source = source
        self._request = self.factory.rendezvous.claim(source) if source else None
        if self._request is None:
            self.factory.log.warn(
                "refused a connection from {source}: no authentication is "
                "waiting for it",
                source=source,
            )
            if self.factory.framing is wire.Framing.FRAMED:
                self.transport.write(
                    wire.encode(wire.Error(ERROR_NO_REQUEST), self.factory.framing)
                )
            self._closing = True
            self.transport.loseConnection()
            return
        self._session = ServerSession(
            self.factory.framing,
            self.factory.salt_for(self._request.user),
            self.factory.make_rsalt,
        )
        self.setTimeout(self.factory.exchange_timeout)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.resetTimeout()
        try:
            self._decoder.receive_data(data)
            while not self._closing:
                message = self._decoder.next_event()
                if message is wire.NEED_DATA:
                    break
                self._perform(self._session.receive(message))
        except wire.ProtocolError as error:
            self._perform(self._session.protocol_error(error))

    def timeoutConnection(self) -> None:
        self._perform(
            self._session.protocol_error(
                wire.ProtocolError(
                    wire.ERROR_TIMEOUT,
                    "the device did not finish the exchange in time",
                )
            )
        )

    def connectionLost(self, reason) -> None:
        self._lost = True
        self.setTimeout(None)
        if self._request is not None:
            self.factory.rendezvous.finish(
                self._request, Verdict.ERROR, "connection lost"
            )

    def _perform(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.write(
                    wire.encode(action.message, self.factory.framing)
                )
            elif isinstance(action, Verify):
                self._verify(action)
            elif isinstance(action, Close):
                self._closing = True
                self.setTimeout(None)
                self.transport.loseConnection()
            elif isinstance(action, Finish):
                self._finish(action)

    def _verify(self, action: Verify) -> None:
        # While the portal works the connection stays lockstep-quiet; the
        # exchange timeout keeps running so a stuck check still ends.
        credentials = SaltedChallenge(
            self._request.user, action.rsalt, action.response
        )
        d = self.factory.portal.login(credentials, None, IAuthenticatedUser)
        d.addCallbacks(self._login_succeeded, self._login_failed)

    def _login_succeeded(self, result) -> None:
        if not self._lost:
            self._perform(self._session.verified(True))

    def _login_failed(self, failure) -> None:
        if self._lost:
            return
        if failure.check(UnauthorizedLogin):
            self._perform(self._session.verified(False))
        elif failure.check(HashPoolBusy):
            self._perform(self._session.unavailable("hash pool saturated"))
        else:
            self.log.failure(
                "checking the response for {user} failed",
                failure,
                user=self._request.user,
            )
            self._perform(self._session.unavailable("internal error"))

    def _finish(self, action: Finish) -> None:
        self.factory.log.info(
            "authentication for {user} from {source}: {verdict}"
            "{reason_text}",
            user=self._request.user,
            source=self._source,
            verdict=action.verdict.value,
            reason=action.reason,
            reason_text=f" ({action.reason})" if action.reason else "",
        )
        self.factory.rendezvous.finish(
            self._request, action.verdict, action.reason
        )


class ServerFactory(Factory):
    """
    Builds L{ServerProtocol}s for one listener.

    @param salt_for: returns the salt of a user's stored hash, or L{None}
        if the user has no usable hash.
    @param make_rsalt: returns a fresh random salt.
    @param exchange_timeout: seconds a connected device may stay silent
        before it is dropped (a login grace time).
    """

    log = Logger()
    noisy = False

    def __init__(
        self,
        *,
        framing: wire.Framing,
        rendezvous: Rendezvous,
        portal,
        salt_for: Callable[[str], str | None],
        make_rsalt: Callable[[], str],
        clock: IReactorTime,
        exchange_timeout: float = 10.0,
    ) -> None:
        self.framing = framing
        self.rendezvous = rendezvous
        self.portal = portal
        self.salt_for = salt_for
        self.make_rsalt = make_rsalt
        self.clock = clock
        self.exchange_timeout = exchange_timeout

    def buildProtocol(self, addr) -> ServerProtocol:
        return ServerProtocol(self)
