# -*- test-case-name: tests.client.test_enrollment -*-
"""
Running an enrollment (L{suto_client.enrollment_machine}) on a connection.

L{EnrollmentProtocol} carries the machine's actions out on a connection
and computes the hash off the reactor thread.  Its timeout runs from
connecting, and starts again when the enrollment data goes out: the
server then commits the profile before it answers, which may take up to
its commit bound, so the agent waits for the answer longer than that
(L{timing.confirmation_wait}, docs/PROTOCOL.md §8.2) rather than give up
on an enrollment the server is about to confirm.  L{enroll} connects to
a server as an account would (L{suto_client.protocol.client_endpoint}: its
certificate pinned or vouched for by a CA bundle, with a client
certificate if one is given) and never fails: every problem becomes an
L{EnrollOutcome.ERROR} or L{EnrollOutcome.TIMEOUT} result with a reason
that holds no secret.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from suto_client.classic_machine import ComputeHash
from suto_client.enrollment_machine import (
    ClientEnrollment,
    EnrollmentError,
    EnrollOutcome,
    Finish,
)
from suto_client.exchange import (
    SingleExchangeProtocol,
    log_result,
    run_exchange,
)
from suto_client.fingerprint import (
    FingerprintError,
    IFingerprintSource,
    compute_fingerprint,
    default_sources,
)
from suto_client.protocol import Derivation, client_endpoint
from suto_client.state import Account, EnrolledProfile
from suto_client.tls import normalise_pin
from suto_server.core import keyschedule, libxcrypt, schemes, timing, wire
from suto_server.core.machine import Send

#: Seconds allowed by default for the connection and, again, for the
#: conversation: the one-time password's hash runs on the server too.
DEFAULT_TIMEOUT = 30.0

_log = Logger()


@dataclass(frozen=True)
class EnrollResult:
    """
    How one enrollment ended.

    @ivar outcome: the verdict, or why there was none.
    @ivar reason: a short explanation for people; never a secret.
    @ivar profile: for an enrolled outcome, the profile to store.
    """

    outcome: EnrollOutcome
    reason: str = ""
    profile: EnrolledProfile | None = None


def derive_salted_response(password: str, salt: str, rsalt: str) -> Derivation:
    """
    Compute C{crypt(password, salt)}, which the enrollment keys are derived
    from, and the response C{crypt(crypt(password, salt), rsalt)}.  This
    blocks for as long as crypt takes: call it in a thread.

    @raise libxcrypt.CryptError: a salt is not one crypt accepts, or the
        password is out of crypt's bounds.
    """
    salted = libxcrypt.crypt(password, salt)
    return Derivation(schemes.challenge_response(salted, rsalt), salted)


Deriver = Callable[[str, str], Deferred]


class EnrollmentProtocol(SingleExchangeProtocol):
    """
    Runs one enrollment on a framed connection to a SUTO server.

    @ivar finished: fires with the L{EnrollResult} once the enrollment
        ends, exactly once; cancelling it abandons the enrollment, which
        then ends as L{EnrollOutcome.ERROR}.
    """

    log = Logger()
    _abandoned = "the enrollment was abandoned"

    def __init__(
        self,
        enrollment: ClientEnrollment,
        clock: IReactorTime,
        timeout: float,
        derive: Deriver,
        *,
        server_host: str,
        server_port: int,
        pin: str | None,
        ca: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
    ) -> None:
        """
        @param enrollment: the conversation to run.
        @param clock: schedules the enrollment's timeout.
        @param timeout: seconds from connecting to the confirmation, and
            at least from sending the enrollment data to the confirmation
            (longer when the server's commit may take longer).
        @param derive: called with the password salt and the random salt;
            returns a L{Deferred} firing with a L{Derivation}.  It holds
            the password, so this protocol never does.
        @param server_host: the server's address, as the profile stores it.
        @param server_port: the server's port, likewise.
        @param pin: the pin of the certificate the connection was checked
            against, likewise, or L{None} if it was checked with C{ca}.
        @param ca: the CA bundle the connection was checked with, and
        @param client_cert: the client certificate it presented, with
        @param client_key: its key, likewise.
        """
        super().__init__(enrollment, wire.Framing.FRAMED, clock, timeout)
        self._derive = derive
        self._server = dict(
            server_host=server_host,
            server_port=server_port,
            pin=pin,
            ca=ca,
            client_cert=client_cert,
            client_key=client_key,
        )

    def _hashed(self, derivation: Derivation) -> None:
        self._carry_out(
            self._conversation.hashed(
                derivation.salted_hash, derivation.response
            )
        )

    def _hash_failed(self, reason: Failure) -> None:
        self.log.info(
            "could not compute the enrollment response: {error}",
            error=reason.type.__name__,
        )
        self._carry_out(
            self._conversation.hash_failed("could not compute the response")
        )

    def _carry_out(self, actions: list) -> None:
        if any(
            isinstance(action, Send) and isinstance(action.message, wire.EnrollData)
            for action in actions
        ):
            self._await_confirmation()
        super()._carry_out(actions)

    def _await_confirmation(self) -> None:
        """
        The data goes out: give the server's commit its bound, and the
        answer its way back, before the enrollment times out.
        """
        self._stop_timer()
        self._timer = self._clock.callLater(
            timing.confirmation_wait(self._timeout), self._expire
        )

    def _perform(self, action: object) -> None:
        if isinstance(action, ComputeHash):
            self._derive(action.salt, action.rsalt).addCallbacks(
                self._hashed, self._hash_failed
            )
        elif isinstance(action, Finish):
            self._finish(action)

    def _finish(self, finish: Finish) -> None:
        self._stop_timer()
        if self.finished.called:
            return
        profile = None
        if finish.outcome is EnrollOutcome.ENROLLED:
            profile = EnrolledProfile(
                user=self._conversation.user,
                **self._server,
                key=finish.key,
                key_id=finish.key_id,
                generation=0,
                enrolled_at=self._clock.seconds(),
            )
        self.finished.callback(
            EnrollResult(finish.outcome, finish.reason, profile)
        )


def enroll(
    reactor,
    *,
    host: str,
    port: int,
    pin: str | None = None,
    ca: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    user: str,
    password: str,
    sources: Iterable[IFingerprintSource] | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
    timeout: float = DEFAULT_TIMEOUT,
) -> Deferred:
    """
    Enroll C{user} on this machine with the server at C{host}:C{port},
    whose TLS certificate must have the SHA-256 fingerprint C{pin}, or be
    issued for C{host} by a CA in the PEM bundle C{ca}; with
    C{client_cert} and C{client_key} (PEM files), the connection presents
    that client certificate to a server that demands one.  The enrolled
    profile keeps all four, to rotate over the same kind of connection.

    The connection attempt and the conversation each get C{timeout}
    seconds.  The result is logged, without secrets, as
    C{"enrollment of {user} with {server}: {outcome}"}.

    @param reactor: provides TCP, time and a thread pool for crypt.
    @param host: the server's IP address.
    @param password: the one-time password the server's operator gave.
    @param sources: the L{IFingerprintSource}s to fingerprint this machine
        with; by default every source, reading this machine's files.
    @param random_bytes: returns that many random bytes.
    @return: a L{Deferred} that fires with an L{EnrollResult} and never
        fails; cancelling it abandons the enrollment.
    """
    server = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    try:
        host, port, pin = _destination(host, port, pin, ca)
        # How to reach and trust the server; the profile keeps it all.
        destination = dict(
            server_host=host,
            server_port=port,
            pin=pin,
            ca=ca,
            client_cert=client_cert,
            client_key=client_key,
        )
        endpoint = _endpoint(reactor, Account(user, **destination), timeout)
        _check_password(password)
        fingerprint = compute_fingerprint(
            default_sources() if sources is None else sources
        )
        enrollment = ClientEnrollment(
            user, fingerprint.hash, random_bytes(keyschedule.RANDOM_SIZE)
        )
    except (EnrollmentError, FingerprintError) as e:
        result = succeed(EnrollResult(EnrollOutcome.ERROR, str(e)))
    else:
        protocol = EnrollmentProtocol(
            enrollment,
            reactor,
            timeout,
            _deriver(reactor, password),
            **destination,
        )
        result = run_exchange(endpoint, protocol)
    return result.addCallback(
        log_result,
        _log,
        "enrollment of {user} with {server}: {outcome}",
        user=user,
        server=server,
    )


def _destination(
    host: object, port: object, pin: object, ca: object
) -> tuple[str, int, str | None]:
    """
    @return: the server's address in canonical form, its port, and the
        pin as L{normalise_pin} returns it (L{None} with C{ca}).
    @raise EnrollmentError: one of them is malformed, or the server is
        to be trusted both by pin and through C{ca}, or neither.
    """
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise EnrollmentError("the server must be an IP address") from None
    if type(port) is not int or not 0 < port < 65536:
        raise EnrollmentError("the server port must be 1-65535")
    if (pin is None) == (ca is None):
        raise EnrollmentError(
            "the server is trusted one way: give a pin or a CA bundle"
        )
    if pin is None:
        return address, port, None
    try:
        return address, port, normalise_pin(pin)
    except ValueError as e:
        raise EnrollmentError(f"pin: {e}") from None


def _endpoint(reactor, server: Account, timeout: float):
    """
    The TLS endpoint that reaches C{server}, its files read now.

    @raise EnrollmentError: a file is unusable, or a client certificate
        comes without its key (or the reverse).
    """
    try:
        return client_endpoint(reactor, server, timeout)
    except ValueError as e:
        raise EnrollmentError(str(e)) from None


def _check_password(password: object) -> None:
    """
    @raise EnrollmentError: C{password} is not something crypt accepts.
    """
    if not isinstance(password, str) or not password:
        raise EnrollmentError("the password must be a non-empty string")
    try:
        encoded = password.encode("utf-8")
    except UnicodeEncodeError:
        raise EnrollmentError("the password is not valid Unicode") from None
    if "\0" in password:
        raise EnrollmentError("the password must not contain NUL")
    if len(encoded) > libxcrypt.MAX_PHRASE_BYTES:
        raise EnrollmentError(
            f"the password must be at most {libxcrypt.MAX_PHRASE_BYTES} "
            f"bytes"
        )


def _deriver(reactor, password: str) -> Deriver:
    """
    The derivation L{EnrollmentProtocol} needs, run in the reactor's
    thread pool with C{password}.
    """

    def derive(salt: str, rsalt: str) -> Deferred:
        return deferToThreadPool(
            reactor,
            reactor.getThreadPool(),
            derive_salted_response,
            password,
            salt,
            rsalt,
        )

    return derive
