# -*- test-case-name: tests.rules.test_expected -*-
"""
Which addresses the server waits to hear from, so that the connection
gate can keep room for them through a flood (L{suto_server.rules.limits}).

Two kinds of connection are expected:

  - The connect-back of a classic login: its address is inside the
    target of a pending request that no connection has claimed yet
    (L{Rendezvous.expects}).  A request sent to a network or a broadcast
    address makes every address of that network expected, until one of
    them claims it or it times out: the device may answer from any of
    them, and the reserve and the request's own timeout bound what a
    stranger on that network gains.
  - The rotation or reconnection of an enrolled endpoint: its address is
    the registered location (the last address) of a profile.

L{KnownLocations} keeps the second kind in memory, so that asking costs
one dictionary lookup per connection however many profiles there are: it
is read from the store once, when the server starts, and then follows the
audit log, in which every enrollment (C{enrolled}) and every move
(C{location_changed}) is recorded with the profile's new address as its
source.  Every process of a deployment keeps the whole table, so it is
kept small: read a page of C{(user, address)} pairs at a time
(L{IProfileStore.locations}), never the profiles whole, and each address
packed (bytes, not an L{ipaddress} object).
"""

from __future__ import annotations

import ipaddress

from suto_server.rules.limits import peer_ip, source_key
from suto_server.rules.rendezvous import Rendezvous
from suto_server.store.interfaces import IProfileStore
from suto_server.store.records import LOCATIONS_PAGE

#: The audit events whose source is where their profile now is.
_LOCATING_EVENTS = frozenset({"enrolled", "location_changed"})


def _packed(host: str | None) -> bytes | None:
    """
    @return: the address C{host} names as L{peer_ip} reads it, in its
        packed form (4 bytes for IPv4, 16 for IPv6, so the two never
        meet), or L{None} for a peer that is not an IP address.  The
        table keeps this form: 37 bytes of Python object for an IPv4
        address against 76-80 for an L{ipaddress.IPv4Address}.
    """
    ip = peer_ip(host)
    return None if ip is None else ip.packed


def _locations(store):
    """
    Every profile's C{(user, address)}, read a page at a time, so that
    start-up never holds more than one page of the store's answer: the
    profiles read whole (L{IProfileStore.list_profiles}, sealed keys and
    every field) left ≈ 750 bytes resident per profile after they were
    dropped, since the peak stays in the process's heap.
    """
    after = None
    while True:
        page = store.locations(after, LOCATIONS_PAGE)
        yield from page
        if len(page) < LOCATIONS_PAGE:
            return
        after = page[-1][0]


class KnownLocations:
    """
    The registered location of every profile, by address.

    @param locations: C{(user, address)} pairs to start from.
    """

    def __init__(self, locations=()) -> None:
        # user -> the packed address of their profile's location.
        self._by_user: dict[str, bytes] = {}
        # packed address -> how many profiles are registered there
        # (endpoints behind one NAT address share it).
        self._profiles: dict[bytes, int] = {}
        for user, address in locations:
            self.moved(user, address)

    @classmethod
    def of(cls, store) -> KnownLocations:
        """
        @return: the locations of the profiles in C{store}, none if it
            keeps no profiles.
        """
        if not IProfileStore.providedBy(store):
            return cls()
        return cls(_locations(store))

    def moved(self, user: str, address: str) -> None:
        """
        C{user}'s profile is now registered at C{address}.
        """
        here = _packed(address)
        if here is None:
            return
        old = self._by_user.get(user)
        if old == here:
            return
        if old is not None:
            left = self._profiles[old] - 1
            if left:
                self._profiles[old] = left
            else:
                del self._profiles[old]
        self._by_user[user] = here
        self._profiles[here] = self._profiles.get(here, 0) + 1

    def audited(self, event) -> None:
        """
        An audit log observer: follow enrollments and moves.
        """
        if event.event in _LOCATING_EVENTS and event.username and event.source:
            self.moved(event.username, event.source)

    def __contains__(self, host: str) -> bool:
        return _packed(host) in self._profiles

    def registered_at(self, user: str, host: str | None) -> bool:
        """
        Is C{host} in the source (IPv4 address or IPv6 /64) of C{user}'s
        registered location?
        """
        there = self._by_user.get(user)
        here = source_key(host)
        return (
            there is not None
            and here is not None
            and here == source_key(str(ipaddress.ip_address(there)))
        )


class ExpectedSources:
    """
    What the connection gate asks: is a connection from this host one the
    server waits for?
    """

    def __init__(self, rendezvous: Rendezvous, known: KnownLocations) -> None:
        self._rendezvous = rendezvous
        self._known = known

    @classmethod
    def of(cls, rendezvous: Rendezvous, store) -> ExpectedSources:
        """
        @return: the sources expected by C{rendezvous}'s requests and at
            the locations of C{store}'s profiles.
        """
        return cls(rendezvous, KnownLocations.of(store))

    def expects(self, host: str | None) -> bool:
        """
        Is a connection from C{host} the connect-back of a pending
        request, or from a profile's registered location?
        """
        if host is None:
            return False
        return self._rendezvous.expects(host) or host in self._known

    def registered_at(self, user: str, host: str | None) -> bool:
        """
        Is C{host} in the source of C{user}'s registered location?
        """
        return self._known.registered_at(user, host)

    def audited(self, event) -> None:
        """
        An audit log observer: follow the profiles' locations.
        """
        self._known.audited(event)
