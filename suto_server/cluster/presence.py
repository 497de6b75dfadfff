# -*- test-case-name: tests.cluster.test_presence,tests.cluster.test_shared_presence -*-
"""
A profile's one live rotation connection, known to every server process
sharing a PostgreSQL store: what port tracking
(L{suto_server.rules.tracking}) asks before admitting a newcomer, and
what it tells the others once a connection becomes live.

Asking: a process about to admit a connection for a profile it holds no
live connection of, from an address other than the profile's last (a
live connection is where the profile was last seen, so a connection from
there is admitted as within one process), asks the others whether one of
them does, by the verification of a live connection
(L{suto_server.cluster.verify_relay}): the holder challenges its
connection with a fresh nonce and announces the outcome and the
connection's address.  That is the check packet to the old location sent
down the old connection itself: an answer proves the key is held there
right now, as a live connection in this process does.  Only a live
connection that answered (C{matched}), or is there but busy answering
others (C{busy}), counts; one that gave no answer within the check's few
seconds, or a wrong one, is not the key holder's, and tracking goes on
as when nobody holds the profile (the check packet to the profile's last
address, then the move's compare-and-swap).

Telling: a connection that became live here is announced (C{live}, the
user, the connection's address and the time it became live).  Another
process holding a live connection of that user that became live before
then lets it go and closes it, wherever it came from: the newcomer
proved the key and the fingerprint after it (a rotation committed, or a
reconnection opened under the offline key), as a live connection
replaces an earlier one within one process.  The times decide because
notices cross: the announcement of the older connection may reach the
other process after the newer one became live there, and must not close
the newer one.  (The hosts' clocks are kept in step, as the audit log's
times already need; at an exact tie both stay live, the next rotation
deciding.)  A device that failed over to another process leaves no
connection behind that C{suto-admin clients} would count twice, and a
connection that lost the key (a copy whose original rotated through
another process) stops there.

Why no presence table: the holder of a live connection is known only
while its process runs, and a table would hold the rows of a process
killed with SIGKILL until a lease ran out, refusing the device's
reconnection from a new address as a clone meanwhile.  Asking the
connection itself needs no lease: a dead process answers nothing, so the
newcomer waits at most L{suto_server.cluster.verify_relay.HOLDER_WAIT}
seconds for a holder (and only when another process was heard from
lately), then the check's own timeout, and a second more, for its
answer.  The store calls this makes are the relay's notices, sent
through the server's store calls (on PostgreSQL, off the reactor
thread).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suto_server.rules.registry import LiveSessions

#: The outcomes of a verification that show a live connection is there:
#: it proved the key, or it is busy proving it to others.
HELD = ("matched", "busy")


class Presence:
    """
    The live rotation connections of the other processes on the store,
    as tracking sees them.

    @param clock: the clock of the wait for a holder's answer.
    @param relay: the L{suto_server.cluster.relay.Relay} the notices go
        through; it delivers the C{live} ones here.
    @param verifications: the L{suto_server.cluster.verify_relay.VerifyRelay}
        that asks the others to challenge a live connection.
    @param live: this process's live rotation connections.
    @param wait: seconds a holder's connection has to answer its
        challenge (the check packet's timeout).
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        relay,
        verifications,
        live: LiveSessions,
        wait: float,
    ) -> None:
        self._clock = clock
        self._relay = relay
        self._verifications = verifications
        self._live = live
        self._wait = wait

    def holder(self, user: str) -> Deferred[str | None]:
        """
        Ask the other processes for C{user}'s live connection.

        @return: a L{Deferred} firing with the address of another
            process's live connection of C{user} that proved the key just
            now (or is busy), or L{None} when no other process holds one
            that answers.
        """
        if not self._verifications.has_others():
            return succeed(None)
        asked = self._verifications.ask(user, self._wait)

        def held(answered) -> str | None:
            if answered is None or answered.outcome not in HELD:
                return None
            return answered.device

        # A holder whose connection never answers sends no outcome: the
        # wait ends here, a moment after the holder's own.
        asked.addTimeout(
            self._wait + 1.0, self._clock, onTimeoutCancel=lambda result, timeout: None
        )
        return asked.addCallback(held)

    def attached(self, user: str, address: str, since: float) -> None:
        """
        A connection from C{address} became C{user}'s live one here at
        C{since}: the other processes let theirs go.
        """
        self._relay.send("live", 0, user=user, device=address, since=since)

    def deliver(self, node: str, notice: dict) -> None:
        """
        Another process made a connection of the notice's user live: the
        one held here, if any, became live before, is replaced, and
        closed.
        """
        session = self._live.get(notice["user"])
        if session is None or session.since >= notice["since"]:
            return
        self.log.info(
            "a connection of {user} became live on another server process"
            " ({device}); closing the one held here, from {address}",
            user=notice["user"],
            device=notice["device"],
            address=session.address,
        )
        self._live.detach(session.user, session.connection)
        session.connection.close()


def presence_for(clock, relay, verifications, live, wait) -> Presence | None:
    """
    @return: the L{Presence} of a server whose store other processes may
        share (L{None} when it has no relay), served by C{relay}.
    """
    if relay is None or verifications is None:
        return None
    presence = Presence(clock, relay, verifications, live, wait)
    relay.serve_presence(presence)
    return presence
