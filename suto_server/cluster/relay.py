# -*- test-case-name: tests.cluster.test_relay,tests.cluster.test_relay_pacing,tests.phases.test_classic_off_reactor,tests.cluster.test_presence -*-
"""
Pending classic authentications shared by the server processes on one
PostgreSQL store: the C{peers} of L{suto_server.rules.rendezvous.Rendezvous}.

A process that opens a request announces it; every other process
mirrors it, so that the device's connection, whichever process it
reaches, claims it.  The claim is taken in the store (one session holds
it), the claimer announces it, runs the challenge and announces the
outcome, which fires the request where it was opened.  Notices go
through the store's channel (L{suto_server.store.postgres.notices}),
rather than through a table of pending requests: a request lives for
seconds, so it has no business on disk, and a notice reaches every
process as soon as it is sent instead of at its next poll.

The device must not reach a process that has not heard of the request
yet, so the hello waits (L{Rendezvous.heard_by_all}) until every other
process answered the request's notice with C{heard}, once it mirrors it;
which processes there are, each relay learns from the others' notices,
and from the C{here} each sends every L{HERE_EVERY} seconds.  A process
gone silent is waited for no longer; one that does not answer is waited
for at most L{suto_server.rules.rendezvous.ANNOUNCE_WAIT} seconds.

The notices and their checking are L{suto_server.cluster.notice}; a
process ignores its own (but for a C{live} one, which tells the
presence its announcement was heard back), and drops, logged, one that
fails the check.
The notices of verifications (L{suto_server.cluster.verify_relay}) go
the same way, handed to the verify relay given to
L{Relay.serve_verifications}, and those of live connections
(L{suto_server.cluster.presence}) to the presence given to
L{Relay.serve_presence}.

The notices are heard on a thread of the relay's own: each wait for
them is one blocking call of at most L{LISTEN_FOR} seconds, whose answer
comes back to the reactor, which starts the next; a store that cannot
be reached is tried again after L{RETRY_EVERY} seconds on the reactor's
clock.  Sending a notice, taking a claim and letting it go are the
store's calls (L{suto_server.store.calls}), made on the database thread:
the reactor serves the other connections during each round trip.  A
claim is held by the session that took it, so taking and letting go
must share one session: the database thread's, one connection on one
thread.
"""

from __future__ import annotations

import json
import secrets

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from suto_server.cluster.notice import (
    MAX_REASON,
    BadNotice,
    open_notice,
    parse_notice,
    seal_notice,
)
from suto_server.core.throttle import QUIET, OncePerInterval
from suto_server.store.calls import LocalCalls
from suto_server.store.clustering import IClusteredStore
from suto_server.store.errors import StoreError

#: Seconds one wait for notices lasts at most (and so how long stopping
#: may wait for the one under way).
LISTEN_FOR = 1.0

#: Seconds between two tries to listen again when the store is away.
RETRY_EVERY = 3.0

#: Seconds between two of a relay's notices that it is there; a process
#: not heard from for three times as long is taken for gone.
HERE_EVERY = 2.0

#: Seconds between two log lines about notices the store did not send:
#: while it is away every notice fails, a C{here} one every
#: L{HERE_EVERY} seconds, and one line says so for all of them.
UNSENT_LOG_EVERY = 10.0


