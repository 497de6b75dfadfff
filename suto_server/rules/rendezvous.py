# -*- test-case-name: tests.rules.test_rendezvous,tests.phases.test_classic_off_reactor -*-
"""
Pending authentication requests, matched to incoming connections.

In SUTO the server speaks first: it sends a UDP hello to where the user's
device is and then waits for that device to connect back.  The TCP
connection carries no user name, so the server must know which request a
connection answers.  A request records the source networks it accepts a
connection from; the first connection from one of them claims the request,
and a connection that claims nothing is refused.

Two pending requests may never accept the same source address, otherwise a
connection could be matched to the wrong user.  A request whose device does
not connect within the timeout ends as L{Verdict.TIMEOUT}, unless a
connection from one of its sources was seen and ended before it could
answer (L{Rendezvous.noticed}): then the request ends with what ended that
connection, so the operator learns why no answer came.

Several processes sharing a store share their requests through
C{peers} (L{suto_server.cluster.relay}): each announces the requests it
opens, so a device whose connection reaches another process is served
there.  A claim is taken in the store, so one connection claims a
request whichever process it reaches; the process that claimed it runs
the challenge, records the outcome (the observers run where the device
answered) and announces it, and the process that opened it fires its
request's L{Deferred} with that outcome.  A request claimed elsewhere
whose outcome never comes (that process died) ends as L{Verdict.ERROR}
after L{REMOTE_ANSWER_WAIT} seconds.

Taking the claim is a round trip to the store the reactor does not wait
for (L{Rendezvous.claim} is a coroutine): while it is out the request is
held for that connection (L{AuthRequest.claiming}), so no other
connection here claims it, and when it is back the request is checked
again, since it may have ended meanwhile (its timeout, or the other
process's connection that claimed it first).
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from suto_server.rules.limits import peer_ip

#: Seconds the hello for a request may wait for the other processes to
#: hear of it (see L{AuthRequest.announced}).
ANNOUNCE_WAIT = 1.0

#: Seconds the process that opened a request waits for the outcome once
#: another process's connection claimed it: the challenge's own exchange
#: timeouts end it well before.
REMOTE_ANSWER_WAIT = 60.0


class Verdict(enum.Enum):
    """
    How one authentication request ended.

    @cvar TIMEOUT: no device connected from the request's sources.
    @cvar TLS_TRUST_FAILURE: a device connected but its TLS handshake
        failed (most often: it does not trust the server's certificate),
        and no device answered afterwards.
    @cvar REFUSED_BY_LIMITS: the connection gate refused a connection from
        the request's sources (a penalised or flooding source), and no
        device answered afterwards.
    """

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    TLS_TRUST_FAILURE = "tls_trust_failure"
    REFUSED_BY_LIMITS = "refused_by_limits"
    ERROR = "error"


class RequestConflict(Exception):
    """
    A pending request already accepts connections from an overlapping
    network, so a new one could not be told apart from it.
    """


@dataclass(frozen=True)
class Outcome:
    """
    The result a request's L{Deferred} fires with.

    @ivar source: the address of the device that answered, or L{None}.
    @ivar reason: a short, secret-free explanation for logs and operators.
    """

    user: str
    verdict: Verdict
    source: str | None = None
    reason: str = ""


@dataclass(eq=False)
class AuthRequest:
    """
    One pending authentication: which user, which sources may answer it.
    """

    user: str
    accept_from: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    done: Deferred = field(default_factory=Deferred)
    claimed_by: str | None = None
    #: The verdict and reason to end with if no device answers in time.
    noticed: tuple[Verdict, str] | None = None
    #: Names the request among every process sharing the store.
    key: int = field(default_factory=lambda: secrets.randbits(63))
    #: Whether another process opened it; this one only mirrors it.
    remote: bool = False
    #: Whether this process took its claim in the store.
    taken: bool = False
    #: Whether a connection here is taking its claim in the store.
    claiming: bool = False
    #: With other processes: fires once they all heard of the request
    #: (L{Rendezvous.heard_by_all}), or after L{ANNOUNCE_WAIT} seconds; the
    #: hello waits for it, so that the device's connection does not reach
    #: a process that has not heard yet.  L{None} without other processes.
    announced: Deferred | None = None
    _timer: IDelayedCall | None = None
    _hello_timer: IDelayedCall | None = None

    def accepts(self, address: str) -> bool:
        """
        Is C{address} inside one of the networks this request accepts?
        """
        ip = peer_ip(address)
        return ip is not None and any(ip in network for network in self.accept_from)


def _unmapped(item):
    """
    The network C{item} names, with an IPv4-mapped IPv6 network
    (C{::ffff:192.0.2.7}) turned into its IPv4 form, since that is how a
    connecting address is compared.
    """
    if isinstance(item, ipaddress.IPv4Network):
        # What a parsed hello target gives: nothing to read again (making
        # a network of a network parses its text, 11 microseconds).
        return item
    network = (
        item
        if isinstance(item, ipaddress.IPv6Network)
        else ipaddress.ip_network(item, strict=False)
    )
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class Rendezvous:
    """
    The table of pending requests.

    @ivar timeout: seconds a device has to connect back after the hello.
    @param observers: callables given each finished request and its
        L{Outcome} (the metrics and the per-source penalties); one that
        raises is logged and the request still fires.
    @param peers: the other processes sharing the store, or L{None}:
        C{opened(request, timeout)}, C{claimed(request)} and
        C{finished(request, outcome)} announce, C{take(request)} claims
        in the store (a L{Deferred} firing with C{True} if no other
        connection did), C{release(request)} lets that claim go; none
        raises or fails.
    """

    log = Logger()

    def __init__(
        self, clock: IReactorTime, timeout: float = 5.0, observers=(), peers=None
    ) -> None:
        self._clock = clock
        self.timeout = timeout
        self._observers = list(observers)
        self._peers = peers
        # This process's pending requests (in the order opened) and other
        # processes', by key.
        self._own: dict[int, AuthRequest] = {}
        self._remote: dict[int, AuthRequest] = {}
        # Requests by the single addresses they accept (the common case:
        # one device), so opening and claiming cost the same with ten
        # thousand requests in flight as with one; wider networks
        # (broadcast targets) are few and searched.
        self._hosts: dict = {}
        self._subnets: list = []

    @property
    def pending(self) -> tuple[AuthRequest, ...]:
        return tuple(self._own.values())

    def open(
        self, user: str, accept_from, timeout: float | None = None
    ) -> AuthRequest:
        """
        Register a request for C{user}.

        @param accept_from: networks (or addresses) a device may answer
            from.
        @param timeout: seconds to wait for the device, overriding the
            default.
        @raise RequestConflict: a pending request overlaps.
        @raise ValueError: C{accept_from} is empty or not addresses.
        """
        networks = tuple(_unmapped(item) for item in accept_from)
        if not networks:
            raise ValueError("a request needs at least one source to accept")
        request = AuthRequest(user=user, accept_from=networks)
        for network in networks:
            other = self._overlapping(network)
            if other is not None:
                raise RequestConflict(
                    f"a request for {other.user} is already waiting for "
                    f"an answer from an overlapping address"
                )
        seconds = self.timeout if timeout is None else timeout
        request._timer = self._clock.callLater(seconds, self._expire, request)
        self._own[request.key] = request
        self._index(request)
        if self._peers is not None:
            request.announced = Deferred()
            request._hello_timer = self._clock.callLater(
                ANNOUNCE_WAIT, self.heard_by_all, request.key
            )
            self._peers.opened(request, seconds)
        return request

    def heard_by_all(self, key: int) -> None:
        """
        Every other process heard of this process's request C{key} (or it
        could not be told, or is taking too long): its hello may go.
        """
        request = self._own.get(key)
        if request is None or request.announced.called:
            return
        if request._hello_timer.active():
            request._hello_timer.cancel()
        request.announced.callback(None)

    def _index(self, request: AuthRequest) -> None:
        for network in request.accept_from:
            if network.num_addresses == 1:
                self._hosts[network.network_address] = request
            else:
                self._subnets.append((network, request))

    def _unindex(self, request: AuthRequest) -> None:
        for network in request.accept_from:
            if network.num_addresses == 1:
                self._hosts.pop(network.network_address, None)
        self._subnets = [
            entry for entry in self._subnets if entry[1] is not request
        ]

    def _overlapping(self, network) -> AuthRequest | None:
        if network.num_addresses == 1:
            found = self._hosts.get(network.network_address)
            if found is not None:
                return found
            candidates = self._subnets
        else:
            candidates = self._subnets + [
                (ipaddress.ip_network(address), request)
                for address, request in self._hosts.items()
            ]
        for other, request in candidates:
            if other.version == network.version and other.overlaps(network):
                return request
        return None

    async def claim(self, address: str) -> AuthRequest | None:
        """
        A connection arrived from C{address}: hand it the request it
        answers, at most once, or L{None}.
        """
        request = self._unclaimed(address)
        if request is None:
            return None
        if self._peers is not None:
            request.claiming = True
            try:
                taken = await self._peers.take(request)
            finally:
                request.claiming = False
            if not self._pending(request):
                # It ended while the store answered.
                if taken:
                    self._peers.release(request)
                return None
            if not taken:
                # A connection to another process claimed it first.
                return None
            request.taken = True
        request.claimed_by = address
        self._cancel_timer(request)
        if self._peers is not None:
            self._peers.claimed(request)
        return request

    def _pending(self, request: AuthRequest) -> bool:
        """
        Is C{request} still one of this process's pending requests?
        """
        table = self._remote if request.remote else self._own
        return table.get(request.key) is request

    def expects(self, address: str) -> bool:
        """
        Would a connection from C{address} claim a request now?  Costs a
        dictionary lookup, and a look through the few pending requests
        to networks (broadcast targets).
        """
        return self._unclaimed(address) is not None

    def noticed(self, address: str, verdict: Verdict, reason: str) -> bool:
        """
        A connection from C{address} ended before it could answer a request
        (its TLS handshake failed, or the connection gate refused it): if a
        pending request accepts C{address}, it ends with C{verdict} and
        C{reason} should no device answer in time.  The request stays open,
        since anyone on the target's network can cause this and the device
        may still answer.

        @return: whether a pending request accepts C{address}.
        """
        request = self._unclaimed(address)
        if request is None:
            return False
        request.noticed = (verdict, reason)
        return True

    def _unclaimed(self, address: str) -> AuthRequest | None:
        """
        @return: the pending request accepting C{address}, if no
            connection has claimed it yet; else L{None}.
        """
        ip = peer_ip(address)
        if ip is None:
            return None
        request = self._hosts.get(ip)
        if request is None:
            request = next(
                (req for network, req in self._subnets if ip in network), None
            )
        if request is None or request.claimed_by is not None or request.claiming:
            return None
        return request

    def finish(
        self, request: AuthRequest, verdict: Verdict, reason: str = ""
    ) -> None:
        """
        End C{request}.  Finishing twice is harmless: the first verdict
        stands (a connection lost after its verdict must not overwrite it).
        """
        if not self._forget(request):
            return
        outcome = Outcome(request.user, verdict, request.claimed_by, reason)
        for observer in self._observers:
            try:
                observer(request, outcome)
            except Exception:
                self.log.failure("a rendezvous observer failed")
        if self._peers is not None:
            self._peers.finished(request, outcome)
            if request.taken:
                self._peers.release(request)
        request.done.callback(outcome)

    def _forget(self, request: AuthRequest) -> bool:
        """
        Take C{request} out of every table.

        @return: whether it was still there.
        """
        if not self._pending(request):
            return False
        del (self._remote if request.remote else self._own)[request.key]
        self._unindex(request)
        self._cancel_timer(request)
        if request._hello_timer is not None and request._hello_timer.active():
            request._hello_timer.cancel()
        return True

    def remote_opened(self, key: int, user: str, accept_from, timeout: float) -> None:
        """
        Another process opened a request: mirror it, so that a connection
        from its sources reaching this process claims it, until that
        process announces its end (or, should that never come, for
        C{timeout} and L{REMOTE_ANSWER_WAIT} seconds more).
        """
        networks = tuple(_unmapped(item) for item in accept_from)
        if key in self._remote:
            return
        if any(map(self._overlapping, networks)):
            self.log.warn(
                "another process's request for {user} overlaps one here:"
                " it is served there only",
                user=user,
            )
            return
        request = AuthRequest(user=user, accept_from=networks, key=key, remote=True)
        request._timer = self._clock.callLater(
            timeout + REMOTE_ANSWER_WAIT, self._forget, request
        )
        self._remote[key] = request
        self._index(request)

    def remote_claimed(self, key: int, source: str) -> None:
        """
        A connection from C{source} to another process claimed the request
        C{key}: no connection here may claim it, and if it is this
        process's own, it waits for the outcome instead of the device.
        """
        request = self._remote.get(key) or self._own.get(key)
        if request is None or request.claimed_by is not None:
            return
        request.claimed_by = source
        if not request.remote:
            self._cancel_timer(request)
            request._timer = self._clock.callLater(
                REMOTE_ANSWER_WAIT, self._unanswered, request
            )

    def remote_finished(
        self, key: int, verdict: Verdict, reason: str, source: str | None
    ) -> None:
        """
        Another process ended the request C{key}: a mirror is dropped, and
        a request of this process's own that a connection to another
        process claimed fires with that outcome (its observers ran where
        the device answered).  Only the claimer gives a verdict: an end
        announced for an own request claimed here, or by no one, changes
        nothing.
        """
        request = self._remote.get(key) or self._own.get(key)
        if request is None:
            return
        if not request.remote and (request.taken or request.claimed_by is None):
            return
        if not self._forget(request):
            return
        if not request.remote:
            request.done.callback(Outcome(request.user, verdict, source, reason))

    def drop_mirrors(self) -> None:
        """
        Forget every other process's request: this one stops hearing of
        them.
        """
        for request in list(self._remote.values()):
            self._forget(request)

    def _unanswered(self, request: AuthRequest) -> None:
        request._timer = None
        self.finish(
            request,
            Verdict.ERROR,
            "the server process the device connected to gave no verdict",
        )

    def _expire(self, request: AuthRequest) -> None:
        request._timer = None
        verdict, reason = request.noticed or (
            Verdict.TIMEOUT,
            "no device connected in time",
        )
        self.log.info(
            "no device answered the hello for {user} in time: {reason}",
            user=request.user,
            verdict=verdict.value,
            reason=reason,
        )
        self.finish(request, verdict, reason)

    @staticmethod
    def _cancel_timer(request: AuthRequest) -> None:
        if request._timer is not None and request._timer.active():
            request._timer.cancel()
        request._timer = None
