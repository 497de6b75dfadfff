"""
Twisted adapters for the server's side of the SUTO exchanges.

The protocol is a thin shell: bytes go into a L{wire.Decoder}, messages go
into the phase's sans-IO machine (L{ServerSession} for the classic
challenge, L{EnrollmentSession} for enrollment), and the actions it returns
are carried out here (write, verify through a cred portal, commit through
the enrollment rules, close, report the verdict).  One factory serves one
listener and one framing: the TLS listener speaks the framed protocol, the
opt-in plaintext listener speaks SUTO 1.3.2's legacy framing and only the
classic challenge.
"""

from __future__ import annotations

from typing import Callable

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from suto_server.core import schemes, timing, wire
from suto_server.cred.credentials import SaltedChallenge
from suto_server.cred.hashpool import HashPoolBusy
from suto_server.cred.realm import IAuthenticatedUser
from suto_server.machines.classic import Close, Finish, Send, ServerSession, Verify
from suto_server.machines.enrollment import Complete, EnrollmentSession, Fail
from suto_server.machines.rotation import (
    Abandon,
    Begin,
    Commit,
    Reconnect,
    RotationSession,
)
from suto_server.phases.timeout import RearmingTimeoutMixin
from suto_server.rules.enrollment import EnrollmentRefused
from suto_server.rules.limits import OPEN_GATE
from suto_server.rules.reconnection import ReconnectRefused
from suto_server.rules.rendezvous import Rendezvous, Verdict
from suto_server.rules.rotation import RotationRefused


