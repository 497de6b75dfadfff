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
user, the connection's address, under a fresh random key).  Another
process holding a live connection of that user lets it go and closes
it, wherever it came from: the newcomer proved the key and the
fingerprint after it (a rotation committed, or a reconnection opened
under the offline key), as a live connection replaces an earlier one
within one process.  Notices cross, though: the announcement of the
older connection may reach a process after the newer one became live
there, and must not close the newer one.  What decides is the order the
store delivers the announcements in, which is the same for every
listener (PostgreSQL delivers notifications in the order their
transactions committed) and is heard by the sender too: while a
process has not heard its own announcement back, any other heard is
earlier in that order, and its connection stays; once it has, any
other is later, and its connection goes.  Exactly one of two crossing
connections stays, whatever the hosts' clocks say (comparing the times
they became live would let a host whose clock is ahead keep an older
connection, a copy's that lost the key, and close the newer one).  An
announcement not sent, or not heard back within L{ECHO_WAIT} seconds
(the listener was away), counts as heard, so that the next one of
another process still replaces the connection.  A device that failed
over to another process leaves no connection behind that
C{suto-admin clients} would count twice, and a connection that lost the
key (a copy whose original rotated through another process) stops
there.

Why no presence table: the holder of a live connection is known only
while its process runs, and a table would hold the rows of a process
killed with SIGKILL until a lease ran out, refusing the device's
reconnection from a new address as a clone meanwhile.  Asking the
connection itself needs no lease: a dead process answers nothing, so the
newcomer waits at most L{suto_server.cluster.verify_relay.HOLDER_WAIT}
seconds for a holder (and only when another process was heard from
lately), then the check's own timeout, and a second more, for its
answer.  At most L{MAX_ASKING} newcomers wait so at once: past that
(many newcomers from new addresses at once) the next is decided as
within one process, by the check packet to the profile's last address,
where a live connection's device answers; so a flood of newcomers
neither piles up waits and notices nor lets a copy by.  The store calls
this makes are the relay's notices, sent
through the server's store calls (on PostgreSQL, off the reactor
thread).
"""

from __future__ import annotations

import secrets
from typing import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suto_server.core.throttle import QUIET, OncePerInterval
from suto_server.rules.registry import LiveSessions

#: The outcomes of a verification that show a live connection is there:
#: it proved the key, or it is busy proving it to others.
HELD = ("matched", "busy")

#: The most newcomers waiting at once for the other processes' answer.
MAX_ASKING = 256

#: Seconds between two warnings that a newcomer was decided without
#: asking.
UNASKED_LOG_EVERY = 60.0

#: Seconds within which a process hears its own C{live} announcement
#: back from the store, before taking it as heard.
ECHO_WAIT = 5.0


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
    @param random_key: gives the key of each C{live} announcement.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        relay,
        verifications,
        live: LiveSessions,
        wait: float,
        random_key: Callable[[], int] = lambda: secrets.randbelow(2**63),
    ) -> None:
        self._clock = clock
        self._relay = relay
        self._verifications = verifications
        self._live = live
        self._wait = wait
        self._random_key = random_key
        # user -> (key, timer): the announcement of the user's live
        # connection here, not heard back yet.
        self._unheard: dict = {}
        self._asking = 0
        self._unasked = OncePerInterval(UNASKED_LOG_EVERY)

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
        if self._asking >= MAX_ASKING:
            quiet = self._unasked.due(None, self._clock.seconds())
            if quiet is not None:
                self.log.warn(
                    "too many newcomers waiting for the other server processes;"
                    " one decided without asking them" + (QUIET if quiet else ""),
                    quiet=quiet,
                )
            return succeed(None)
        self._asking += 1
        asked = self._verifications.ask(user, self._wait)

        def asked_one(result):
            self._asking -= 1
            return result

        def held(answered) -> str | None:
            if answered is None or answered.outcome not in HELD:
                return None
            return answered.device

        # A holder whose connection never answers sends no outcome: the
        # wait ends here, a moment after the holder's own.
        asked.addTimeout(
            self._wait + 1.0, self._clock, onTimeoutCancel=lambda result, timeout: None
        )
        return asked.addBoth(asked_one).addCallback(held)

    def attached(self, user: str, address: str) -> None:
        """
        A connection from C{address} became C{user}'s live one here: the
        other processes let theirs go.
        """
        self._heard_back(user)
        key = self._random_key()
        timer = self._clock.callLater(ECHO_WAIT, self._heard_back, user, key)
        self._unheard[user] = (key, timer)
        sent = self._relay.send("live", key, user=user, device=address)
        sent.addCallback(lambda told: told or self._heard_back(user, key))

    def _heard_back(self, user: str, key: int | None = None) -> None:
        """
        The announcement of C{user}'s live connection here under C{key}
        (any, if L{None}) is heard back, or taken as heard: another
        process's, heard from now on, is later.
        """
        unheard = self._unheard.get(user)
        if unheard is None or key not in (None, unheard[0]):
            return
        del self._unheard[user]
        if unheard[1].active():
            unheard[1].cancel()

    def stop(self) -> None:
        """
        Stop waiting for announcements to come back: the notices stop
        with the relay.
        """
        for user in list(self._unheard):
            self._heard_back(user)

    def deliver(self, node: str, notice: dict) -> None:
        """
        A connection of the notice's user became live on the process
        C{node}: this process's own announcement heard back, or another
        process's, later than the one of the connection held here, if
        any, which is replaced and closed.
        """
        if node == self._relay.node:
            self._heard_back(notice["user"], notice["key"])
            return
        session = self._live.get(notice["user"])
        if session is None or notice["user"] in self._unheard:
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
