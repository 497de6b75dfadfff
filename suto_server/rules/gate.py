# -*- test-case-name: tests.rules.test_gate -*-
"""
The connection gate: L{Limits} applied to the TCP listeners' connections,
on the reactor's clock.

Each connection the gate admits gets a L{Ticket}, which the connection
tells what happens to it (made, settled by a first exchange, timed out,
closed); the ticket arms the login grace timer and keeps the counts of
L{Limits} right.  The gate turns misdeeds into penalties (failed
authentications reported by the audit log and the rendezvous, grace
timeouts), asks L{suto_server.rules.expected.ExpectedSources} whether a
connection is one the server waits for, counts refusals in the metrics,
and logs each refusal, and each connection that found no authentication
waiting for it, once per source and reason per C{--limit-log-interval},
the next line saying how many alike were kept quiet.

A connection that found no authentication waiting earns no penalty: it
costs the server one accept and one short message, no password hash, and
is already bounded by the per-source cap and C{MaxStartups}; the likeliest
such peer is a device whose request has just timed out, or one of many
devices behind one address, which a penalty would lock out of their next
login for the lateness of another.

For the same reason a failure that only named a profile's key id, from
the profile's own address (which its agent shares with whoever is behind
its NAT), earns no penalty, within an L{OwnAddressAllowance} per profile
and source that keeps such failures from being free without end; the
gate learns each profile's address from the expected sources, which
follow the audit log.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

from suto_server.core.throttle import DEFAULT_LOG_INTERVAL, PacedLog
from suto_server.rules.limits import Limits, OwnAddressAllowance, source_key

#: The audit events that are failed authentications from the event's
#: source, always a TCP peer for these.  Events whose source may come from
#: a UDP packet (a forged check answer, say) are deliberately absent.
PENALISED_EVENTS = frozenset(
    {
        "enrollment_failed",
        "rotation_failed",
        "clone_suspected",
        "reconnect_failed",
        "blacklisted_refused",
    }
)

#: The penalised events a peer causes by only naming a profile's key id
#: (a wrong reconnection proof, a plain rotation while offline, a
#: superseded key id): from the profile's own registered address they are
#: forgiven within L{OwnAddressAllowance}, as that address is the real
#: agent's too.
_NAMING_EVENTS = frozenset({"reconnect_failed", "clone_suspected"})

#: A failed rotation the rotation rules found came from the profile's own
#: address: not penalised within the same allowance, penalised past it.
_OWN_ADDRESS_EVENTS = frozenset({"rotation_abandoned"})


class Ticket:
    """
    One admitted connection's standing with the gate.  The protocol tells
    it what happens (L{start}, L{unanswered}, L{timed_out},
    L{rotation_started}, L{rotated}, L{closed}).
    """

    # Every connection holds one, so it keeps no instance dictionary.
    __slots__ = (
        "_gate",
        "_host",
        "_key",
        "_settled",
        "_closed",
        "_grace",
        "_rotation_started",
    )

    def __init__(
        self, gate: ConnectionGate, host: str | None, key: str | None
    ) -> None:
        self._gate = gate
        self._host = host
        self._key = key
        self._settled = False
        self._closed = False
        self._grace = None
        self._rotation_started = None

    def start(self, expire: Callable[[], None]) -> None:
        """
        The connection is made: call C{expire} (which ends it) if it has
        not settled within the login grace time.
        """
        if self._gate.login_grace:
            self._grace = self._gate.clock.callLater(self._gate.login_grace, expire)

    def unanswered(self) -> None:
        """
        The connection asked for the classic challenge and no
        authentication was waiting for it: log it (once per source per
        interval), without a penalty.
        """
        self._gate.unanswered(self._host, self._key)

    def timed_out(self) -> None:
        """
        The connection is being dropped for silence or for the login grace
        time: a misdeed unless it had already finished an exchange (a live
        rotation connection whose device went away).
        """
        if not self._settled:
            self._gate.refused(self._host, self._key, "grace")
            self._gate.penalise(
                self._host, self._key, self._gate.limits.penalties.grace
            )

    def rotation_started(self) -> None:
        """
        A rotation request arrived.
        """
        self._rotation_started = self._gate.clock.seconds()

    def rotated(self) -> None:
        """
        The server sent a rotation's final message: the connection has
        finished its first exchange, if it had not before.
        """
        if self._rotation_started is not None:
            self._gate.rotated(self._gate.clock.seconds() - self._rotation_started)
            self._rotation_started = None
        self._settle()

    def closed(self) -> None:
        """
        The connection ended.
        """
        if self._closed:
            return
        self._closed = True
        self._cancel_grace()
        self._gate.limits.closed(self._key, self._settled)

    def _settle(self) -> None:
        if self._settled or self._closed:
            return
        self._settled = True
        self._cancel_grace()
        self._gate.limits.settled()

    def _cancel_grace(self) -> None:
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None


class ConnectionGate:
    """
    Applies L{Limits} to the TCP listeners' connections.

    @param clock: the reactor's time, for penalties and the grace timer.
    @param metrics: a L{suto_server.metrics.ServerMetrics}, or L{None}.
    @param login_grace: seconds a connection has to finish its first
        exchange; 0 for no limit.
    @param log_interval: the least seconds between two log lines about
        one source and reason: its refusals, and the lines given to
        L{paced}.
    @param own_address: the L{OwnAddressAllowance} of unpenalised
        failures from a profile's own address.
    @param on_refusing: called with C{(now, host, source, until)} when a
        source's penalty first reaches the minimum (C{host} being the peer
        whose misdeed did it, C{source} what L{source_key} made of it), so
        that from C{now} to C{until} every connection from the source is
        refused (the C{rate_limited} alert); once per such run of
        refusals, however many connections it tries.

    Until L{expect} is called no connection is expected: what it asks (the
    rendezvous) observes the gate, so it is built after the gate.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        limits: Limits | None = None,
        metrics=None,
        login_grace: float = 30.0,
        log_interval: float = DEFAULT_LOG_INTERVAL,
        on_refusing: Callable[[float, str, str, float], None] | None = None,
        own_address: OwnAddressAllowance | None = None,
    ) -> None:
        self.clock = clock
        self._own_address = (
            OwnAddressAllowance() if own_address is None else own_address
        )
        self._on_refusing = on_refusing
        self.limits = Limits() if limits is None else limits
        self.login_grace = login_grace
        self._metrics = metrics
        self._paced = PacedLog(clock, log_interval, always_count=True)
        self._expected = None

    def expect(self, expected) -> None:
        """
        From now on, admit the connections C{expected} says the server
        waits for past the starting cap, within the reserve; it also
        follows the audit log (see L{audited}), for profiles' moves.
        """
        self._expected = expected

    def admit(self, host: str | None) -> Ticket | None:
        """
        A TCP connection arrived from C{host}.

        @return: its L{Ticket}, or L{None} when it is refused (already
            counted and logged); the caller then closes it at once.
        """
        key = source_key(host)
        expected = self._expected is not None and self._expected.expects(host)
        reason = self.limits.admit(key, self.clock.seconds(), expected)
        if reason is not None:
            self.refused(host, key, reason)
            return None
        return Ticket(self, host, key)

    def penalise(self, host: str | None, key: str | None, seconds: float) -> None:
        """
        Add C{seconds} of penalty to source C{key}, whose connection came
        from C{host}.
        """
        if key is None:
            return
        now = self.clock.seconds()
        refusing = self.limits.refused_for_penalty(key, now)
        if not self.limits.penalise(key, seconds, now):
            self._report(None, "penalties_full", "penalties_full")
            return
        until = self.limits.refused_until(key, now)
        if not refusing and until is not None and self._on_refusing is not None:
            self._on_refusing(now, host, key, until)

    def source(self, host: str | None) -> str | None:
        """
        @return: the source C{host} counts as (its IPv4 address, or its
            IPv6 /64), which is what the limits and their notices are per.
        """
        return source_key(host)

    def penalty_left(self, host: str | None) -> float | None:
        """
        @return: the seconds the source of C{host} stays refused for its
            penalty, or L{None} when it is not refused for one (the TLS
            listener tells such a source how long to wait).
        """
        key = source_key(host)
        if key is None:
            return None
        now = self.clock.seconds()
        until = self.limits.refused_until(key, now)
        return None if until is None else until - now

    def failed(self, host: str | None) -> None:
        """
        The TCP peer at C{host} failed to authenticate.
        """
        self.penalise(host, source_key(host), self.limits.penalties.authfail)

    def audited(self, event) -> None:
        """
        An audit log observer: penalise the sources of failed enrollments
        and rotations, and tell the expected sources where profiles are.
        A failure that only named a key id, from the profile's own
        address, is forgiven within the allowance (see L{_forgiven}).
        """
        failure = event.event in PENALISED_EVENTS or event.event in _OWN_ADDRESS_EVENTS
        if failure and not self._forgiven(event):
            self.failed(event.source)
        if self._expected is not None:
            self._expected.audited(event)

    def _forgiven(self, event) -> bool:
        """
        Is C{event} a failure from its profile's own address that the
        allowance still covers?  The rotation rules judged a
        C{rotation_abandoned} own already; a key id only named is judged
        against the location the expected sources follow.
        """
        if event.event in _OWN_ADDRESS_EVENTS:
            own = True
        elif event.event in _NAMING_EVENTS and event.username is not None:
            own = self._expected is not None and self._expected.registered_at(
                event.username, event.source
            )
        else:
            own = False
        key = source_key(event.source)
        if not own or key is None:
            return False
        return self._own_address.forgive(
            event.username, key, self.clock.seconds()
        )

    def authenticated(self, request, outcome) -> None:
        """
        A rendezvous observer: penalise the device that answered a classic
        challenge wrongly.
        """
        if outcome.verdict.value == "rejected":
            self.failed(outcome.source)

    def refused(self, host: str | None, key: str | None, reason: str) -> None:
        """
        Count and (once per source per interval) log a refusal.
        """
        if self._metrics is not None:
            self._metrics.rejected.labels(reason).inc()
        self._report(host, key, reason)

    def unanswered(self, host: str | None, key: str | None) -> None:
        """
        A connection from C{host} found no authentication waiting for it:
        log it once per source per interval (not counted as a refusal in
        the metrics, as it was admitted).
        """
        self._report(host, key, "no_request")

    def rotated(self, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.rotated(seconds)

    def penalised(self) -> int:
        """
        @return: the sources refused for their penalty now.
        """
        return self.limits.penalised(self.clock.seconds())

    def paced(
        self, log: Logger, level: LogLevel, host: str | None, reason: str,
        text: str, **fields,
    ) -> None:
        """
        Log C{text} with C{fields} through C{log} at C{level}, once per
        source of C{host} and C{reason} per interval, the line saying how
        many alike were kept quiet since the last one: the rule every line
        the server writes about an incoming connection or datagram holds
        to, so that no peer can make it write more.  C{host} may be a UDP
        datagram's source: pacing a log line by it penalises no one.
        """
        self._paced.emit(
            log, level, (reason, source_key(host)), text,
            source=host, reason=reason, **fields,
        )

    def _report(self, host, key, reason: str) -> None:
        if reason != "penalties_full":
            self.paced(
                self.log,
                LogLevel.warn,
                host,
                reason,
                "{what} a connection from {source}: {why}",
                what="dropped" if reason == "grace" else "refused",
                why=_REASONS[reason],
            )
            return
        quiet = self._paced.due((reason, key))
        if quiet is not None:
            self.log.warn(
                "the table of per-source penalties is full; new penalties "
                "are not recorded ({quiet} more since the last report)",
                quiet=quiet,
            )


_REASONS = {
    "penalty": "its source is penalised for failed attempts",
    "per_source": "its source has too many connections",
    "startups": "too many connections are starting",
    "grace": "it did not finish its exchange within the login grace time",
    "no_request": "no authentication is waiting for it",
}


class _NoTicket:
    """
    The ticket of a connection on a listener without limits: nothing to
    count, time or log.
    """

    def start(self, expire) -> None:
        pass

    def unanswered(self) -> None:
        pass

    def timed_out(self) -> None:
        pass

    def rotation_started(self) -> None:
        pass

    def rotated(self) -> None:
        pass

    def closed(self) -> None:
        pass


class _OpenGate:
    """
    A gate that admits every connection and watches none.
    """

    def admit(self, host):
        return _NO_TICKET


_NO_TICKET = _NoTicket()

#: The gate of a factory given none.
OPEN_GATE = _OpenGate()
