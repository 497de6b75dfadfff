# -*- test-case-name: tests.client.test_connectback -*-
"""
What the agent does with a hello its listener accepted: it authenticates
to the account's server, again if the server turned the connection away
(L{suto_client.connectback}), logs how that ended, tells its observers,
and keeps what it learned.

After the first successful authentication of an account by password, the
salted hash the server's salt yields replaces the password in the state
file: the challenge needs nothing more, and the plaintext is no longer
kept.

How an authentication ended is logged with its reason in the text.  A
verdict needs a request the server made, so every verdict is logged; an
error or a timeout is also what a forged hello gets, so those lines are
paced per server and reason (L{suto_server.core.throttle.PacedLog}).
"""

from __future__ import annotations

import hmac
import random as random_module
from functools import partial
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel

from suto_client.classic_machine import Outcome
from suto_client.connectback import connect_back
from suto_client.exchange import log_result, result_event
from suto_client.protocol import AuthResult, authenticate
from suto_client.state import Account
from suto_client.statefile import StateFileError, load_state, save_state
from suto_server.core import wire
from suto_server.core.throttle import DEFAULT_LOG_INTERVAL, PacedLog

_ENDED = "authentication for {user} against {server}: {outcome}"


class HelloAnswerer:
    """
    Answers accepted hellos by authenticating, one account at a time (the
    listener sees to that).
    """

    log = Logger()

    def __init__(
        self,
        reactor,
        state_path: str,
        timeout: float,
        random: random_module.Random,
        authenticate: Callable[..., Deferred] = authenticate,
        log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """
        @param reactor: provides TCP, time and threads.
        @param state_path: the agent's state file, where salted hashes go.
        @param timeout: seconds allowed for each connection attempt and
            each exchange, and for the retries of a connect-back the
            server turned away.
        @param random: draws the jitter of those retries.
        @param authenticate: runs one authentication, as
            L{suto_client.protocol.authenticate} does.
        @param log_interval: the least seconds between two lines about
            authentications that failed alike against one server.
        """
        self._reactor = reactor
        self._state_path = state_path
        self._timeout = timeout
        self._random = random
        self._authenticate = authenticate
        self._paced = PacedLog(reactor, log_interval)
        self._observers: list[Callable[[str, AuthResult], None]] = []
        self._running: set[Deferred] = set()

    def add_observer(
        self, observer: Callable[[str, AuthResult], None]
    ) -> None:
        """
        Have C{observer} called with the user and the L{AuthResult} of each
        hello answered.
        """
        self._observers.append(observer)

    def answer(self, account: Account, hello: wire.Hello) -> Deferred:
        """
        Authenticate C{account}, whose server sent C{hello}.

        @return: a L{Deferred} firing once the answer is over.
        """
        running = connect_back(
            partial(self._authenticate_once, account),
            self._reactor,
            self._timeout,
            self._random,
        )
        self._running.add(running)
        running.addBoth(self._forget, running)
        running.addCallback(self._finished, account)
        running.addErrback(self._crashed, account)
        return running

    def abandon(self) -> None:
        """
        Abandon the answers still running; observers receive their
        results all the same.
        """
        for running in list(self._running):
            running.cancel()

    def _authenticate_once(self, account: Account) -> Deferred:
        running = self._authenticate(
            self._reactor, account, timeout=self._timeout
        )
        return running.addCallback(self._log_result, account)

    def _log_result(self, result: AuthResult, account: Account) -> AuthResult:
        server = f"{account.server_host}:{account.server_port}"
        if result.outcome in (Outcome.ACCEPTED, Outcome.REJECTED):
            return log_result(
                result, self.log, _ENDED, user=account.user, server=server
            )
        text, ended = result_event(result, _ENDED)
        self._paced.emit(
            self.log,
            LogLevel.info,
            (account.server_host, result.outcome, result.reason),
            text,
            user=account.user,
            server=server,
            **ended,
        )
        return result

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
