# -*- test-case-name: tests.store.test_groupcommit -*-
"""
Group commit: many small durable writes share one transaction.

A durable commit costs a sync to disk, which takes far longer than the
write itself; a server rotating thousands of keys cannot afford one per
rotation.  L{GroupCommitter} collects the items submitted during one turn
of the reactor and, on the next turn, hands them to one call of a batch
function (one transaction, one sync), then fires each submitter's
L{Deferred} with its own result.

The batch function may return its results at once or through a
L{Deferred}: the server runs it on a database thread
(L{suto_server.store.dbthread.DatabaseThread}), so the reactor goes on serving
connections while the disk syncs.  One batch is in flight at a time; what
is submitted meanwhile gathers into the next one, which starts on the
turn after the first returns.  A batch holds at most C{max_batch} items;
what is left over waits for a batch of its own.  Items submitted while
results are being delivered go to the next batch.  Nothing fires before
the batch function has returned: a result means the item is on disk.

Under a steady trickle (a fleet whose rotations come due one by one) each
turn holds one item, and every batch pays a transaction, a sync and two
hand-offs to the database thread for it.  So a committer given a C{hold}
keeps a batch open that long before starting it when the batch before
was small (fewer than L{SMALL_BATCH} items) and few items wait: the
items of the next few milliseconds share it.  Under load the batches are
large, and start on the next turn as before; the hold only ever delays a
result, never gives one early.
"""

from __future__ import annotations

import math
from typing import Callable, Generic, Sequence, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

#: Largest batch by default: enough to make one sync serve a burst of
#: rotations, small enough that one transaction stays short.
DEFAULT_MAX_BATCH = 512
#: A batch of fewer items than this is small: the next one may be held
#: open (C{hold}).  At 167 rotations a second (10,000 endpoints every
#: 60 s) unheld batches hold one to three items; at a few hundred a second
#: and more, those committed while one syncs are already this many.
SMALL_BATCH = 8
#: The hold the server gives its group commits: at 167 rotations a second
#: (whose arrivals bunch) the batches grew from 1.35 rotations to 4.8-6.5
#: in the benchmark (bench/RESULTS.md), for at most 10 ms more before a
#: rotation's result, a fifth of the 50 ms its p99 may take.
SERVER_HOLD = 0.010

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class BatchMismatch(Exception):
    """
    The batch function returned a number of results other than the number
    of items it was given, so no result can be trusted to be an item's own.
    """


def _one_each(results: Sequence, count: int) -> list:
    """
    @return: C{results} as a L{list}.
    @raise BatchMismatch: they are not C{count}.
    """
    results = list(results)
    if len(results) != count:
        raise BatchMismatch(f"{len(results)} results for a batch of {count}")
    return results


class GroupCommitter(Generic[_Item, _Result]):
    """
    Collects submitted items into batches committed by one function call.
    """

    def __init__(
        self,
        clock: IReactorTime,
        commit_batch: Callable[[list[_Item]], Sequence[_Result]],
        max_batch: int = DEFAULT_MAX_BATCH,
        hold: float = 0.0,
    ) -> None:
        """
        @param clock: schedules the batches.
        @param commit_batch: commits a L{list} of items durably, all or
            none, and returns (or gives through a L{Deferred}) one result
            per item, in order; it raises (or fails) if nothing was
            committed.  For rotations this is
            L{suto_server.store.interfaces.IProfileStore.commit_rotations}.
        @param max_batch: the most items given to one call.
        @param hold: seconds a batch is held open after the first item
            when the batch before it was small (L{SMALL_BATCH}); 0 starts
            every batch on the next turn.
        @raise ValueError: C{max_batch} is not a positive L{int}, or
            C{hold} is not a finite number of seconds, 0 or more.
        """
        if isinstance(max_batch, bool) or not isinstance(max_batch, int):
            raise ValueError("max_batch must be an int")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if (
            isinstance(hold, bool)
            or not isinstance(hold, (int, float))
            or not math.isfinite(hold)
            or hold < 0
        ):
            raise ValueError("hold must be a finite number of seconds, 0 or more")
        self._clock = clock
        self._commit_batch = commit_batch
        self._max_batch = max_batch
        self._hold = hold
        # The size of the last batch started: none yet counts as small.
        self._last_batch = 0
        # (item, Deferred) pairs waiting for a batch, oldest first.
        self._pending: list[tuple[_Item, Deferred[_Result]]] = []
        # The delayed call of the next batch, None while none is scheduled.
        self._call = None
        # Whether a batch was handed to the batch function and has not
        # returned yet.
        self._in_flight = False

    def submit(self, item: _Item) -> Deferred[_Result]:
        """
        Commit C{item} with the other items submitted in this turn of the
        reactor (or while the batch before it was committing).

        @return: a L{Deferred} firing with C{item}'s result once its batch
            is committed, or failing with what the batch function raised
            (or L{BatchMismatch}) if the batch was not.
        """
        d: Deferred[_Result] = Deferred()
        self._pending.append((item, d))
        self._schedule()
        return d

    def _schedule(self) -> None:
        """
        Make sure a batch runs on the next turn of the reactor, or after
        the hold when the last batch was small and few items wait, unless
        one is in flight: the next is scheduled when it returns.
        """
        if self._call is None and not self._in_flight and self._pending:
            quiet = (
                self._last_batch < SMALL_BATCH
                and len(self._pending) < SMALL_BATCH
            )
            delay = self._hold if quiet else 0
            self._call = self._clock.callLater(delay, self._run_batch)

    def _run_batch(self) -> None:
        """
        Hand the oldest pending items to one call of the batch function;
        fire their L{Deferred}s once it has returned.
        """
        self._call = None
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        self._last_batch = len(batch)
        self._in_flight = True
        d = maybeDeferred(self._commit_batch, [item for item, _ in batch])
        d.addCallback(_one_each, len(batch))
        d.addCallbacks(
            self._deliver, self._fail, callbackArgs=(batch,), errbackArgs=(batch,)
        )
        d.addBoth(self._landed)

    def _deliver(self, results: list, batch) -> None:
        for (_, d), result in zip(batch, results):
            d.callback(result)

    def _fail(self, failure: Failure, batch) -> None:
        for _, d in batch:
            d.errback(failure)

    def _landed(self, _) -> None:
        self._in_flight = False
        self._schedule()
