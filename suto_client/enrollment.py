"""
The endpoint's side of enrollment: proving a one-time password, sending
the machine's sealed fingerprint hash and random data, and checking that
the server derived the same first key.

L{ClientEnrollment} is a sans-IO state machine in the shape of
L{suto_client.session.ClientSession}: it receives decoded wire messages
and computed hashes, and answers with actions (L{Send}, L{ComputeHash},
L{Close}, L{Finish}).  L{ClientEnrollment.receive} inspects each message
and calls exactly one input, so the transitions read as the conversation::

    idle --open--> awaiting_version                   (sends VERSION)
    awaiting_version --version--> awaiting_salts      (sends ENROLL)
    awaiting_salts --salts--> hashing                 (asks for the hash)
    awaiting_salts --refused--> done                  (REJECTED: no window)
    hashing --hashed--> awaiting_verdict              (sends CF_HASH)
    awaiting_verdict --accepted--> awaiting_confirmation   (sends ENROLL_DATA)
    awaiting_verdict --refused--> done                (REJECTED: password)
    awaiting_confirmation --confirmed--> done         (ENROLLED)
    awaiting_confirmation --mismatch--> done          (ERROR: another key)
    any --server_error/violation/lost/hash_failed--> done     (ERROR)
    any --expire--> done                              (TIMEOUT)
    any --abandon--> done                             (ERROR: gave up)

The key material is derived as soon as the hash is known (before the
machine moves), from the salted hash, the fingerprint hash and the random
data; the first key leaves the machine only in the L{Finish} of an
enrollment whose confirmation opened under it and named its key id.

L{EnrollmentProtocol} carries the actions out on a connection and computes
the hash off the reactor thread; L{enroll} connects to a server as an
account would (L{suto_client.protocol.client_endpoint}: its certificate
pinned or vouched for by a CA bundle, with a client certificate if one is
given) and never fails: every problem becomes an
L{EnrollOutcome.ERROR} or L{EnrollOutcome.TIMEOUT} result with a reason
that holds no secret.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from automat import MethodicalMachine
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from suto_client.conversation import Close, Conversation, Send
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
from suto_client.session import ComputeHash
from suto_client.statefile import Account, EnrolledProfile
from suto_client.tls import normalise_pin
from suto_server.core import keyschedule, libxcrypt, schemes, wire

#: Seconds allowed by default for the connection and, again, for the
#: conversation: the one-time password's hash runs on the server too.
DEFAULT_TIMEOUT = 30.0

#: What the errors a server may end an enrollment with mean.
_SERVER_ERRORS = {
    "BAD_SEAL": "the server could not open the enrollment data",
    "WINDOW_CLOSED": "the enrollment window closed during the enrollment",
    "BUSY": "the server is busy; try again",
}

_log = Logger()


class EnrollmentError(ValueError):
    """
    An enrollment cannot start with these inputs: the user name, server
    address, pin, TLS files, password, fingerprint hash or random data is
    malformed.
    The message never contains the password.
    """


class EnrollOutcome(enum.Enum):
    """
    How one enrollment ended.
    """

    ENROLLED = "enrolled"
    REJECTED = "rejected"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Finish:
    """
    The enrollment has ended with C{outcome}; C{reason} is secret-free.
    An enrolled outcome carries the first key and its key id.
    """

    outcome: EnrollOutcome
    reason: str = ""
    key: bytes | None = field(default=None, repr=False)
    key_id: str | None = None


class ClientEnrollment(Conversation):
    """
    One connection's enrollment conversation, from connecting to the
    server's confirmation.

    @param user: the user being enrolled.
    @param fingerprint_hash: this machine's L{keyschedule.FINGERPRINT_SIZE}
        -byte fingerprint hash.
    @param random_data: L{keyschedule.RANDOM_SIZE} fresh random bytes.
    @raise EnrollmentError: an argument is malformed.

    @ivar user: the user being enrolled.
    """

    _machine = MethodicalMachine()

    def __init__(
        self, user: str, fingerprint_hash: bytes, random_data: bytes
    ) -> None:
        try:
            self._request = wire.Enroll(user)
        except wire.ProtocolError:
            raise EnrollmentError(
                "the user name cannot be enrolled: use letters, digits, "
                "'.', '_' and '-', at most 64 characters, not starting "
                "with 'DATA_'"
            ) from None
        if not (
            isinstance(fingerprint_hash, bytes)
            and len(fingerprint_hash) == keyschedule.FINGERPRINT_SIZE
        ):
            raise EnrollmentError("a fingerprint hash is 32 bytes")
        if not (
            isinstance(random_data, bytes)
            and len(random_data) == keyschedule.RANDOM_SIZE
        ):
            raise EnrollmentError("the random data is 32 bytes")
        super().__init__()
        self.user = user
        self._fingerprint_hash = fingerprint_hash
        self._random_data = random_data
        self._salts: wire.SaltA | None = None
        self._response: wire.CFHash | None = None
        self._data: wire.EnrollData | None = None
        self._key: bytes | None = None
        self._key_id: str | None = None

    # What the protocol calls.

    def start(self) -> list:
        """
        The connection is up: return the first message to send.
        """
        self._open()
        return self._take()

    def hashed(self, salted_hash: str, response: str) -> list:
        """
        The hash asked for by L{ComputeHash} is ready: C{salted_hash} is
        C{crypt(password, salt)}, C{response} is C{crypt(salted_hash,
        rsalt)}.  The enrollment data and the first key are derived here,
        so that nothing secret is computed after the server's verdict.
        """
        try:
            self._response = wire.CFHash(response)
        except wire.ProtocolError:
            return self.hash_failed("the computed response is malformed")
        try:
            secret = keyschedule.password_secret(salted_hash, self.user)
            sealed = keyschedule.seal(
                secret,
                self._fingerprint_hash + self._random_data,
                profile=self.user,
                purpose=keyschedule.ENROLL_DATA_PURPOSE,
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
                counter=0,
            )
            self._data = wire.EnrollData(sealed)
            self._key = keyschedule.first_key(
                self._random_data, self._fingerprint_hash, secret, self.user
            )
        except (wire.ProtocolError, keyschedule.KeyScheduleError):
            self._response = self._data = None
            return self.hash_failed("could not derive the enrollment key")
        self._key_id = keyschedule.key_id(self._key)
        self._hashed()
        return self._take()

    def hash_failed(self, reason: str) -> list:
        """
        The hash could not be computed (for example, a password salt the
        local crypt does not support).
        """
        return self._end(reason, self._cannot_hash)

    def abandon(self, reason: str) -> list:
        """
        Give up on the enrollment.
        """
        return self._end(reason, self._give_up)

    def _inspect(self, message) -> None:
        if isinstance(message, wire.SaltA):
            self._salts = message
            self._salts_arrived()
        elif isinstance(message, wire.Auth):
            if message.ok:
                self._accepted()
            else:
                self._refused()
        elif isinstance(message, wire.Enrolled):
            if self._confirms(message):
                self._confirmed()
            else:
                self._mismatch()
        elif isinstance(message, wire.Error):
            explanation = _SERVER_ERRORS.get(message.code, "the server failed")
            self._reason = f"{explanation} ({message.code})"
            self._server_error()
        else:
            self._violation()

    def _confirms(self, message: wire.Enrolled) -> bool:
        """
        Does the server's confirmation open under our first key, and do
        both the sealed key id and the one in the message name that key?
        Both comparisons always run, in constant time.
        """
        if self._key is None:
            return False
        try:
            sealed_id = keyschedule.open_sealed(
                self._key,
                message.sealed,
                profile=self.user,
                purpose=keyschedule.ENROLL_CONFIRM_PURPOSE,
                direction=keyschedule.Direction.SERVER_TO_CLIENT,
                counter=0,
            )
        except keyschedule.SealError:
            return False
        named = message.key_id.encode("ascii")
        ours = self._key_id.encode("ascii")
        return hmac.compare_digest(sealed_id, named) & hmac.compare_digest(
            named, ours
        )

    # States.

    @_machine.state(initial=True)
    def idle(self):
        "Not connected yet."

    @_machine.state()
    def awaiting_version(self):
        "The server must first confirm our version."

    @_machine.state()
    def awaiting_salts(self):
        "ENROLL went out; waiting for SALTA, or AUTH_0 without a window."

    @_machine.state()
    def hashing(self):
        "The hash is being computed; the server must wait (lockstep)."

    @_machine.state()
    def awaiting_verdict(self):
        "CF_HASH went out; waiting for AUTH_1 or AUTH_0."

    @_machine.state()
    def awaiting_confirmation(self):
        "ENROLL_DATA went out; waiting for ENROLLED."

    @_machine.state()
    def done(self):
        "The enrollment has ended; nothing more happens."

    # Inputs.

    @_machine.input()
    def _open(self):
        "Connected to the server."

    @_machine.input()
    def _version(self):
        "The server confirmed our version."

    @_machine.input()
    def _salts_arrived(self):
        "SUTO_SALTA_ arrived."

    @_machine.input()
    def _hashed(self):
        "The response, enrollment data and first key are ready."

    @_machine.input()
    def _cannot_hash(self):
        "The response could not be computed."

    @_machine.input()
    def _accepted(self):
        "SUTO_AUTH_1 arrived."

    @_machine.input()
    def _refused(self):
        "SUTO_AUTH_0 arrived."

    @_machine.input()
    def _confirmed(self):
        "SUTO_ENROLLED_ arrived and names our first key."

    @_machine.input()
    def _mismatch(self):
        "SUTO_ENROLLED_ arrived but does not name our first key."

    @_machine.input()
    def _server_error(self):
        "SUTO_ERROR_ arrived: the server is giving up."

    @_machine.input()
    def _violation(self):
        "The server broke the protocol."

    @_machine.input()
    def _lost(self):
        "The connection closed."

    @_machine.input()
    def _expire(self):
        "The enrollment took too long."

    @_machine.input()
    def _give_up(self):
        "The enrollment is abandoned."

    # Outputs.

    @_machine.output()
    def _send_version(self):
        self._actions.append(Send(wire.Version(wire.PROTOCOL_VERSION)))

    @_machine.output()
    def _send_enroll(self):
        self._actions.append(Send(self._request))

    @_machine.output()
    def _ask_hash(self):
        salts, self._salts = self._salts, None
        self._actions.append(ComputeHash(salts.salt, salts.rsalt))

    @_machine.output()
    def _send_hash(self):
        response, self._response = self._response, None
        self._actions.append(Send(response))

    @_machine.output()
    def _send_data(self):
        data, self._data = self._data, None
        self._actions.append(Send(data))

    @_machine.output()
    def _finish_enrolled(self):
        key, self._key = self._key, None
        self._actions += [
            Close(),
            Finish(EnrollOutcome.ENROLLED, "", key, self._key_id),
        ]

    @_machine.output()
    def _finish_no_window(self):
        self._actions += [
            Close(),
            Finish(
                EnrollOutcome.REJECTED,
                "the server refused the enrollment: no open window for "
                "this user from this address, or it expired",
            ),
        ]

    @_machine.output()
    def _finish_wrong_password(self):
        self._actions += [
            Close(),
            Finish(
                EnrollOutcome.REJECTED,
                "the server refused the one-time password",
            ),
        ]

    @_machine.output()
    def _finish_mismatch(self):
        self._key = None
        self._actions += [
            Close(),
            Finish(EnrollOutcome.ERROR, "the server derived a different key"),
        ]

    @_machine.output()
    def _finish_error(self):
        self._key = None
        self._actions += [Close(), Finish(EnrollOutcome.ERROR, self._reason)]

    @_machine.output()
    def _finish_lost(self):
        self._key = None
        self._actions.append(Finish(EnrollOutcome.ERROR, self._reason))

    @_machine.output()
    def _finish_timeout(self):
        self._key = None
        self._actions += [
            Close(abort=True),
            Finish(EnrollOutcome.TIMEOUT, "the server did not answer in time"),
        ]

    @_machine.output()
    def _finish_abandoned(self):
        self._key = None
        self._actions += [
            Close(abort=True),
            Finish(EnrollOutcome.ERROR, self._reason),
        ]

    @_machine.output()
    def _ignore(self):
        "Nothing happens once the enrollment has ended."

    # Transitions: the conversation as a table.

    idle.upon(_open, enter=awaiting_version, outputs=[_send_version])
    awaiting_version.upon(
        _version, enter=awaiting_salts, outputs=[_send_enroll]
    )
    awaiting_salts.upon(_salts_arrived, enter=hashing, outputs=[_ask_hash])
    awaiting_salts.upon(_refused, enter=done, outputs=[_finish_no_window])
    hashing.upon(_hashed, enter=awaiting_verdict, outputs=[_send_hash])
    hashing.upon(_cannot_hash, enter=done, outputs=[_finish_error])
    awaiting_verdict.upon(
        _accepted, enter=awaiting_confirmation, outputs=[_send_data]
    )
    awaiting_verdict.upon(
        _refused, enter=done, outputs=[_finish_wrong_password]
    )
    awaiting_confirmation.upon(
        _confirmed, enter=done, outputs=[_finish_enrolled]
    )
    awaiting_confirmation.upon(
        _mismatch, enter=done, outputs=[_finish_mismatch]
    )

    # Everything else a server can send at the wrong time is a violation.
    for _state, _unexpected in (
        (
            awaiting_version,
            (_salts_arrived, _accepted, _refused, _confirmed, _mismatch),
        ),
        (awaiting_salts, (_version, _accepted, _confirmed, _mismatch)),
        (
            hashing,
            (
                _version,
                _salts_arrived,
                _accepted,
                _refused,
                _confirmed,
                _mismatch,
            ),
        ),
        (awaiting_verdict, (_version, _salts_arrived, _confirmed, _mismatch)),
        (
            awaiting_confirmation,
            (_version, _salts_arrived, _accepted, _refused),
        ),
    ):
        for _arrival in _unexpected:
            _state.upon(_arrival, enter=done, outputs=[_finish_error])

    for _state in (
        idle,
        awaiting_version,
        awaiting_salts,
        hashing,
        awaiting_verdict,
        awaiting_confirmation,
    ):
        _state.upon(_server_error, enter=done, outputs=[_finish_error])
        _state.upon(_violation, enter=done, outputs=[_finish_error])
        _state.upon(_lost, enter=done, outputs=[_finish_lost])
        _state.upon(_expire, enter=done, outputs=[_finish_timeout])
        _state.upon(_give_up, enter=done, outputs=[_finish_abandoned])

    for _late in (
        _version,
        _salts_arrived,
        _hashed,
        _cannot_hash,
        _accepted,
        _refused,
        _confirmed,
        _mismatch,
        _server_error,
        _violation,
        _lost,
        _expire,
        _give_up,
    ):
        done.upon(_late, enter=done, outputs=[_ignore])
    del _state, _unexpected, _arrival, _late


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
        @param timeout: seconds from connecting to the confirmation.
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