class Relay(Service):
    """
    Shares this process's pending requests with the other processes on
    C{store} (an L{IClusteredStore}), and theirs with this one.

    @param reactor: the reactor the notices are delivered on (an
        L{IReactorFromThreads}).
    @param clock: the L{IReactorTime} of the retries, the C{here} notices
        and the last time each process was heard from; the reactor unless
        given.
    @param calls: the store's calls the notices and claims are made
        through (L{suto_server.store.calls.IStoreCalls}); made on C{store}
        at once unless given.  C{store} itself gives only the listener.
    @param key: the deployment's notice key
        (L{suto_server.masterkey.MasterKey.notice_key}), which seals the
        notices sent and must seal every one acted on.

    @ivar listening: a L{Deferred} firing once the relay first listens
        (set when it starts): from then on it hears every request.
    """

    log = Logger()

    def __init__(self, reactor, store, clock=None, calls=None, *, key: bytes) -> None:
        self._reactor = reactor
        self._key = key
        self._clock = reactor if clock is None else clock
        self._store = store
        self._calls = LocalCalls(store) if calls is None else calls
        # When each other process was last heard from, by id; and, for
        # each of this process's requests, who has yet to hear of it.
        self._seen: dict[str, float] = {}
        self._unheard: dict[int, set[str]] = {}
        self._here: LoopingCall | None = None
        # Who waits to meet how many other processes.
        self._meeting: list[tuple[int, Deferred]] = []
        self._node = secrets.token_hex(8)
        self._rendezvous = None
        self._verifications = None
        self._presence = None
        self._threads: ThreadPool | None = None
        self._listener = None
        self._retry = None
        # When the notices the store did not send were last logged.
        self._unsent = OncePerInterval(UNSENT_LOG_EVERY)
        self.listening: Deferred | None = None

    def serve(self, rendezvous) -> None:
        """
        Deliver the other processes' notices to C{rendezvous}.
        """
        self._rendezvous = rendezvous

    def serve_verifications(self, verifications) -> None:
        """
        Deliver the other processes' verification notices (C{verify},
        C{holding}, C{verified}) to C{verifications}, a
        L{suto_server.cluster.verify_relay.VerifyRelay}.
        """
        self._verifications = verifications

    def serve_presence(self, presence) -> None:
        """
        Deliver the other processes' C{live} notices (a connection became
        a profile's live one there) to C{presence}, a
        L{suto_server.cluster.presence.Presence}.
        """
        self._presence = presence

    @property
    def node(self) -> str:
        """
        This process's id in its notices.
        """
        return self._node

    # The rendezvous's peers.

    def opened(self, request, timeout: float) -> None:
        others = set(self.others())
        if others:
            # Before sending: the answers may come back at once.
            self._unheard[request.key] = others
        sent = self.send(
            "open",
            request.key,
            user=request.user,
            networks=[str(network) for network in request.accept_from],
            timeout=timeout,
        )

        def told(sent: bool) -> None:
            if not sent or not others:
                # Nobody to wait for: the hello may go.
                self._unheard.pop(request.key, None)
                self._rendezvous.heard_by_all(request.key)

        sent.addCallback(told)

    def claimed(self, request) -> None:
        self.send("claimed", request.key, source=request.claimed_by)

    def finished(self, request, outcome) -> None:
        self._unheard.pop(request.key, None)
        self.send(
            "done",
            request.key,
            verdict=outcome.verdict.value,
            reason=outcome.reason[:MAX_REASON],
            source=outcome.source,
        )

    def take(self, request) -> Deferred[bool]:
        """
        Claim C{request} in the store.  A store that cannot be reached
        claims nothing: the connection is refused rather than risk two
        connections answering one request.

        @return: a L{Deferred} firing with whether the claim was taken.
        """

        def unclaimed(failure) -> bool:
            failure.trap(StoreError)
            self.log.warn(
                "a request could not be claimed: {error}",
                error=failure.getErrorMessage(),
            )
            return False

        return self._calls.take_claim(request.key).addErrback(unclaimed)

    def release(self, request) -> None:
        def kept(failure) -> None:
            failure.trap(StoreError)
            # The claim goes with the session; the request is over anyway.
            self.log.warn(
                "a claim could not be let go: {error}", error=failure.getErrorMessage()
            )

        self._calls.release_claim(request.key).addErrback(kept)

    def here(self) -> None:
        """
        Tell the other processes this one is there (and listening).
        """
        self.send("here", 0)

    def send(self, op: str, key: int, **fields) -> Deferred[bool]:
        """
        Send the other processes the notice C{op} about request C{key}.

        @return: a L{Deferred} firing with whether the notice was sent.
        """
        notice = seal_notice(
            self._key, json.dumps({"node": self._node, "op": op, "key": key, **fields})
        )

        def unsent(failure) -> bool:
            failure.trap(StoreError, ValueError)
            # The request is served here all the same; another process
            # does not learn of it.
            quiet = self._unsent.due(None, self._clock.seconds())
            if quiet is not None:
                self.log.warn(
                    "the other processes could not be told of a request: {error}"
                    + (QUIET if quiet else ""),
                    error=failure.getErrorMessage(),
                    quiet=quiet,
                )
            return False

        return self._calls.announce(notice).addCallbacks(lambda _: True, unsent)

    # Hearing the other processes.

    def startService(self) -> None:
        super().startService()
        self._threads = ThreadPool(minthreads=1, maxthreads=1, name="suto-relay")
        self._threads.start()
        self._listener = self._store.notice_listener()
        self.listening = Deferred()
        self._listen()

    def _listen(self) -> None:
        self._retry = None
        if not self.running:
            return
        if self.listening.called:
            d = self._receive(None)
        else:
            d = deferToThreadPool(self._reactor, self._threads, self._listener.listen)
            d.addCallback(self._receive)
        d.addCallbacks(self._heard, self._lost)

    def _receive(self, _) -> Deferred | None:
        """
        Wait for notices on the thread.  Only one hop to the reactor and
        back separates two waits, so a notice is heard here about as soon
        as the process that sent it hears it back.
        """
        if not self.running:
            return None
        if not self.listening.called:
            self.log.info("hearing the other server processes on the store")
            self._here = LoopingCall(self.here)
            self._here.clock = self._clock
            self._here.start(HERE_EVERY, now=True)
            self.listening.callback(None)
        return deferToThreadPool(
            self._reactor, self._threads, self._listener.receive, LISTEN_FOR
        )

    def _heard(self, notices) -> None:
        if not self.running or notices is None:
            return
        for text in notices:
            try:
                self.deliver(text)
            except Exception:
                # One notice must not stop the hearing of the next.
                self.log.failure("acting on a notice failed")
        self._listen()

    def _lost(self, failure) -> None:
        failure.trap(StoreError)
        self.log.warn(
            "not hearing the other processes: {error}; trying again",
            error=failure.getErrorMessage(),
        )
        if self.running:
            self._retry = self._clock.callLater(RETRY_EVERY, self._listen)

    def deliver(self, text: str) -> None:
        """
        Act on one notice heard from the store.
        """
        try:
            notice = parse_notice(open_notice(self._key, text))
        except BadNotice as error:
            self.log.warn("dropped a malformed notice: {why}", why=str(error))
            return
        node, key, op = notice["node"], notice["key"], notice["op"]
        if self._presence is not None and op == "live":
            # Heard back, its own tells the presence where it stands.
            self._presence.deliver(node, notice)
        if node == self._node or self._rendezvous is None:
            return
        if node not in self._seen:
            self.log.info("heard from another server process, {node}", node=node)
        self._seen[node] = self._clock.seconds()
        self._met()
        if op == "open":
            self._rendezvous.remote_opened(
                key, notice["user"], notice["networks"], notice["timeout"]
            )
            self.send("heard", key)
        elif op == "heard":
            unheard = self._unheard.get(key)
            if unheard is not None:
                unheard.discard(node)
                if not unheard:
                    del self._unheard[key]
                    self._rendezvous.heard_by_all(key)
        elif op == "claimed":
            self._rendezvous.remote_claimed(key, notice["source"])
        elif op == "done":
            self._rendezvous.remote_finished(
                key, notice["verdict"], notice["reason"], notice["source"]
            )
        elif self._verifications is not None and op in ("verify", "holding", "verified"):
            self._verifications.deliver(node, notice)

    def others(self) -> list[str]:
        """
        @return: the ids of the other processes heard from lately, which
            the hello of a request waits for.
        """
        alive = self._clock.seconds() - 3 * HERE_EVERY
        return sorted(node for node, seen in self._seen.items() if seen >= alive)

    def meet(self, count: int) -> Deferred:
        """
        @return: a L{Deferred} firing once this relay has heard from
            C{count} other processes (a process starting with others
            serves their requests from then on).
        """
        d = Deferred()
        self._meeting.append((count, d))
        self._met()
        return d

    def _met(self) -> None:
        heard = len(self.others())
        waiting, self._meeting = self._meeting, []
        for count, d in waiting:
            if heard >= count:
                d.callback(None)
            else:
                self._meeting.append((count, d))

    def stopService(self) -> Deferred:
        """
        Stop listening: wait for the wait under way (at most
        L{LISTEN_FOR} seconds), then close the listener's session and
        stop its thread.
        """
        super().stopService()
        if self._here is not None and self._here.running:
            self._here.stop()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        threads, self._threads = self._threads, None
        if threads is None:
            return succeed(None)
        d = deferToThreadPool(self._reactor, threads, self._listener.close)

        def stop(result):
            threads.stop()
            if self._rendezvous is not None:
                # No more news of them will come.
                self._rendezvous.drop_mirrors()
            if self._verifications is not None:
                self._verifications.stop()
            if self._presence is not None:
                self._presence.stop()
            return result

        return d.addBoth(stop)


def relay_for(reactor, store, calls=None, key: bytes | None = None) -> Relay | None:
    """
    @param calls: the server's store calls (see L{Relay}).
    @param key: the deployment's notice key (see L{Relay}); a server
        without a master key, which serves no profile, has none.
    @return: the L{Relay} of a server on C{store}, or L{None} when no
        other process can share it, or its notices could not be sealed.
    """
    if key is None or not IClusteredStore.providedBy(store):
        return None
    return Relay(reactor, store, calls=calls, key=key)
