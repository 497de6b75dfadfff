# -*- test-case-name: tests.rules.test_limits -*-
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

  - A connection the server expects (from the target of a pending
    classic request, or from an enrolled profile's registered location:
    L{suto_server.rules.expected}) is never refused at random, and past
    C{full} it may still take one of C{reserve} more starting slots, so
    a flood of unexpected connections cannot stop the device a login
    waits for.  The reserve is bounded, and the penalties and the
    per-source cap apply to expected sources as to any other.

A source is its IPv4 address, or its IPv6 /64 (one host's usual share, so
stepping through a /64 gains nothing); an IPv4-mapped address counts as
IPv4.  Only TCP peers are sources: UDP packets (hellos, check answers) can
carry any source address, so they never feed these limits, or anyone could
have a victim banned.

L{Limits} is the pure rule (it takes C{now});
L{suto_server.rules.gate.ConnectionGate} applies it to connections with a
clock.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Callable


def peer_ip(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    @return: the address C{host} names, an IPv4-mapped IPv6 address as
        IPv4 and without an IPv6 zone, or L{None} for a peer that is not
        an IP address.
    """
    if host is None:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def source_key(host: str | None) -> str | None:
    """
    @return: the source C{host} counts as (its IPv4 address or its IPv6
        /64), or L{None} for a peer that is not an IP address.
    """
    ip = peer_ip(host)
    if ip is None:
        return None
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

    @property
    def reserve(self) -> int:
        """
        The starting slots past C{full} that only expected connections
        may take: as many as C{start}, the starting load the operator
        counts as normal, so the devices that logins and rotations wait
        for get a normal load's worth of room through any flood.
        """
        return self.start

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

    def admit(
        self, key: str | None, now: float, expected: bool = False
    ) -> str | None:
        """
        A connection from source C{key} (L{None}: not an IP peer) arrived.

        @param expected: whether the server waits for a connection from
            there: then it is admitted while fewer than C{full} plus
            C{reserve} connections are starting, without the random draw.
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
        if expected:
            if self.starting >= self.startups.full + self.startups.reserve:
                return "startups"
        else:
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


class OwnAddressAllowance:
    """
    How many unproven failures a profile's own address may cause without
    a penalty (docs/PROTOCOL.md §9.3, §10.3).

    A peer that only names a profile's key id, from the address the
    profile was last used from (behind the endpoint's NAT, or on the same
    IPv6 /64), must not get that address refused: it is the real agent's
    too.  Nor may it fail for free without end, since each failure costs a
    TLS handshake, a key exchange and a durable audit write.  So each
    profile and source may fail C{allowance} times per C{window} seconds
    unpenalised, and is penalised as any other source past that.  The
    real agent fails at most once per rotation interval and backs off, so
    it stays well inside.

    At most C{max_entries} profile and source pairs are remembered; when
    the table is full (and none has expired) a failure is not forgiven, so
    a flood of names cannot buy unpenalised failures either.

    Pure: every method takes C{now}.
    """

    def __init__(
        self, allowance: int = 20, window: float = 60.0, max_entries: int = 65536
    ) -> None:
        self.allowance = allowance
        self.window = window
        self.max_entries = max_entries
        # (user, source) -> (when the window began, failures in it)
        self._spent: dict[tuple[str, str], tuple[float, int]] = {}

    def forgive(self, user: str, source: str, now: float) -> bool:
        """
        A failure of C{user}'s profile came from its own address,
        C{source}: count it.

        @return: whether it is within the allowance, so unpenalised.
        """
        pair = (user, source)
        began, failures = self._spent.get(pair, (now, 0))
        if now - began >= self.window:
            began, failures = now, 0
        if pair not in self._spent and len(self._spent) >= self.max_entries:
            self._expire(now)
            if len(self._spent) >= self.max_entries:
                return False
        failures += 1
        self._spent[pair] = (began, failures)
        return failures <= self.allowance

    def _expire(self, now: float) -> None:
        for pair, (began, _) in list(self._spent.items()):
            if now - began >= self.window:
                del self._spent[pair]


def holding(most: int) -> Limits:
    """
    L{Limits} that count only what one key holds at once, at most C{most}:
    no startups are refused and no penalties earned, so that each admitted
    item may be settled at once and counted until it is closed.
    """
    return Limits(
        max_per_source=most,
        startups=MaxStartups(start=2**62, rate=0, full=2**62),
    )


def take(held: Limits, key: str, now: float) -> bool:
    """
    Count one more item held by C{key} in L{holding} limits, if it may.

    @return: whether it was admitted (then L{Limits.closed} with
        C{settled=True} releases it).
    """
    if held.admit(key, now) is not None:
        return False
    held.settled()
    return True