class ServerProtocol(Protocol, RearmingTimeoutMixin):
    """
    One device's connection.

    On the legacy listener the connection must answer a pending request
    (matched by source address) and speaks the classic challenge at once.
    On the framed listener it first exchanges versions; its first message
    after that chooses the phase: C{SUTO_C_ENROLL_<user>} starts an
    enrollment, a salt request answers a pending request.
    """

    log = Logger()

    def __init__(self, factory: ServerFactory, ticket=None) -> None:
        self.factory = factory
        self._ticket = ticket if ticket is not None else OPEN_GATE.admit(None)
        self.callLater = factory.clock.callLater
        self._decoder = wire.Decoder(factory.framing)
        self._greeted = factory.framing is wire.Framing.LEGACY
        self._phase = None
        self._portal = None
        self._user: str | None = None
        self._request = None
        self._window = None
        self._pending = None
        self._admitted = False
        # A rotation's commit is on its way to the store.
        self._committing = False
        self._offline_step = None
        self._told_time = False
        self._closing = False
        self._lost = False

    def connectionMade(self) -> None:
        self._source = getattr(self.transport.getPeer(), "host", None)
        self.setTimeout(self.factory.exchange_timeout)
        self._ticket.start(self.timeoutConnection)
        if self.factory.framing is wire.Framing.LEGACY:
            self._start_classic()

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
                self._dispatch(message)
        except wire.ProtocolError as error:
            self._protocol_error(error)

    def timeoutConnection(self) -> None:
        self._ticket.timed_out()
        self._protocol_error(
            wire.ProtocolError(
                wire.ERROR_TIMEOUT,
                "the device did not finish the exchange in time",
            )
        )

    def connectionLost(self, reason) -> None:
        self._lost = True
        self.setTimeout(None)
        self._ticket.closed()
        if isinstance(self._phase, (RotationSession, EnrollmentSession)):
            self._perform(self._phase.connection_lost())
        if self._admitted and self.factory.tracking is not None:
            # A commit on its way still proves the move it completes.
            self.factory.tracking.detach(
                self._user, self, keep_move=self._committing
            )
        if self._request is not None:
            self.factory.rendezvous.finish(
                self._request, Verdict.ERROR, "connection lost"
            )

    # Choosing the phase.

    def _dispatch(self, message) -> None:
        if self._phase is not None:
            self._perform(self._phase.receive(message))
        elif not self._greeted:
            self._greet(message)
        elif isinstance(message, wire.Enroll):
            self._start_enrollment(message.user)
        elif isinstance(message, (wire.Rotate, wire.Reconnect)):
            self._start_rotation(message)
        elif isinstance(message, wire.GetTime):
            self._tell_time()
        elif self._start_classic():
            self._perform(self._phase.receive(message))

    def _tell_time(self) -> None:
        """
        A client derives its offline key for the server's time step,
        whatever its own clock says; it needs the time once.
        """
        if self.factory.reconnection is None:
            self._refuse(wire.ERROR_UNKNOWN_MESSAGE)
            return
        if self._told_time:
            self._refuse(wire.ERROR_OUT_OF_ORDER)
            return
        self._told_time = True
        self._send(
            wire.ServerTime(
                int(self.factory.clock.seconds()), self.factory.reconnection.step
            )
        )

    def _greet(self, message) -> None:
        if message == wire.Version(wire.PROTOCOL_VERSION):
            self._greeted = True
            self._send(message)
        elif isinstance(message, wire.Version):
            self._refuse(wire.ERROR_BAD_VERSION)
        else:
            self._refuse(wire.ERROR_OUT_OF_ORDER)

    def _start_classic(self) -> bool:
        request = self.factory.rendezvous.claim(self._source) if self._source else None
        if request is None:
            self.factory.log.warn(
                "refused a connection from {source}: no authentication is "
                "waiting for it",
                source=self._source,
            )
            self._refuse(wire.ERROR_NO_REQUEST)
            return False
        self._request = request
        self._user = request.user
        self._portal = self.factory.portal
        self._phase = ServerSession(
            self.factory.framing,
            self.factory.salt_for(request.user),
            self.factory.make_rsalt,
        )
        return True

    def _start_enrollment(self, user: str) -> None:
        enrollment = self.factory.enrollment
        if enrollment is None:
            self._refuse(wire.ERROR_UNKNOWN_MESSAGE)
            return
        try:
            window = enrollment.begin(user, self._source, self.factory.clock.seconds())
        except EnrollmentRefused:
            self._send(wire.Auth(False))
            self._close()
            return
        self._window = window
        self._user = user
        self._portal = self.factory.enrollment_portal
        self._phase = EnrollmentSession(
            schemes.salt_of(window.otp_hash), self.factory.make_rsalt
        )
        self._perform(self._phase.start())

    def _start_rotation(self, message) -> None:
        if self.factory.rotation is None:
            self._refuse(wire.ERROR_UNKNOWN_MESSAGE)
            return
        self._user = message.user
        self._phase = RotationSession(message.user)
        self._perform(self._phase.receive(message))

    def _refuse(self, code: str) -> None:
        """
        End a connection that has no phase: framed peers are told why;
        legacy peers get nothing unsolicited, as 1.3.2 reads any bytes as
        a reply.
        """
        if self.factory.framing is wire.Framing.FRAMED:
            self._send(wire.Error(code))
        self._close()

    def _protocol_error(self, error: wire.ProtocolError) -> None:
        if self._phase is not None:
            self._perform(self._phase.protocol_error(error))
        else:
            self._refuse(error.code)

    # Carrying out what the phase decided.

    def _send(self, message) -> None:
        self.transport.write(wire.encode(message, self.factory.framing))

    def _close(self) -> None:
        self._closing = True
        self.setTimeout(None)
        self.transport.loseConnection()

    def _perform(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action.message)
            elif isinstance(action, Verify):
                self._verify(action)
            elif isinstance(action, Close):
                self._close()
            elif isinstance(action, Finish):
                self._finish(action)
            elif isinstance(action, Complete):
                self._complete(action)
            elif isinstance(action, Fail):
                self._fail(action)
            elif isinstance(action, Begin):
                self._begin_rotation(action.message)
            elif isinstance(action, Reconnect):
                self._reconnect(action.message)
            elif isinstance(action, Commit):
                self._commit_rotation(action.sealed)
            elif isinstance(action, Abandon):
                self.factory.rotation.failed(
                    self._user, self._source, action.reason, self.factory.clock.seconds()
                )

    def _verify(self, action: Verify) -> None:
        # While the portal works the connection stays lockstep-quiet; the
        # exchange timeout keeps running so a stuck check still ends.
        credentials = SaltedChallenge(self._user, action.rsalt, action.response)
        d = self._portal.login(credentials, None, IAuthenticatedUser)
        d.addCallbacks(self._login_succeeded, self._login_failed)

    def _login_succeeded(self, result) -> None:
        if not self._lost:
            self._perform(self._phase.verified(True))

    def _login_failed(self, failure) -> None:
        if self._lost:
            return
        if failure.check(UnauthorizedLogin):
            self._perform(self._phase.verified(False))
        elif failure.check(HashPoolBusy):
            self._perform(self._phase.unavailable("hash pool saturated"))
        else:
            self.log.failure(
                "checking the response for {user} failed",
                failure,
                user=self._user,
            )
            self._perform(self._phase.unavailable("internal error"))

    def _finish(self, action: Finish) -> None:
        self.factory.log.info(
            "authentication for {user} from {source}: {verdict}"
            "{reason_text}",
            user=self._user,
            source=self._source,
            verdict=action.verdict.value,
            reason=action.reason,
            reason_text=f" ({action.reason})" if action.reason else "",
        )
        self.factory.rendezvous.finish(
            self._request, action.verdict, action.reason
        )

    def _complete(self, action: Complete) -> None:
        now = self.factory.clock.seconds()
        try:
            key_id, confirmation = self.factory.enrollment.complete(
                self._window, self._source, action.sealed, now
            )
        except EnrollmentRefused as refusal:
            self._perform(self._phase.rejected(refusal.reason))
        except Exception:
            # The store could not commit (a full disk, say): nothing was
            # written, the window stays open, and the device is told to
            # try again rather than left with a dropped connection.
            self.log.failure("enrollment of {user} not stored", user=self._user)
            self._perform(
                self._phase.protocol_error(
                    wire.ProtocolError(wire.ERROR_BUSY, "internal error")
                )
            )
        else:
            self._perform(self._phase.completed(key_id, confirmation))

    def _begin_rotation(self, message) -> None:
        """
        Check the presented key, then (for a connection that is not yet the
        profile's live one) the profile's location, then derive the next
        key.
        """
        self._ticket.rotation_started()
        rotation = self.factory.rotation
        now = self.factory.clock.seconds()
        reconnection = self.factory.reconnection
        try:
            if reconnection is not None:
                reconnection.check_rotation(
                    message.user,
                    message.key_id,
                    self._source,
                    now,
                    reconnected=self._offline_step is not None,
                )
        except ReconnectRefused:
            self._perform(self._phase.denied())
            return
        try:
            profile, presented = rotation.check_key(
                message.user, message.key_id, self._source, now
            )
        except RotationRefused:
            self._perform(self._phase.refused())
            return
        tracking = self.factory.tracking
        # Admitted at once, begin runs in this turn and can use the key
        # just checked; after a wait for the tracker it checks again, as
        # another connection may have rotated the profile meanwhile.
        checked = None
        if tracking is None or self._admitted:
            admitted = succeed(True)
            checked = (profile, presented)
        else:
            current, previous = rotation.held_keys(profile)
            admitted = tracking.admit(
                profile,
                current,
                self._source,
                self,
                now,
                previous=previous,
                proven=False,
            )

        def begin(admit: bool) -> None:
            if self._lost:
                if admit and tracking is not None:
                    # Admitted after it hung up: it is not live.
                    tracking.detach(self._user, self)
                return
            if not admit:
                self._perform(self._phase.refused())
                return
            self._admitted = True
            try:
                self._pending = rotation.begin(
                    message.user,
                    message.key_id,
                    message.junk,
                    message.public,
                    self._source,
                    self.factory.clock.seconds(),
                    offline_step=self._offline_step,
                    checked=checked,
                )
            except RotationRefused:
                self._perform(self._phase.refused())
            else:
                self.setTimeout(self.factory.exchange_timeout)
                self._perform(
                    self._phase.started(self._pending.server_public, self._pending.ok)
                )

        admitted.addCallback(begin).addErrback(self._rotation_broke)

    def _reconnect(self, message) -> None:
        """
        A client that marked itself offline came back: check its offline
        key, then (from a new address) the profile's location, then let
        one rotation follow.
        """
        reconnection = self.factory.reconnection
        if reconnection is None:
            self._perform(self._phase.refused())
            return
        try:
            accepted = reconnection.reconnect(
                message, self._source, self.factory.clock.seconds()
            )
        except ReconnectRefused as refusal:
            if refusal.reason == "unknown_key":
                self._perform(self._phase.refused())
            else:
                self._perform(self._phase.denied())
            return
        tracking = self.factory.tracking
        if tracking is None:
            admitted = succeed(True)
        else:
            admitted = tracking.admit(
                accepted.profile,
                accepted.key,
                self._source,
                self,
                self.factory.clock.seconds(),
                previous=accepted.previous,
                proven=True,
            )

        def answer(admit: bool) -> None:
            if self._lost:
                return
            if not admit:
                self._perform(self._phase.refused())
                return
            self._admitted = tracking is not None
            self._offline_step = accepted.step
            self._perform(self._phase.reconnected(accepted.ok))

        admitted.addCallback(answer).addErrback(self._rotation_broke)

    def _rotation_broke(self, failure) -> None:
        self.log.failure("rotation for {user} failed", failure, user=self._user)
        if not self._lost:
            self._perform(self._phase.unavailable("internal error"))

    def _commit_rotation(self, sealed: bytes) -> None:
        try:
            d = self.factory.rotation.acknowledge(
                self._pending, sealed, self._source, self.factory.clock.seconds()
            )
        except RotationRefused:
            self._perform(self._phase.rejected())
            return
        self._pending = None
        self._committing = True
        tracking = self.factory.tracking

        def committed(done: bytes) -> None:
            self._committing = False
            if tracking is not None:
                # The acknowledgement proved the key and the fingerprint.
                tracking.proven(self, self.factory.clock.seconds())
            if not self._lost:
                # Quiet until the next rotation is due, plus its grace.
                self.setTimeout(self.factory.idle_timeout)
                self._perform(self._phase.committed(done))
                self._ticket.rotated()

        def failed(failure) -> None:
            self._committing = False
            if tracking is not None:
                tracking.forget(self)
            if self._lost:
                return
            if failure.check(RotationRefused):
                self._perform(self._phase.rejected())
            else:
                self.log.failure(
                    "committing a rotation for {user} failed", failure, user=self._user
                )
                self._perform(self._phase.unavailable("the commit failed"))

        d.addCallbacks(committed, failed)

    def _fail(self, action: Fail) -> None:
        now = self.factory.clock.seconds()
        if action.counted:
            try:
                self.factory.enrollment.fail(
                    self._user, self._source, action.reason, now
                )
            except EnrollmentRefused:
                pass
        else:
            self.factory.enrollment.abandoned(
                self._user, self._source, action.reason, now
            )


