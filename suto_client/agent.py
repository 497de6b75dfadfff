# -*- test-case-name: tests.client.test_hello,tests.client.test_rotation -*-
"""
The endpoint agent as a service: it listens for server hellos
(L{suto_client.hello}) and answers each accepted one by authenticating
(L{suto_client.answer}); it keeps the key of every enrolled profile
rotating; and it answers its servers' check packets on the hello port
with proof of the current key (L{suto_client.checks}).

The state file is read again at every hello, so accounts added or removed
with C{suto-client account} take effect without a restart.

Each enrolled profile gets a L{ClientService} that keeps a TLS
connection (pinned, or trusted through a CA bundle) to its server and
rotates the key on it (L{suto_client.rotation}); a dropped connection is made again after a
jittered back-off, to the next of the deployment's servers when the last
attempt failed or went unanswered (L{suto_client.failover}).  The profiles are read again every rotation interval:
a new profile starts rotating, a removed one stops, and one changed by
someone else (enrolled again) restarts with what the file now holds.  A
profile whose server does not know its key stops rotating until its entry
in the state file changes, as asking again would only be refused again.
"""

from __future__ import annotations

import os
import random as random_module
from dataclasses import dataclass
from functools import partial
from typing import Callable

from twisted.application.internet import ClientService, TimerService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger

from suto_client.answer import HelloAnswerer
from suto_client.checks import CheckResponder
from suto_client.failover import FailoverEndpoint
from suto_client.hello import HelloListener
from suto_client.protocol import AuthResult, authenticate
from suto_client.rotation import (
    CommitError,
    RotationFactory,
    machine_fingerprint,
    profile_endpoint,
)
from suto_client.rotation_outcome import Report, RotationError, RotationOutcome
from suto_client.state import Account, ClientState, EnrolledProfile
from suto_client.statefile import StateFileError, load_state, save_state
from suto_server.core.throttle import DEFAULT_LOG_INTERVAL
from suto_server.core.timing import DEFAULT_ROTATION_INTERVAL

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


