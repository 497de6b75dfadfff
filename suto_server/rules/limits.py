"""
Limits on what one source, and all sources together, may ask of the server,
so that bad traffic never hurts good users.

Modelled on OpenSSH (C{PerSourcePenalties}, C{PerSourceMaxStartups},
C{MaxStartups}, C{LoginGraceTime}):

  - A source that fails to authenticate, or keeps a connection past the
    login grace time, earns a penalty: seconds added to its account, which
    decays in real time and is capped.  Once a source's penalty reaches the
    minimum it is refused every new connection until the penalty has
    decayed to nothing.  One failure is forgiven; a run of them is not.
  - One source may hold only so many connections at once.
  - Connections that have not finished their first exchange (a classic
    verdict, an enrollment, a device's first rotation) are "starting";
    past C{start} of them a new one is refused at random with a chance
    rising from C{rate} percent to certainty at C{full}, so a flood cannot
    take every slot and a good device retrying still gets in.
  - A starting connection gets the login grace time, counted from its
    start and never reset by traffic, to finish its exchange.

A source is its IPv4 address, or its IPv6 /64 (one host's usual share, so
stepping through a /64 gains nothing); an IPv4-mapped address counts as
IPv4.  Only TCP peers are sources: UDP packets (hellos, check answers) can
carry any source address, so they never feed these limits, or anyone could
have a victim banned.

L{Limits} is the pure rule (it takes C{now}); L{ConnectionGate} applies it
to connections with a clock, counts refusals in the metrics and logs each
kind of refusal once per source per interval.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suto_server.core.throttle import OncePerInterval

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

def source_key(host: str | None) -> str | None:
    """
    @return: the source C{host} counts as (its IPv4 address or its IPv6
        /64), or L{None} for a peer that is not an IP address.
    """
    if host is None:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


@dataclass(frozen=True)
class MaxStartups:
    """
    OpenSSH's C{MaxStartups start:rate:full}.
    """

    start: int = 100
    rate: int = 30
    full: int = 1000

    @classmethod
    def parse(cls, text: str) -> MaxStartups:
        """
        C{start:rate:full}, or a single number C{n} meaning C{n:100:n}.

        @raise ValueError: not that form, or not 1 <= start <= full and
            0 <= rate <= 100.
        """
        parts = str(text).split(":")
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise ValueError("must be N or START:RATE:FULL") from None
        if len(numbers) == 1:
            numbers = [numbers[0], 100, numbers[0]]
        if len(numbers) != 3:
            raise ValueError("must be N or START:RATE:FULL")
        start, rate, full = numbers
        if not (1 <= start <= full and 0 <= rate <= 100):
            raise ValueError("needs 1 <= START <= FULL and 0 <= RATE <= 100")
        return cls(start, rate, full)

    def __str__(self) -> str:
        return f"{self.start}:{self.rate}:{self.full}"

    def drop_chance(self, starting: int) -> float:
        """
        @return: the chance of refusing a new connection while C{starting}
            connections are starting.
        """
        if starting < self.start:
            return 0.0
        if starting >= self.full:
            return 1.0
        rate = self.rate / 100
        return rate + (1 - rate) * (starting - self.start) / (self.full - self.start)


@dataclass(frozen=True)
class Penalties:
    """
    Seconds of penalty per misdeed, and how they add up.  A penalty of 0
    turns that misdeed's penalty off.

    @ivar authfail: per failed authentication or enrollment.
    @ivar grace: per connection dropped for the login grace time.
    @ivar min: the penalty a source must reach before it is refused.
    @ivar max: the longest a source can be refused for.
    @ivar max_sources: the most sources with a penalty remembered; when
        full (and none has decayed) new penalties are not recorded, as
        OpenSSH's C{overflow=permissive}, so memory stays bounded.
    """

    # Four failures (12 s) stay under min, so an enrollment window's fifth
    # and last attempt (DEFAULT_MAX_ATTEMPTS) is heard.
    authfail: float = 3.0
    grace: float = 10.0
    min: float = 15.0
    max: float = 600.0
    max_sources: int = 65536


@dataclass
class _Penalty:
    expiry: float
    active: bool = False


class Limits:
    """
    The rules, without a clock: each method that needs the time takes
    C{now}.

    @param max_per_source: the most connections one source may hold at
        once; 0 for no limit.
    @param random: returns a float in [0, 1), for the C{MaxStartups} draw.
    """

    def __init__(
        self,
        *,
        max_per_source: int = 32,
        startups: MaxStartups = MaxStartups(),
        penalties: Penalties = Penalties(),
        random: Callable[[], float] = random.random,
    ) -> None:
        self.max_per_source = max_per_source
        self.startups = startups
        self.penalties = penalties
        self._random = random
        self._connections: dict[str, int] = {}
        self._penalties: dict[str, _Penalty] = {}
        self.starting = 0

    def connections(self, key: str) -> int:
        """
        @return: the connections source C{key} holds now.
        """
        return self._connections.get(key, 0)

    def admit(self, key: str | None, now: float) -> str | None:
        """
        A connection from source C{key} (L{None}: not an IP peer) arrived.

        @return: L{None} if it is admitted, and then counted as starting
            and as one of its source's connections until L{settled} and
            L{closed} say otherwise; else why it is refused: C{"penalty"},
            C{"per_source"} or C{"startups"}.
        """
        if key is not None:
            if self.refused_for_penalty(key, now):
                return "penalty"
            held = self._connections.get(key, 0)
            if self.max_per_source and held >= self.max_per_source:
                return "per_source"
        chance = self.startups.drop_chance(self.starting)
        if chance and self._random() < chance:
            return "startups"
        self.starting += 1
        if key is not None:
            self._connections[key] = self._connections.get(key, 0) + 1
        return None

    def settled(self) -> None:
        """
        An admitted connection finished its first exchange.
        """
        self.starting -= 1

    def closed(self, key: str | None, settled: bool) -> None:
        """
        An admitted connection from C{key} ended; C{settled} says whether
        L{settled} was called for it.
        """
        if not settled:
            self.starting -= 1
        if key is None:
            return
        held = self._connections.get(key, 0) - 1
        if held > 0:
            self._connections[key] = held
        else:
            self._connections.pop(key, None)

    def penalise(self, key: str, seconds: float, now: float) -> bool:
        """
        Add C{seconds} of penalty to source C{key}.

        @return: C{False} if the table of penalties is full, so the
            penalty could not be recorded; else C{True}.
        """
        if seconds <= 0:
            return True
        penalty = self._penalties.get(key)
        if penalty is None or penalty.expiry <= now:
            if penalty is None and len(self._penalties) >= self.penalties.max_sources:
                self._forget_decayed(now)
                if len(self._penalties) >= self.penalties.max_sources:
                    return False
            penalty = self._penalties[key] = _Penalty(now)
        penalty.expiry = min(penalty.expiry + seconds, now + self.penalties.max)
        if penalty.expiry - now >= self.penalties.min:
            penalty.active = True
        return True

    def refused_for_penalty(self, key: str, now: float) -> bool:
        """
        Is source C{key} refused for its penalty at C{now}?
        """
        return self.refused_until(key, now) is not None

    def refused_until(self, key: str, now: float) -> float | None:
        """
        @return: when source C{key}'s penalty will have decayed, if it is
            refused for it at C{now}; else L{None}.
        """
        penalty = self._penalties.get(key)
        if penalty is None:
            return None
        if penalty.expiry <= now:
            del self._penalties[key]
            return None
        return penalty.expiry if penalty.active else None

    def penalised(self, now: float) -> int:
        """
        @return: how many sources are refused for their penalty at C{now}.
        """
        return sum(
            1
            for penalty in self._penalties.values()
            if penalty.active and penalty.expiry > now
        )

    def _forget_decayed(self, now: float) -> None:
        for key in [k for k, p in self._penalties.items() if p.expiry <= now]:
            del self._penalties[key]


class Ticket:
    """
    One admitted connection's standing with the gate.  The protocol tells
    it what happens (L{start}, L{timed_out}, L{rotation_started},
    L{rotated}, L{closed}).
    """

    def __init__(self, gate: ConnectionGate, host: str | None, key: str | None) -> None:
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
        the same kind of refusal of the same source.
    @param on_refusing: called with C{(now, host, source, until)} when a
        source's penalty first reaches the minimum (C{host} being the peer
        whose misdeed did it, C{source} what L{source_key} made of it), so
        that from C{now} to C{until} every connection from the source is
        refused (the C{rate_limited} alert); once per such run of
        refusals, however many connections it tries.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        limits: Limits | None = None,
        metrics=None,
        login_grace: float = 30.0,
        log_interval: float = 60.0,
        on_refusing: Callable[[float, str, str, float], None] | None = None,
    ) -> None:
        self.clock = clock
        self._on_refusing = on_refusing
        self.limits = Limits() if limits is None else limits
        self.login_grace = login_grace
        self._metrics = metrics
        self._reports = OncePerInterval(log_interval)

    def admit(self, host: str | None) -> Ticket | None:
        """
        A TCP connection arrived from C{host}.

        @return: its L{Ticket}, or L{None} when it is refused (already
            counted and logged); the caller then closes it at once.
        """
        key = source_key(host)
        reason = self.limits.admit(key, self.clock.seconds())
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
        and rotations.
        """
        if event.event in PENALISED_EVENTS:
            self.failed(event.source)

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

    def rotated(self, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.rotated(seconds)

    def penalised(self) -> int:
        """
        @return: the sources refused for their penalty now.
        """
        return self.limits.penalised(self.clock.seconds())

    def _report(self, host, key, reason: str) -> None:
        quiet = self._reports.due((reason, key), self.clock.seconds())
        if quiet is None:
            return
        if reason == "penalties_full":
            self.log.warn(
                "the table of per-source penalties is full; new penalties "
                "are not recorded ({quiet} more since the last report)",
                quiet=quiet,
            )
            return
        self.log.warn(
            "{what} a connection from {source}: {why} "
            "({quiet} more alike since the last report)",
            what="dropped" if reason == "grace" else "refused",
            source=host,
            reason=reason,
            why=_REASONS[reason],
            quiet=quiet,
        )


_REASONS = {
    "penalty": "its source is penalised for failed attempts",
    "per_source": "its source has too many connections",
    "startups": "too many connections are starting",
    "grace": "it did not finish its exchange within the login grace time",
}


class _NoTicket:
    """
    The ticket of a connection on a listener without limits.
    """

    def start(self, expire) -> None:
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
