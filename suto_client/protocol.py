# -*- test-case-name: tests.client.test_ca,tests.client.test_protocol -*-
"""
The agent's connection to a SUTO server: bytes in, through the wire
decoder, into a L{ClientClassic}; actions out, as bytes, hash computations,
and finally an L{AuthResult}.

L{ClassicClientProtocol} only carries out what its L{ClientClassic}
decides.  The final hash is computed off the reactor thread (crypt is
deliberately slow) by a function the protocol is given, so tests can
compute it synchronously.
L{authenticate} builds the connection from an L{Account} and never fails:
every problem becomes an L{Outcome.ERROR} or L{Outcome.TIMEOUT} result with
a reason that holds no secret, and says whether the server turned the
connection away before it began (L{AuthResult.turned_away}), which is
worth trying again soon.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from suto_client.classic_machine import ClientClassic, ComputeHash, Finish, Outcome

# describe_failure is part of this module's interface too: it says why the
# agent's connection to its server failed.
from suto_client.exchange import (
    SingleExchangeProtocol,
    describe_failure,
    run_exchange,
)
from suto_client.state import Account
from suto_client.tls import (
    authority_client_creator,
    load_client_identity,
    pinned_client_creator,
)
from suto_server.core import libxcrypt, schemes, wire


@dataclass(frozen=True)
class AuthResult:
    """
    How one authentication ended.

    @ivar outcome: the verdict, or why there was none.
    @ivar reason: a short explanation for logs and operators; never a
        secret.
    @ivar learned_salt: the password salt the server sent, when the
        exchange took the C{SUTO_SALTA_} path and was accepted.
    @ivar salted_hash: C{crypt(password, learned_salt)}, set with
        C{learned_salt}, so the agent can forget the password.
    @ivar turned_away: the connection was refused, or closed by the server
        before its first message, and not for want of TLS trust: what a
        server over one of its connection limits does (docs/PROTOCOL.md
        §4), so trying again soon may succeed.
    """

    outcome: Outcome
    reason: str = ""
    learned_salt: str | None = None
    salted_hash: str | None = field(default=None, repr=False)
    turned_away: bool = False


#: How a connection the server turned away ends: refused, or closed before
#: a message, without TLS ever failing (a pin mismatch, a rejected
#: certificate and a TLS alert are other failures, never tried again).
_TURNED_AWAY = (
    internet_error.ConnectionRefusedError,
    internet_error.ConnectionDone,
    internet_error.ConnectionLost,
)


@dataclass(frozen=True)
class Derivation:
    """
    The result of a L{ComputeHash}.

    @ivar response: the final hash to send.
    @ivar salted_hash: the salted hash it was computed from.
    """

    response: str = field(repr=False)
    salted_hash: str = field(repr=False)


def derive_response(
    account: Account, salt: str | None, rsalt: str
) -> Derivation:
    """
    Compute the final hash C{crypt(crypt(password, salt), rsalt)}.  This
    blocks for as long as crypt takes: call it in a thread.

    @param salt: the password salt the server sent, or L{None} to use the
        account's cached salted hash.
    @raise libxcrypt.CryptError: a salt is not one crypt accepts.
    @raise ValueError: the account lacks the credential this path needs.
    """
    if salt is None:
        salted = account.salted_hash
    elif account.password is None:
        raise ValueError("the account has no password")
    else:
        salted = libxcrypt.crypt(account.password, salt)
    if salted is None:
        raise ValueError("the account has no salted hash")
    return Derivation(schemes.challenge_response(salted, rsalt), salted)


Deriver = Callable[[Account, "str | None", str], Deferred]


class ClassicClientProtocol(SingleExchangeProtocol):
    """
    Runs one classic-challenge exchange on a connection to a SUTO server.

    @ivar finished: fires with the L{AuthResult} once the exchange ends,
        exactly once; cancelling it abandons the exchange, which then ends
        as L{Outcome.ERROR}.
    """

    log = Logger()

    def __init__(
        self,
        account: Account,
        framing: wire.Framing,
        clock: IReactorTime,
        timeout: float,
        derive: Deriver,
    ) -> None:
        """
        @param account: whose credentials answer the challenge.
        @param framing: the framing the server speaks.
        @param clock: schedules the exchange's timeout.
        @param timeout: seconds from connecting to the verdict.
        @param derive: called with the account, the password salt (or
            L{None}) and the random salt; returns a L{Deferred} firing with
            a L{Derivation}.
        """
        super().__init__(
            ClientClassic(framing, account.salted_hash is not None),
            framing,
            clock,
            timeout,
        )
        self._account = account
        self._derive = derive
        self._learned: tuple[str, str] | None = None
        self._heard = False
        self._turned_away = False

    def dataReceived(self, data: bytes) -> None:
        self._heard = self._heard or bool(data)
        super().dataReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:
        self._note_loss(reason)
        super().connectionLost(reason)

    def connection_failed(self, reason: Failure) -> None:
        self._note_loss(reason)
        super().connection_failed(reason)

    def _note_loss(self, reason: Failure | None) -> None:
        """
        Remember whether the server turned the connection away: it went
        before the server said anything, as a refusal does.
        """
        self._turned_away = not self._heard and (
            reason is None or reason.check(*_TURNED_AWAY) is not None
        )

    def _hashed(self, derivation: Derivation, salt: str | None) -> None:
        if salt is not None:
            self._learned = (salt, derivation.salted_hash)
        self._carry_out(self._conversation.hashed(derivation.response))

    def _hash_failed(self, reason: Failure) -> None:
        self.log.info(
            "could not compute the response for {user}: {error}",
            user=self._account.user,
            error=reason.type.__name__,
        )
        self._carry_out(
            self._conversation.hash_failed("could not compute the response")
        )

    def _perform(self, action: object) -> None:
        if isinstance(action, ComputeHash):
            self._derive(
                self._account, action.salt, action.rsalt
            ).addCallbacks(
                self._hashed,
                self._hash_failed,
                callbackArgs=(action.salt,),
            )
        elif isinstance(action, Finish):
            self._finish(action)

    def _finish(self, finish: Finish) -> None:
        self._stop_timer()
        learned = (None, None)
        if finish.outcome is Outcome.ACCEPTED and self._learned is not None:
            learned = self._learned
        self._learned = None
        if not self.finished.called:
            self.finished.callback(
                AuthResult(
                    finish.outcome,
                    finish.reason,
                    *learned,
                    turned_away=self._turned_away,
                )
            )


def client_endpoint(
    reactor,
    account: Account,
    timeout: float,
    tls_trust: IOpenSSLClientConnectionCreator | None = None,
) -> IStreamClientEndpoint:
    """
    The endpoint that reaches C{account}'s server: plain TCP for a legacy
    account, TLS otherwise.

    @param timeout: seconds allowed for the TCP connection attempt.
    @param tls_trust: how to check the server's certificate; by default,
        as the account says (L{account_trust}).
    @raise ValueError: the account's server address is not an IP address,
        a TLS account has no way to check the server's certificate, or one
        of its TLS files is unusable
        (L{suto_client.tls.ClientTLSError}).
    """
    address = ipaddress.ip_address(account.server_host)
    if address.version == 6:
        tcp = TCP6ClientEndpoint(
            reactor, account.server_host, account.server_port, timeout
        )
    else:
        tcp = TCP4ClientEndpoint(
            reactor, account.server_host, account.server_port, timeout
        )
    if account.legacy:
        return tcp
    if tls_trust is None:
        tls_trust = account_trust(account)
    return wrapClientTLS(tls_trust, tcp)


def rereading_client_endpoint(
    reactor, account: Account, timeout: float
) -> IStreamClientEndpoint:
    """
    An endpoint for a service that connects again and again: like
    L{client_endpoint}, but made afresh at every C{connect}, so a renewed
    CA bundle or client certificate is used from the next connection on,
    as it is for an account.

    @raise ValueError: as L{client_endpoint}, checked once now; a file
        that becomes unusable later fails that connection attempt.
    """
    client_endpoint(reactor, account, timeout)
    return _RereadingEndpoint(reactor, account, timeout)


@implementer(IStreamClientEndpoint)
@dataclass(frozen=True)
class _RereadingEndpoint:
    reactor: object
    account: Account
    timeout: float

    def connect(self, protocolFactory) -> Deferred:
        try:
            endpoint = client_endpoint(self.reactor, self.account, self.timeout)
        except ValueError:
            return fail()
        return endpoint.connect(protocolFactory)


def account_trust(account: Account) -> IOpenSSLClientConnectionCreator:
    """
    The TLS client settings a TLS account describes: trust through its CA
    bundle if it has one, else its pin; present its client certificate if
    it has one.  The files are read now, so a renewed CA bundle or client
    certificate is used from the next connection on.

    @raise ValueError: the account has neither a CA bundle nor a pin, or
        a client certificate without its key (or the reverse).
    @raise suto_client.tls.ClientTLSError: a file is unusable.
    """
    identity = None
    if account.client_cert is not None or account.client_key is not None:
        if account.client_cert is None or account.client_key is None:
            raise ValueError(
                "a client certificate needs its key, and the key its "
                "certificate"
            )
        identity = load_client_identity(account.client_cert, account.client_key)
    if account.ca is not None:
        return authority_client_creator(account.server_host, account.ca, identity)
    if account.pin is not None:
        return pinned_client_creator(account.pin, identity)
    raise ValueError(
        "a TLS account needs the server's certificate pin or a CA bundle"
    )


def authenticate(
    reactor,
    account: Account,
    *,
    timeout: float = 10.0,
    tls_trust: IOpenSSLClientConnectionCreator | None = None,
) -> Deferred:
    """
    Connect to C{account}'s server and answer its challenge.

    The connection attempt and the exchange each get C{timeout} seconds.
    The caller logs the result: the agent paces its lines
    (L{suto_client.agent}).

    @param reactor: provides TCP, time and a thread pool for crypt.
    @param tls_trust: how to check the server's certificate; by default,
        as the account says (L{account_trust}).
    @return: a L{Deferred} that fires with an L{AuthResult} and never
        fails; cancelling it abandons the exchange.
    """
    if account.password is None and account.salted_hash is None:
        return succeed(
            AuthResult(Outcome.ERROR, "the account has no credentials")
        )
    try:
        endpoint = client_endpoint(reactor, account, timeout, tls_trust)
    except ValueError as e:
        return succeed(AuthResult(Outcome.ERROR, str(e)))
    return _run(reactor, endpoint, account, timeout)


def _run(reactor, endpoint, account: Account, timeout: float) -> Deferred:
    def derive(account, salt, rsalt):
        return deferToThreadPool(
            reactor,
            reactor.getThreadPool(),
            derive_response,
            account,
            salt,
            rsalt,
        )

    framing = wire.Framing.LEGACY if account.legacy else wire.Framing.FRAMED
    protocol = ClassicClientProtocol(
        account, framing, reactor, timeout, derive
    )
    return run_exchange(endpoint, protocol)
