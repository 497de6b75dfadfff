# -*- test-case-name: tests.audit.test_log -*-
"""
The audit log as the rest of the server uses it: one call records an event
in the store's hash chain and, when the event is an alert, hands the alert
to every alert sink.

Recording is local: one SQLite transaction, on the reactor thread by
default.  The daemon instead hands each record to a group commit on its
database thread (C{append}), so the reactor never waits for the sync: a
record is then on disk within one batch of the event, its alert is
raised at once all the same, and a record that cannot be written is
logged as critical.  Delivering is whatever each sink makes of it, and
never reaches back: a sink that raises or whose L{Deferred} fails is
logged, and the caller, which is deciding an authentication or an
enrollment, goes on.

The caller says, for each alert, whether the peer behind it had proven
anything (a key, a fingerprint) at that point.  An alert that follows a
proof, records a state change or comes from the server itself goes to the
sinks at once; one any peer could raise at will (C{unproven}) goes through
an L{AlertAggregator}, which gathers those of one source and type per
interval.  Either way the record is written the same, and the observers
(the metrics) see every event.

Reading is for operators (the admin API, the console, the metrics): each
read goes through the store's calls (L{suto_server.store.calls}) and
answers with a L{Deferred}, so that on a store across the network the
reactor serves connections while the database thread reads.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from suto_server.audit.aggregation import DEFAULT_INTERVAL, AlertAggregator
from suto_server.audit.alerts import ALERT_TYPES, Alert, alert_for
from suto_server.audit.sinks.log import LogSink
from suto_server.core.shown import shortened
from suto_server.store.calls import LocalCalls
from suto_server.store.checks import check_audit_event
from suto_server.store.errors import StoreError
from suto_server.store.records import MAX_NAME, AuditEvent


def alerts_among(events) -> list[Alert]:
    """
    @return: the L{Alert}s among the L{AuditEvent}s C{events}, in their
        order.
    """
    return [alert for alert in map(alert_for, events) if alert is not None]


class AuditLog:
    """
    @param store: an L{suto_server.store.interfaces.IAuditStore}, which
        keeps the chain.
    @param sinks: the L{suto_server.audit.interfaces.IAlertSink}s alerts go to;
        the structured log alone (a L{LogSink}) unless given.
    @param observers: callables given each recorded L{AuditEvent} (the
        metrics and the per-source penalties); like a sink, one that
        raises is logged and never reaches the caller.
    @param append: writes one L{AuditEvent} to the store, returning at
        once or through a L{Deferred}; the store's own C{append_audit}
        unless given.
    @param clock: the L{twisted.internet.interfaces.IReactorTime} over
        which unproven alerts are gathered, C{interval} seconds at a time;
        without one (a command that records an event and exits) every
        alert goes out at once.
    @param calls: the L{suto_server.store.calls.IStoreCalls} the reads
        go through; C{store}'s own, at once, unless given.
    """

    log = Logger()

    def __init__(
        self,
        store,
        sinks=None,
        observers=(),
        append=None,
        clock=None,
        interval: float = DEFAULT_INTERVAL,
        calls=None,
    ) -> None:
        self._calls = LocalCalls(store) if calls is None else calls
        self._sinks = [LogSink()] if sinks is None else list(sinks)
        self._observers = list(observers)
        self._append = store.append_audit if append is None else append
        self._aggregator = (
            None if clock is None else AlertAggregator(clock, self._raise, interval)
        )
        # The records given to C{append} are numbered from 1, in order:
        # the last number given, the numbers not landed yet (oldest
        # first), those landed ahead of an older one, and the callers of
        # flushed() still waiting, each with the last number given before
        # its call (in the order of the calls, so of their numbers).
        self._given = 0
        self._unwritten: deque[int] = deque()
        self._landed_early: set[int] = set()
        self._waiting: deque[tuple[int, Deferred]] = deque()

    def record(
        self,
        now: float,
        event: str,
        user: str | None,
        source: str | None,
        reason: str,
        locations=(),
        *,
        unproven: bool = False,
    ) -> None:
        """
        Append an event to the audit log and raise its alert, if it is
        one.  The alert goes out even when the store fails, since that is
        when an operator most needs it.

        @param locations: the places the event concerns (each shortened
            to what the store keeps).
        @param unproven: whether the peer behind the event had proven
            nothing when it was decided, so that anyone could cause it as
            often as they like: its alert is then gathered with the others
            of its source and type (see L{AlertAggregator}).
        @raise ValueError: a field is of the wrong type or out of bounds;
            nothing is recorded and no alert raised.
        @raise suto_server.store.errors.StoreError: the store could not
            append the event (when C{append} answers at once).
        """
        record = AuditEvent(
            now,
            event,
            user,
            source,
            reason,
            # Shortened to what the store keeps (a location of many
            # networks describes itself at length), so that a long one
            # never keeps an event out of the log.
            tuple(shortened(location, MAX_NAME) for location in locations),
        )
        check_audit_event(record)
        try:
            written = self._append(record)
            if isinstance(written, Deferred):
                self._landing(written, record)
        finally:
            alert = alert_for(record)
            if alert is not None and unproven and self._aggregator is not None:
                self._aggregator.offer(alert)
            elif alert is not None:
                self._raise(alert)
            self._observe(record)

    def _landing(self, written: Deferred, record: AuditEvent) -> None:
        self._given += 1
        number = self._given
        self._unwritten.append(number)

        def landed(result):
            self._landed(number)
            return result

        def lost(failure):
            if failure.check(StoreError):
                # The store's message says what failed (its database
                # away, a full disk); a traceback would add nothing.
                self.log.critical(
                    "the audit log could not record a {event} event: {error}",
                    event=record.event,
                    error=failure.getErrorMessage(),
                )
                return
            self.log.failure(
                "the audit log could not record a {event} event",
                failure,
                event=record.event,
            )

        # Logged before its waiters go on: a verdict waiting for its
        # record is answered after the line saying the record was lost.
        written.addErrback(lost).addBoth(landed)

    def flushed(self) -> Deferred:
        """
        @return: a L{Deferred} firing once every record given so far is
            written (or found unwritable, which is logged); records given
            after this call do not hold it back.
        """
        if not self._unwritten:
            return succeed(None)
        waiter = Deferred()
        self._waiting.append((self._given, waiter))
        return waiter

    def _landed(self, number: int) -> None:
        """
        The record C{number} is written (or found unwritable): fire the
        waiters none of whose records is still unwritten.

        A group commit lands its records in the order given, so the
        oldest unwritten one is usually the one landing; another
        C{append} may land them in any order.  Either way each landing
        and each waiter costs a constant time, however many records are
        pending.
        """
        if number != self._unwritten[0]:
            self._landed_early.add(number)
            return
        self._unwritten.popleft()
        while self._unwritten and self._unwritten[0] in self._landed_early:
            self._landed_early.discard(self._unwritten.popleft())
        # A waiter's callbacks may record and wait again: look afresh at
        # the oldest unwritten record before each waiter.
        while self._waiting and (
            not self._unwritten or self._waiting[0][0] < self._unwritten[0]
        ):
            self._waiting.popleft()[1].callback(None)

    def flush_alerts(self) -> None:
        """
        Deliver at once every alert still being gathered (the server is
        stopping), so that no counted event goes unreported.
        """
        if self._aggregator is not None:
            self._aggregator.flush()

    def _observe(self, record: AuditEvent) -> None:
        for observer in self._observers:
            try:
                observer(record)
            except Exception:
                self.log.failure(
                    "an audit observer failed on a {event} event", event=record.event
                )

    def _raise(self, alert: Alert) -> None:
        """
        Hand C{alert} to every sink; none of their failures escapes.
        """
        for sink in self._sinks:
            maybeDeferred(sink.deliver, alert).addErrback(
                self._sink_failed, sink, alert
            )

    def _sink_failed(self, failure, sink, alert: Alert) -> None:
        self.log.failure(
            "alert sink {sink} failed on a {alert_type} alert",
            failure,
            sink=type(sink).__name__,
            alert_type=alert.type,
        )

    def matching(self, **filters) -> Deferred:
        """
        @return: a L{Deferred} firing with the L{AuditEvent}s the store
            selects with C{filters} (see
            L{IAuditStore.audit_events_matching}), newest first.
        """
        return self._calls.audit_events_matching(**filters)

    def count(self, **filters) -> Deferred:
        """
        @return: a L{Deferred} firing with how many records L{matching}
            selects with C{filters} and no page.
        """
        return self._calls.count_audit_events(**filters)

    def alerts(self, newest: int, skip: int = 0, **filters) -> Deferred:
        """
        The alerts, selected and paged by the store (one read of at most
        C{newest} records however long the log), never the whole log.

        @param filters: any other filter of L{matching} but C{types}.
        @return: a L{Deferred} firing with the L{Alert}s, newest first: at
            most C{newest}, past the C{skip} newest, of those C{filters}
            select.
        """
        return self.matching(
            types=ALERT_TYPES, newest=newest, skip=skip, **filters
        ).addCallback(alerts_among)

    def verify(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the problems with the log's
            hash chain (see
            L{suto_server.store.interfaces.IAuditStore.verify_audit});
            empty when it is intact.
        """
        return self._calls.verify_audit()
