"""
The endpoint agent as a service: it listens for server hellos, answers
each accepted one by authenticating, and keeps what it learns.

The state file is read again at every hello, so accounts added or removed
with C{suto-client account} take effect without a restart.  After the
first successful authentication of an account by password, the salted hash
the server's salt yields replaces the password in the state file: the
challenge needs nothing more, and the plaintext is no longer kept.
"""

from __future__ import annotations

import hmac
from typing import Callable

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from suto_client.hello import HelloListener
from suto_client.protocol import AuthResult, authenticate
from suto_client.session import Outcome
from suto_client.statefile import (
    Account,
    StateFileError,
    load_state,
    save_state,
)
from suto_server import wire

DEFAULT_HELLO_PORT = 2020
"""The UDP port SUTO servers send their hellos to."""


class _HelloPort(Service):
    """
    Listens for hellos while running, and knows the port it got.
    """

    def __init__(self, reactor, port: int, interface: str, protocol) -> None:
        self._reactor = reactor
        self._port_number = port
        self._interface = interface
        self._protocol = protocol
        self._listening = None

    @property
    def port(self) -> int | None:
        if self._listening is None:
            return None
        return self._listening.getHost().port

    def startService(self) -> None:
        self._listening = self._reactor.listenUDP(
            self._port_number, self._protocol, interface=self._interface
        )
        super().startService()

    def stopService(self):
        super().stopService()
        listening, self._listening = self._listening, None
        return listening.stopListening()


class Agent(MultiService):
    """
    The SUTO endpoint agent.
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        state_path: str,
        hello_endpoint_port: int = DEFAULT_HELLO_PORT,
        hello_interface: str = "",
        timeout: float = 10.0,
        authenticate: Callable[..., Deferred] = authenticate,
    ) -> None:
        """
        @param reactor: provides UDP, TCP, time and threads.
        @param state_path: the agent's state file.
        @param hello_endpoint_port: the UDP port to listen on; 0 picks a
            free one (see L{hello_port}).
        @param hello_interface: the address to listen on; all by default.
        @param timeout: seconds allowed for each connection attempt and
            each exchange.
        @param authenticate: runs one authentication, as
            L{suto_client.protocol.authenticate} does.
        """
        super().__init__()
        self._reactor = reactor
        self._state_path = state_path
        self._timeout = timeout
        self._authenticate = authenticate
        self._observers: list[Callable[[str, AuthResult], None]] = []
        self._running: set[Deferred] = set()
        listener = HelloListener(self._accounts, self._answer)
        self._hello = _HelloPort(
            reactor, hello_endpoint_port, hello_interface, listener
        )
        self._hello.setServiceParent(self)

    @property
    def hello_port(self) -> int | None:
        """
        The UDP port hellos are received on, once the agent is running.
        """
        return self._hello.port

    def add_observer(
        self, observer: Callable[[str, AuthResult], None]
    ) -> None:
        """
        Have C{observer} called with the user and the L{AuthResult} of each
        authentication the agent runs.
        """
        self._observers.append(observer)

    def stopService(self):
        """
        Stop listening, and abandon the authentications still running.
        """
        for running in list(self._running):
            running.cancel()
        return super().stopService()

    def _accounts(self) -> dict[str, Account]:
        try:
            return load_state(self._state_path).accounts
        except StateFileError as e:
            self.log.error("cannot use the state file: {error}", error=str(e))
            return {}

    def _answer(self, account: Account, hello: wire.Hello) -> Deferred:
        running = self._authenticate(
            self._reactor, account, timeout=self._timeout
        )
        self._running.add(running)
        running.addBoth(self._forget, running)
        running.addCallback(self._finished, account)
        running.addErrback(self._crashed, account)
        return running

    def _forget(self, result, running: Deferred):
        self._running.discard(running)
        return result

    def _finished(self, result: AuthResult, account: Account) -> None:
        if result.outcome is Outcome.ACCEPTED and result.salted_hash:
            self._keep_salted_hash(account, result)
        for observer in self._observers:
            try:
                observer(account.user, result)
            except Exception:
                self.log.failure("an authentication observer failed")

    def _crashed(self, failure, account: Account) -> None:
        self.log.failure(
            "authentication for {user} failed unexpectedly",
            failure,
            user=account.user,
        )

    def _keep_salted_hash(self, account: Account, result: AuthResult) -> None:
        """
        Replace the password of C{account} by the salted hash just proven
        right, unless the account was changed meanwhile.
        """
        try:
            state = load_state(self._state_path)
            stored = state.accounts.get(account.user)
            if stored is None or not _same_credentials(stored, account):
                self.log.info(
                    "not storing the salted hash for {user}: the account "
                    "changed during the authentication",
                    user=account.user,
                )
                return
            stored.password = None
            stored.salt = result.learned_salt
            stored.salted_hash = result.salted_hash
            save_state(self._state_path, state)
        except StateFileError as e:
            self.log.error(
                "cannot store the salted hash for {user}: {error}",
                user=account.user,
                error=str(e),
            )
            return
        self.log.info(
            "stored the salted hash for {user}; the password is no longer "
            "kept",
            user=account.user,
        )


def _same_credentials(stored: Account, used: Account) -> bool:
    return (
        stored.server_host == used.server_host
        and stored.server_port == used.server_port
        and stored.password is not None
        and used.password is not None
        and hmac.compare_digest(
            stored.password.encode("utf-8"), used.password.encode("utf-8")
        )
    )