@dataclass
class _Rotator:
    """
    The rotation of one profile: the factory that keeps its latest key,
    and the service that keeps it connected.  The service has no parent
    once the server said it does not know the key.  It is made empty and
    filled in at once, because the factory reports to the rotator it
    belongs to: a connection of a replaced rotator, still closing, must
    not stop its successor.
    """

    user: str
    factory: RotationFactory | None = None
    service: ClientService | None = None
    endpoint: IStreamClientEndpoint | None = None


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
        rotation_interval: float = DEFAULT_ROTATION_INTERVAL,
        fingerprint: Callable[[], bytes] = machine_fingerprint,
        random_bytes: Callable[[int], bytes] = os.urandom,
        random: random_module.Random | None = None,
        rotation_endpoint: Callable[
            [object, EnrolledProfile, float], IStreamClientEndpoint
        ] = profile_endpoint,
        log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """
        @param reactor: provides UDP, TCP, time and threads.
        @param state_path: the agent's state file.
        @param hello_endpoint_port: the UDP port to listen on for hellos
            and check packets; 0 picks a free one (see L{hello_port}).
        @param hello_interface: the address to listen on; all by default.
            Agents on different addresses of one machine can share a
            port number.
        @param timeout: seconds allowed for each connection attempt and
            each exchange; a hello is answered by connections started
            within that time (L{suto_client.connectback}).
        @param authenticate: runs one authentication, as
            L{suto_client.protocol.authenticate} does.
        @param rotation_interval: seconds between two rotations of a
            profile's key (within 10%), and between two readings of the
            profiles in the state file.
        @param fingerprint: computes this machine's fingerprint hash,
            afresh for every rotation.
        @param random_bytes: returns that many fresh random bytes, for the
            rotations' junk and X25519 keys.
        @param random: draws the jitter of rotations and reconnections.
        @param rotation_endpoint: called with the reactor, a profile and
            the timeout; returns the endpoint that reaches the profile's
            server, as L{suto_client.rotation.profile_endpoint} does.
        @param log_interval: the least seconds between two log lines about
            datagrams, or about authentications that failed, from one
            source for one reason (L{suto_server.core.throttle.PacedLog}).
        """
        super().__init__()
        self._reactor = reactor
        self._state_path = state_path
        self._timeout = timeout
        self._rotation_interval = rotation_interval
        self._fingerprint = fingerprint
        self._random_bytes = random_bytes
        self._random = random_module.Random() if random is None else random
        self._rotation_endpoint = rotation_endpoint
        self._rotation_observers: list[
            Callable[[str, RotationOutcome, str], None]
        ] = []
        self._rotators: dict[str, _Rotator] = {}
        self._answerer = HelloAnswerer(
            reactor,
            state_path,
            timeout,
            self._random,
            authenticate,
            log_interval,
        )
        responder = CheckResponder(
            self._profiles, reactor, log_interval=log_interval
        )
        listener = HelloListener(
            self._accounts,
            self._answerer.answer,
            responder.answer,
            clock=reactor,
            log_interval=log_interval,
        )
        self._hello = _HelloPort(
            reactor, hello_endpoint_port, hello_interface, listener
        )
        self._hello.setServiceParent(self)
        self._rotations = MultiService()
        self._rotations.setServiceParent(self)
        follow = TimerService(rotation_interval, self._follow_profiles)
        follow.clock = reactor
        follow.setServiceParent(self)

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
        hello the agent answers.
        """
        self._answerer.add_observer(observer)

    def add_rotation_observer(
        self, observer: Callable[[str, RotationOutcome, str], None]
    ) -> None:
        """
        Have C{observer} called with the user, the L{RotationOutcome} and
        the key id the profile holds afterwards (the new one after
        L{RotationOutcome.ROTATED}) for each key rotation the agent runs.
        """
        self._rotation_observers.append(observer)

    def stopService(self):
        """
        Stop listening, abandon the authentications still running, and
        close the rotation connections.
        """
        self._answerer.abandon()
        return super().stopService()

    def _load_state(self) -> ClientState | None:
        """
        The state file's contents, or L{None} (logged) if it cannot be
        used.
        """
        try:
            return load_state(self._state_path)
        except StateFileError as e:
            self.log.error("cannot use the state file: {error}", error=str(e))
            return None

    def _accounts(self) -> dict[str, Account]:
        state = self._load_state()
        return {} if state is None else state.accounts

    def _profiles(self) -> dict[str, EnrolledProfile]:
        state = self._load_state()
        return {} if state is None else state.profiles

    def _follow_profiles(self) -> None:
        """
        Make the running rotations match the profiles in the state file.
        """
        state = self._load_state()
        if state is None:
            return
        profiles = state.profiles
        for user in list(self._rotators):
            if user not in profiles:
                self._stop_rotating(user)
        for user, profile in profiles.items():
            rotator = self._rotators.get(user)
            if rotator is not None:
                if _same_profile(rotator.factory.profile, profile):
                    continue
                self._stop_rotating(user)
            self._start_rotating(profile)

    def _start_rotating(self, profile: EnrolledProfile) -> None:
        rotator = _Rotator(profile.user)
        try:
            rotator.factory = RotationFactory(
                profile,
                clock=self._reactor,
                interval=self._rotation_interval,
                timeout=self._timeout,
                store=self._store_rotation,
                report=partial(self._rotation_reported, rotator),
                fingerprint=self._fingerprint,
                random_bytes=self._random_bytes,
                random=self._random,
            )
            rotator.endpoint = self._rotation_endpoint(
                self._reactor, profile, self._timeout
            )
        except (RotationError, ValueError) as e:
            self.log.error(
                "cannot rotate the key of {user}: {error}",
                user=profile.user,
                error=str(e),
            )
            return
        rotator.service = ClientService(
            rotator.endpoint,
            rotator.factory,
            retryPolicy=rotator.factory.retry_delay,
            clock=self._reactor,
        )
        rotator.service.setServiceParent(self._rotations)
        self._rotators[profile.user] = rotator

    def _stop_rotating(self, user: str) -> None:
        rotator = self._rotators.pop(user)
        if rotator.service.parent is not None:
            rotator.service.disownServiceParent()

    def _store_rotation(
        self, replaced: EnrolledProfile, profile: EnrolledProfile
    ) -> None:
        """
        Replace C{replaced} by C{profile} in the state file, unless the
        entry changed since (the profile was enrolled again meanwhile).

        @raise CommitError: the entry changed, or the file cannot be
            written.
        """
        try:
            state = load_state(self._state_path)
            stored = state.profiles.get(profile.user)
            if stored is None or not _same_profile(stored, replaced):
                raise CommitError(
                    "the profile changed in the state file during the "
                    "rotation"
                )
            state.profiles[profile.user] = profile
            save_state(self._state_path, state)
        except StateFileError as e:
            raise CommitError(str(e)) from None

    def _rotation_reported(self, rotator: _Rotator, report: Report) -> None:
        if (
            report.outcome is RotationOutcome.UNKNOWN_KEY
            and self._rotators.get(rotator.user) is rotator
        ):
            # Until the state file changes, asking again is pointless.
            rotator.service.disownServiceParent()
        if not report.answered and isinstance(rotator.endpoint, FailoverEndpoint):
            rotator.endpoint.move_on(report.reason or report.outcome.value)
        for observer in self._rotation_observers:
            try:
                observer(rotator.user, report.outcome, report.key_id)
            except Exception:
                self.log.failure("a rotation observer failed")


def _same_profile(left: EnrolledProfile, right: EnrolledProfile) -> bool:
    """
    Do two profile entries name the same servers, trusted the same way,
    and the same key?  Key ids
    are compared, not keys: an id names exactly one key, and is public.
    """
    return (
        left.user,
        left.server_host,
        left.server_port,
        left.pin,
        left.ca,
        left.client_cert,
        left.client_key,
        left.key_id,
        left.generation,
        left.failover,
    ) == (
        right.user,
        right.server_host,
        right.server_port,
        right.pin,
        right.ca,
        right.client_cert,
        right.client_key,
        right.key_id,
        right.generation,
        right.failover,
    )

