# -*- test-case-name: tests.rules.test_tracking -*-
"""
Which profiles have a live rotation connection right now, and from where.

The durable half of the registry (location, last seen, last rotation, key
id, moves) lives in the store; this is the part that only exists while the
server runs.  A connection is live only once it has proven the profile's
key and the machine's fingerprint (a rotation committed on it, or its
reconnection opened): naming a key id proves nothing, as key ids are
public names.  So a live connection is the key holder's, and a second
connection for its profile from another address is the plainest sign of a
copied client.
"""

from __future__ import annotations

from dataclasses import dataclass

from suto_server.audit.paging import page_answer, page_filters
from suto_server.core.timestamps import iso_utc


class TooManyChallenges(Exception):
    """
    A live connection already has as many verification challenges
    waiting for their answers as it holds: the device is there, but busy.
    """


@dataclass(frozen=True)
class LiveSession:
    """
    One live rotation connection: it proved the key at C{since}.

    @ivar connection: the connection; a verification asks it to prove
        the key with C{connection.challenge(nonce)}, which returns a
        L{Deferred} firing with C{True}, C{False} or L{None}, or failing
        with L{TooManyChallenges}
        (L{suto_server.phases.rotation.RotationDriver.challenge}).
    """

    user: str
    address: str
    since: float
    connection: object


class LiveSessions:
    """
    The table of live rotation connections, one per profile; what
    C{suto-admin clients} shows as C{connected}.
    """

    def __init__(self) -> None:
        self._by_user: dict[str, LiveSession] = {}

    def get(self, user: str) -> LiveSession | None:
        return self._by_user.get(user)

    def attach(self, user: str, address: str, now: float, connection) -> None:
        """
        C{connection} proved C{user}'s key, and serves it now, replacing
        any earlier one (which the caller has decided is gone or not to be
        trusted).
        """
        self._by_user[user] = LiveSession(user, address, now, connection)

    def detach(self, user: str, connection) -> None:
        """
        C{connection} ended; forget it unless another one took its place.
        """
        session = self._by_user.get(user)
        if session is not None and session.connection is connection:
            del self._by_user[user]

    def __len__(self) -> int:
        return len(self._by_user)

    def users(self) -> list[str]:
        """
        @return: the users with a live connection, in name order.
        """
        return sorted(self._by_user)

    def __contains__(self, user: str) -> bool:
        return user in self._by_user


async def clients_report(
    calls, live: LiveSessions, locations, now: float
) -> list[dict]:
    """
    One row per enrolled profile for C{suto-admin clients}: where it is,
    its state, when it last rotated, how old its key is.  The state is
    C{connected} (a live rotation connection), C{offline} (marked so, since
    C{offline_since}: its junk was due and did not come) or
    C{disconnected} (neither, yet: between connections, or not yet past
    its grace).  Never key material (key ids are public names).

    Two reads of the store, whatever the number of profiles; the live
    table is read after both, so a row says what is live when it is made.

    @param calls: the store's L{suto_server.store.calls.IStoreCalls}.
    """
    offline = await calls.offline_profiles()
    profiles = await calls.list_profiles()
    return [
        client_row(profile, live, offline.get(profile.username), locations, now)
        for profile in profiles
    ]


def client_row(
    profile, live: LiveSessions, offline_since, locations, now: float
) -> dict:
    """
    One row of L{clients_report}: C{profile}'s, offline since
    C{offline_since} (L{None} when it is not marked offline).
    """
    user = profile.username
    if user in live:
        state = "connected"
    elif offline_since is not None:
        state = "offline"
    else:
        state = "disconnected"
    key_since = (
        profile.rotated_at if profile.rotated_at is not None else profile.enrolled_at
    )
    return {
        "user": user,
        "address": profile.last_address,
        "location": locations.name_of(profile.last_address),
        "state": state,
        "offline_since": iso_utc(offline_since),
        "last_seen": iso_utc(profile.last_seen),
        "last_rotation": iso_utc(profile.rotated_at),
        "key_id": profile.key_id,
        "generation": profile.generation,
        "key_age": max(0.0, now - key_since),
    }


async def history_report(calls, user: str, alert_types, page: int = 1) -> dict:
    """
    A page of a profile's moves and a page of the alerts about it
    (L{suto_server.audit.paging}: the newest by default), each oldest
    first, for C{suto-admin history USER}: the store selects both, so a
    profile that moved or was alerted on all day is never read whole.
    Page 2 is the moves and the alerts before those of page 1, and so
    on; C{more} tells whether either has an older page.

    @param calls: the store's L{suto_server.store.calls.IStoreCalls}.
    @param alert_types: the event types that are alerts.
    @param page: which page of the moves and the alerts, from 1.
    """
    moves = await calls.moves(user, **page_filters(page))
    events = await calls.audit_events_matching(
        username=user, types=alert_types, **page_filters(page)
    )
    moves_page = page_answer("moves", moves, page, _history_move)
    alerts_page = page_answer("alerts", events, page, _history_alert)
    return {
        "user": user,
        "moves": moves_page["moves"],
        "alerts": alerts_page["alerts"],
        "page": page,
        "more": moves_page["more"] or alerts_page["more"],
    }


def _history_move(move) -> dict:
    """
    @return: a move of L{history_report}: the store's L{Move} C{move}.
    """
    return {
        "time": iso_utc(move.time),
        "from": move.old_address,
        "from_location": move.old_location_name,
        "to": move.new_address,
        "to_location": move.new_location_name,
    }


def _history_alert(event) -> dict:
    """
    @return: an alert of L{history_report}: the audit record C{event}.
    """
    return {
        "time": iso_utc(event.time),
        "type": event.event,
        "source": event.source,
        "locations": list(event.locations),
        "reason": event.reason,
    }