class ServerFactory(Factory):
    """
    Builds L{ServerProtocol}s for one listener.

    @param salt_for: returns the salt of a user's stored hash, or L{None}
        if the user has no usable hash.
    @param make_rsalt: returns a fresh random salt.
    @param exchange_timeout: seconds a connected device may stay silent
        before it is dropped (a login grace time).
    @param enrollment: the enrollment rules (L{Enrollment}), or L{None} on
        a listener that must not enroll (the plaintext legacy one).
    @param enrollment_portal: checks one-time password responses.
    @param rotation: the key rotation rules (L{Rotation}), or L{None} on a
        listener that must not rotate keys.
    @param tracking: the port-tracking rules (L{Tracking}), or L{None} to
        admit rotation connections from anywhere.
    @param reconnection: the offline and blacklist rules
        (L{Reconnection}), or L{None} on a listener that must not
        reconnect profiles.
    @param idle_timeout: seconds a rotation connection may stay quiet
        between rotations (the rotation interval, its jitter, and grace).
    @param gate: the L{suto_server.rules.limits.ConnectionGate} that admits
        connections; by default every connection is admitted.
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
        enrollment=None,
        enrollment_portal=None,
        rotation=None,
        tracking=None,
        reconnection=None,
        idle_timeout: float = timing.silence_allowed(
            timing.DEFAULT_ROTATION_INTERVAL, timing.DEFAULT_ROTATION_GRACE
        ),
        gate=OPEN_GATE,
    ) -> None:
        self.gate = gate
        self.framing = framing
        self.rotation = rotation
        self.tracking = tracking
        self.reconnection = reconnection
        self.idle_timeout = idle_timeout
        self.enrollment = enrollment
        self.enrollment_portal = enrollment_portal
        self.rendezvous = rendezvous
        self.portal = portal
        self.salt_for = salt_for
        self.make_rsalt = make_rsalt
        self.clock = clock
        self.exchange_timeout = exchange_timeout

    def buildProtocol(self, addr) -> ServerProtocol | None:
        # A refused connection is closed before any byte (or TLS
        # handshake) is exchanged.
        ticket = self.gate.admit(getattr(addr, "host", None))
        if ticket is None:
            return None
        return ServerProtocol(self, ticket)
