# -*- test-case-name: tests.phases.test_connection,tests.phases.test_connection_enrollment,tests.phases.test_connection_rotation,tests.phases.test_classic_off_reactor,tests.phases.test_enrollment_off_reactor,tests.phases.test_store_failure,tests.phases.test_store_failure_count -*-
"""
The server's end of one device connection, on the reactor.

The protocol only feeds bytes to the codec (L{wire.Decoder}) and the
decoded messages to the current phase: first the opening (L{Opening}),
whose actions choose and start a phase, then that phase's driver
(L{ClassicDriver}, L{EnrollmentDriver}, L{RotationDriver}), which carries
out its machine's actions against the rules.  It also owns what every
phase shares: writing, closing, the timeout and the connection gate's
ticket.  What the server answers while it handles the bytes of one read
leaves in one write (one TLS record, one segment) when the read is
handled, or before the connection closes: a turn of the conversation that
answers two messages (the version echo and the first rotation's
C{SUTO_ROTATE_OK_}) costs the transport one write, not two.  One factory serves one listener and one framing: the TLS listener
speaks the framed protocol, the opt-in plaintext listener speaks SUTO
1.3.2's legacy framing and only the classic challenge.

A store that fails under a decision (its database away or failing over,
a full disk), while a read is handled or in a step a driver awaited,
ends the exchange with C{SUTO_ERROR_BUSY}, which agents retry after a
back-off, rather than with a traceback: nothing was decided, and the
store's own message says what failed, logged at most once per
L{STORE_FAILURE_LOG_EVERY} seconds for all of a listener's connections
with the count kept quiet since (L{ServerProtocol.undecided}).  Every
one of them, logged or kept quiet, is counted by the exchange it failed
(C{ServerFactory.store_failed}, the metric C{suto_store_failures_total}).
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from suto_server.core import wire
from suto_server.core.machine import Send
from suto_server.core.throttle import OncePerInterval
from suto_server.machines import opening
from suto_server.phases.classic import ClassicDriver, ClassicRules
from suto_server.phases.enrollment import EnrollmentDriver, EnrollmentRules
from suto_server.phases.rotation import RotationDriver, RotationRules, tell_time
from suto_server.phases.starting import Starting
from suto_server.phases.timeout import DeadlineWheel, WheelTimeoutMixin
from suto_server.rules.gate import OPEN_GATE
from suto_server.store.errors import StoreError

#: Seconds between two log lines about connections the store failed.
STORE_FAILURE_LOG_EVERY = 10.0

#: The exchange a store failure is counted under, by the class whose
#: code could not decide (each driver logs through its own class's
#: logger); one before any of them began counts as the opening's.
_EXCHANGES = {
    ClassicDriver: "classic",
    EnrollmentDriver: "enrollment",
    RotationDriver: "rotation",
}


class ServerProtocol(Protocol, WheelTimeoutMixin):
    """
    One device's connection.

    @ivar source: the peer's address.
    @ivar ticket: the connection gate's ticket for this connection.
    @ivar lost: whether the peer went away.
    """

    log = Logger()

    def __init__(self, factory: ServerFactory, ticket=None) -> None:
        self.factory = factory
        self.framing = factory.framing
        self.clock = factory.clock
        self.deadlines = factory.deadlines
        self.exchange_timeout = factory.exchange_timeout
        self.ticket = ticket if ticket is not None else OPEN_GATE.admit(None)
        self.source = None
        self.lost = False
        self._decoder = wire.Decoder(factory.framing)
        self._opening = opening.Opening(factory.offers())
        self._phase = None
        self._closing = False
        # The encoded messages of the read being handled; None outside one.
        self._held = None

    def connectionMade(self) -> None:
        self.source = getattr(self.transport.getPeer(), "host", None)
        self.setTimeout(self.exchange_timeout)
        self.ticket.start(self.timeoutConnection)
        self._open(self._opening.connected(self.framing))

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.resetTimeout()
        self._held = []
        try:
            self._decoder.receive_data(data)
            while not self._closing:
                message = self._decoder.next_event()
                if message is wire.NEED_DATA:
                    break
                if self._phase is not None:
                    self._phase.receive(message)
                else:
                    self._open(self._opening.receive(message))
        except wire.ProtocolError as error:
            self._protocol_error(error)
        except StoreError as error:
            self._store_failed(error)
        finally:
            self._flush()

    def _store_failed(self, error: StoreError) -> None:
        """
        The store failed under a decision about this connection: tell the
        device the server is busy, and close.
        """
        self.undecided(self.log, Failure(error), "a decision about a connection")
        busy = wire.ProtocolError(wire.ERROR_BUSY, "the store is unavailable")
        try:
            self._protocol_error(busy)
        except StoreError:
            # Ending the phase needed the store as well.
            self.refuse(wire.ERROR_BUSY)

    def undecided(self, log, failure, what: str, **fields) -> None:
        """
        Log that the rules could not decide C{what} (a format string over
        C{fields}) because of C{failure}.  A store that could not answer
        is an outage the operator sees elsewhere too, and during one every
        connection fails alike: at most one line per
        L{STORE_FAILURE_LOG_EVERY} seconds for all of a listener's
        connections, a warning with the store's reason and how many were
        kept quiet.  Anything else is a fault, logged with its traceback
        each time.  Nothing of what the device sent goes in.
        """
        if not failure.check(StoreError):
            log.failure(what, failure, **fields)
            return
        self.factory.store_failed(self._exchange(log))
        quiet = self.factory.store_failures.due(None, self.clock.seconds())
        if quiet is not None:
            since = "; {quiet} more since the last report" if quiet else ""
            log.warn(
                what + " failed: the store did not answer ({error})" + since,
                error=str(failure.value),
                quiet=quiet,
                **fields,
            )

    def _exchange(self, log) -> str:
        """
        @param log: the logger of the code that could not decide.
        @return: the exchange a failure logged through C{log} is counted
            under: that of the driver logging it, else of the phase the
            connection is in, else C{"opening"}.
        """
        source = log.source
        kind = source if isinstance(source, type) else type(source)
        if kind not in _EXCHANGES:
            kind = type(self._phase)
        return _EXCHANGES.get(kind, "opening")

    def timeoutConnection(self) -> None:
        self.ticket.timed_out()
        self._protocol_error(
            wire.ProtocolError(
                wire.ERROR_TIMEOUT,
                "the device did not finish the exchange in time",
            )
        )

    def connectionLost(self, reason) -> None:
        self.lost = True
        self.setTimeout(None)
        self.ticket.closed()
        if self._phase is not None:
            self._phase.connection_lost()

    def _protocol_error(self, error: wire.ProtocolError) -> None:
        if self._phase is not None:
            self._phase.protocol_error(error)
        else:
            self._open(self._opening.protocol_error(error))

    # What the opening decided.

    def _open(self, actions: list) -> None:
        for action in actions:
            getattr(self, self._OPENING[type(action)])(action)

    def _echo(self, action: Send) -> None:
        self.send(action.message)

    def _refuse(self, action: opening.Refuse) -> None:
        self.refuse(action.code)

    def _tell_time(self, action: opening.TellTime) -> None:
        tell_time(self, self.factory.rotation.reconnection)

    def _start_classic(self, action: opening.StartClassic) -> None:
        self._starting(ClassicDriver.start(self, self.factory.classic), action.message)

    def _start_enrollment(self, action: opening.StartEnrollment) -> None:
        factory = self.factory
        self._starting(
            EnrollmentDriver.start(
                self, factory.enrollment, action.user, factory.classic.make_rsalt
            )
        )

    def _starting(self, driver, first=None) -> None:
        """
        Wait in L{Starting} for the driver the rules decide on (a
        L{Deferred}, fired at once on a local store), then hand it the
        connection, C{first} (the message it reads first, if any) and the
        message held meanwhile.
        """
        starting = Starting(self)
        self._enter(starting)
        driver.addCallback(self._started, first, starting).addErrback(
            self._not_started
        )

    def _not_started(self, failure: Failure) -> None:
        """
        Deciding or starting the driver failed in a way no rule answers
        (the rules answer the store's failures themselves): log it, and tell the
        device the server is busy rather than leave it waiting for the
        exchange's timeout.
        """
        self.undecided(self.log, failure, "starting a phase")
        if not self.ended:
            self.refuse(wire.ERROR_BUSY)

    def _started(self, phase, first, starting: Starting) -> None:
        if phase is None:
            return
        self._phase = phase
        waiting = [first] if first is not None else []
        for message in waiting + starting.held:
            if self._closing:
                break
            phase.receive(message)

    @property
    def ended(self) -> bool:
        """
        Whether the connection is closing or gone: a phase decided now has
        nobody to talk to.
        """
        return self.lost or self._closing

    def _start_rotation(self, action: opening.StartRotation) -> None:
        phase = RotationDriver(
            self, self.factory.rotation, action.message.user, self._opening.version
        )
        self._enter(phase)
        phase.receive(action.message)

    def _enter(self, phase) -> None:
        """
        Hand the connection to C{phase} for the rest of its life.  The
        opening is done with then: dropping it spares each of the
        thousands of idle rotation connections its machine and offers.
        """
        self._phase = phase
        self._opening = None

    _OPENING = {
        Send: "_echo",
        opening.Refuse: "_refuse",
        opening.TellTime: "_tell_time",
        opening.StartClassic: "_start_classic",
        opening.StartEnrollment: "_start_enrollment",
        opening.StartRotation: "_start_rotation",
    }

    # What every phase does on the connection.

    def send(self, message) -> None:
        data = wire.encode(message, self.framing)
        if self._held is not None:
            self._held.append(data)
        else:
            self.transport.write(data)

    def _flush(self) -> None:
        """
        Write what the read being handled answered, in one write.
        """
        held, self._held = self._held, None
        if held:
            self.transport.write(b"".join(held))

    def close(self) -> None:
        self._closing = True
        self.setTimeout(None)
        self._flush()
        self.transport.loseConnection()

    def challenge(self, nonce: bytes):
        """
        A verification (docs/PROTOCOL.md §11) asks the agent on this
        connection, a profile's live rotation connection, to prove its
        key: see L{RotationDriver.challenge}.
        """
        return self._phase.challenge(nonce)

    def refuse(self, code: str) -> None:
        """
        End a connection that has no phase: framed peers are told why;
        legacy peers get nothing unsolicited, as 1.3.2 reads any bytes as
        a reply.
        """
        if self.framing is wire.Framing.FRAMED:
            self.send(wire.Error(code))
        self.close()


class ServerFactory(Factory):
    """
    Builds L{ServerProtocol}s for one listener.

    @param classic: what the classic challenge needs (every listener
        offers it).
    @param enrollment: what enrollment needs, or L{None} on a listener that
        must not enroll (a plaintext one).
    @param rotation: what rotation connections need, or L{None} on a
        listener that must not rotate keys (a plaintext one).
    @param exchange_timeout: seconds a connected device may stay silent
        before it is dropped (a login grace time).
    @param gate: the L{suto_server.rules.gate.ConnectionGate} that admits
        connections; by default every connection is admitted.
    @param store_failed: called with the exchange (C{"opening"},
        C{"classic"}, C{"enrollment"}, C{"rotation"}) of every connection
        answered busy because the store failed, logged or kept quiet
        (L{suto_server.metrics.ServerMetrics.store_failed}).
    """

    noisy = False

    def __init__(
        self,
        *,
        framing: wire.Framing,
        clock: IReactorTime,
        classic: ClassicRules,
        enrollment: EnrollmentRules | None = None,
        rotation: RotationRules | None = None,
        exchange_timeout: float = 10.0,
        gate=OPEN_GATE,
        store_failed: Callable[[str], object] = lambda exchange: None,
    ) -> None:
        self.framing = framing
        self.clock = clock
        self.classic = classic
        self.enrollment = enrollment
        self.rotation = rotation
        self.exchange_timeout = exchange_timeout
        self.gate = gate
        # Every connection's timeout, on one timer.
        self.deadlines = DeadlineWheel(clock)
        # When the connections the store failed were last logged.
        self.store_failures = OncePerInterval(STORE_FAILURE_LOG_EVERY)
        self.store_failed = store_failed

    def offers(self) -> frozenset:
        """
        The phases this listener offers besides the classic challenge.
        """
        offers = set()
        if self.enrollment is not None:
            offers.add(opening.ENROLLMENT)
        if self.rotation is not None:
            offers.add(opening.ROTATION)
            if self.rotation.reconnection is not None:
                offers.add(opening.TIME)
        return frozenset(offers)

    def buildProtocol(self, addr) -> ServerProtocol | None:
        # A refused connection is closed before any byte (or TLS
        # handshake) is exchanged.
        ticket = self.gate.admit(getattr(addr, "host", None))
        if ticket is None:
            return None
        return ServerProtocol(self, ticket)
