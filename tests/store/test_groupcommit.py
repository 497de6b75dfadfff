"""
Tests for L{suto_server.store.groupcommit}.
"""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.groupcommit import (
    DEFAULT_MAX_BATCH,
    SERVER_HOLD,
    SMALL_BATCH,
    BatchMismatch,
    GroupCommitter,
)


class DiskFull(Exception):
    """
    Stands for a commit that failed.
    """


class RecordingBatches:
    """
    A batch function that records every batch it is given, and what had
    been delivered when it was called, and answers each item with the
    item doubled; it raises L{DiskFull} for a batch holding C{"fail"}.
    """

    def __init__(self):
        self.batches = []
        self.delivered = []
        # What self.delivered held at each call.
        self.delivered_at_call = []

    def __call__(self, items):
        self.batches.append(list(items))
        self.delivered_at_call.append(list(self.delivered))
        if "fail" in items:
            raise DiskFull()
        return [item * 2 for item in items]

    def submit(self, committer, item):
        """
        Submit C{item}, recording its result (or failure type) once
        delivered.

        @return: the L{Deferred} of C{item}.
        """
        d = committer.submit(item)
        d.addCallbacks(
            lambda result: self.delivered.append((item, result)),
            lambda failure: self.delivered.append(
                (item, failure.trap(DiskFull, BatchMismatch))
            ),
        )
        return d


class SlowBatches:
    """
    A batch function whose batches return only when the test says so,
    like a commit on a database thread waiting for its sync.
    """

    def __init__(self):
        self.batches = []
        self.returns = []

    def __call__(self, items):
        self.batches.append(list(items))
        d = Deferred()
        self.returns.append(d)
        return d

    def land(self, index):
        """
        Let batch C{index} return, answering each item doubled.
        """
        self.returns[index].callback([item * 2 for item in self.batches[index]])


class GroupCommitterTests(SynchronousTestCase):
    """
    Tests for L{GroupCommitter}.
    """

    def setUp(self):
        self.clock = Clock()
        self.batches = RecordingBatches()
        self.committer = GroupCommitter(self.clock, self.batches)

    def test_one_turn_one_batch(self):
        """
        Items submitted in one turn of the reactor go to one call of the
        batch function, in the order submitted, on the next turn; nothing
        is committed or delivered before that turn.
        """
        for item in [1, 2, 3]:
            self.batches.submit(self.committer, item)
        self.assertEqual(
            (self.batches.batches, self.batches.delivered), ([], [])
        )
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[1, 2, 3]])
        self.assertEqual(self.batches.delivered, [(1, 2), (2, 4), (3, 6)])

    def test_results_routed(self):
        """
        Each L{Deferred} fires with its own item's result, not another's.
        """
        ds = [self.committer.submit(item) for item in ["a", "b", "c"]]
        self.clock.advance(0)
        self.assertEqual(
            [self.successResultOf(d) for d in ds], ["aa", "bb", "cc"]
        )

    def test_nothing_fires_before_commit_returned(self):
        """
        When the batch function runs, no L{Deferred} of its batch has
        fired yet: a result always means the item was committed.
        """
        for item in [1, 2]:
            self.batches.submit(self.committer, item)
        self.clock.advance(0)
        self.assertEqual(self.batches.delivered_at_call, [[]])
        self.assertEqual(self.batches.delivered, [(1, 2), (2, 4)])

    def test_turns_make_batches(self):
        """
        Items submitted in different turns go to different batches, and a
        turn with nothing submitted calls nothing.
        """
        self.batches.submit(self.committer, 1)
        self.clock.advance(0)
        self.clock.advance(1)
        self.batches.submit(self.committer, 2)
        self.batches.submit(self.committer, 3)
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[1], [2, 3]])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failure_fails_whole_batch(self):
        """
        When the batch function raises, every L{Deferred} of that batch
        fails with what it raised, and the next batch works.
        """
        for item in [1, "fail", 3]:
            self.batches.submit(self.committer, item)
        self.clock.advance(0)
        self.assertEqual(
            self.batches.delivered,
            [(1, DiskFull), ("fail", DiskFull), (3, DiskFull)],
        )
        d = self.committer.submit(4)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), 8)
        self.assertEqual(self.batches.batches, [[1, "fail", 3], [4]])

    def test_wrong_number_of_results(self):
        """
        A batch function that answers with more or fewer results than it
        was given items fails every L{Deferred} of the batch with
        L{BatchMismatch}, since no result can be matched to its item.
        """
        for results in [[True], [True, True, True]]:
            committer = GroupCommitter(self.clock, lambda items: results)
            ds = [committer.submit(item) for item in ["a", "b"]]
            self.clock.advance(0)
            for d in ds:
                self.failureResultOf(d, BatchMismatch)

    def test_max_batch(self):
        """
        A turn's items beyond C{max_batch} go to further batches of at most
        C{max_batch}, in the order submitted; each batch's items are
        delivered when it is committed, before the next batch runs.
        """
        committer = GroupCommitter(self.clock, self.batches, max_batch=2)
        for item in range(5):
            self.batches.submit(committer, item)
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[0, 1], [2, 3], [4]])
        self.assertEqual(
            self.batches.delivered_at_call,
            [[], [(0, 0), (1, 2)], [(0, 0), (1, 2), (2, 4), (3, 6)]],
        )
        self.assertEqual(len(self.batches.delivered), 5)

    def test_default_max_batch(self):
        """
        By default a batch holds up to L{DEFAULT_MAX_BATCH} (512) items.
        """
        self.assertEqual(DEFAULT_MAX_BATCH, 512)
        for item in range(DEFAULT_MAX_BATCH + 1):
            self.committer.submit(item)
        self.clock.advance(0)
        self.assertEqual(
            [len(batch) for batch in self.batches.batches],
            [DEFAULT_MAX_BATCH, 1],
        )

    def test_submit_while_delivering(self):
        """
        An item submitted by a callback while a batch's results are being
        delivered goes to a batch of its own, after the batch being
        delivered.
        """
        d = self.committer.submit(1)
        later = []
        d.addCallback(lambda _: later.append(self.committer.submit(10)))
        self.batches.submit(self.committer, 2)
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[1, 2], [10]])
        self.assertEqual(self.successResultOf(later[0]), 20)

    def test_bad_max_batch(self):
        """
        A C{max_batch} that is not a positive L{int} raises L{ValueError}.
        """
        for bad in [0, -1, 1.5, True, None, "2"]:
            self.assertRaises(
                ValueError,
                GroupCommitter,
                self.clock,
                self.batches,
                max_batch=bad,
            )


class InFlightTests(SynchronousTestCase):
    """
    L{GroupCommitter} over a batch function that answers later: one batch
    is in flight at a time.
    """

    def setUp(self):
        self.clock = Clock()
        self.batches = SlowBatches()
        self.committer = GroupCommitter(self.clock, self.batches, max_batch=3)

    def test_gather_while_in_flight(self):
        """
        Items submitted while a batch is committing wait, over any number
        of turns, and go together to the next batch, which starts on the
        turn after the first returned.
        """
        first = [self.committer.submit(item) for item in [1, 2]]
        self.clock.advance(0)
        second = [self.committer.submit(3)]
        self.clock.advance(0)
        second.append(self.committer.submit(4))
        self.clock.advance(5)
        self.assertEqual(self.batches.batches, [[1, 2]])
        self.assertNoResult(first[0])
        self.batches.land(0)
        self.assertEqual([self.successResultOf(d) for d in first], [2, 4])
        self.assertEqual(self.batches.batches, [[1, 2]])
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[1, 2], [3, 4]])
        self.assertNoResult(second[0])
        self.batches.land(1)
        self.assertEqual([self.successResultOf(d) for d in second], [6, 8])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failure_fails_only_its_batch(self):
        """
        A batch that fails fails its own items only; the items gathered
        meanwhile go to the next batch as usual.
        """
        first = self.committer.submit(1)
        self.clock.advance(0)
        second = self.committer.submit(2)
        self.batches.returns[0].errback(DiskFull())
        self.failureResultOf(first, DiskFull)
        self.assertNoResult(second)
        self.clock.advance(0)
        self.batches.land(1)
        self.assertEqual(self.successResultOf(second), 4)

    def test_max_batch_in_flight(self):
        """
        Past C{max_batch}, the items left over make the next batches, each
        started after the one before it returned.
        """
        ds = [self.committer.submit(item) for item in range(5)]
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[0, 1, 2]])
        self.batches.land(0)
        self.clock.advance(0)
        self.assertEqual(self.batches.batches, [[0, 1, 2], [3, 4]])
        self.batches.land(1)
        self.assertEqual([self.successResultOf(d) for d in ds], [0, 2, 4, 6, 8])

    def test_wrong_number_later(self):
        """
        A batch answering later with the wrong number of results fails
        its items with L{BatchMismatch}, and the committer goes on.
        """
        d = self.committer.submit(1)
        self.clock.advance(0)
        self.batches.returns[0].callback([])
        self.failureResultOf(d, BatchMismatch)
        d = self.committer.submit(2)
        self.clock.advance(0)
        self.batches.land(1)
        self.assertEqual(self.successResultOf(d), 4)


class HoldTests(SynchronousTestCase):
    """
    L{GroupCommitter} given a C{hold}: after a small batch the next is
    held open that long, so a trickle of items shares transactions.
    """

    def setUp(self):
        self.clock = Clock()
        self.batches = RecordingBatches()
        self.committer = GroupCommitter(self.clock, self.batches, hold=0.01)

    def test_trickle_shares_a_batch(self):
        """
        Items arriving one per turn within the hold go to one batch,
        started when the hold has passed; nothing is delivered before
        the batch function has returned.
        """
        self.batches.submit(self.committer, 1)
        self.clock.advance(0)
        self.clock.advance(0.004)
        self.batches.submit(self.committer, 2)
        self.clock.advance(0.005)
        self.assertEqual(
            (self.batches.batches, self.batches.delivered), ([], [])
        )
        self.clock.advance(0.001)
        self.assertEqual(self.batches.batches, [[1, 2]])
        self.assertEqual(self.batches.delivered_at_call, [[]])
        self.assertEqual(self.batches.delivered, [(1, 2), (2, 4)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_load_is_not_held(self):
        """
        After a batch of L{SMALL_BATCH} items or more, the next batch
        starts on the next turn, as without a hold; once batches are
        small again, the hold comes back.
        """
        for item in range(SMALL_BATCH):
            self.batches.submit(self.committer, item)
        self.clock.advance(0.01)
        self.batches.submit(self.committer, "next")
        self.clock.advance(0)
        self.assertEqual(self.batches.batches[-1], ["next"])
        self.batches.submit(self.committer, "held")
        self.clock.advance(0)
        self.assertEqual(self.batches.batches[-1], ["next"])
        self.clock.advance(0.01)
        self.assertEqual(self.batches.batches[-1], ["held"])

    def test_many_waiting_not_held(self):
        """
        When L{SMALL_BATCH} items or more wait as a batch is scheduled
        (gathered while the one before was committing), it starts on the
        next turn even though the batch before was small.
        """
        batches = SlowBatches()
        committer = GroupCommitter(self.clock, batches, hold=0.01)
        committer.submit("first")
        self.clock.advance(0.01)
        waiting = [committer.submit(item) for item in range(SMALL_BATCH)]
        batches.land(0)
        self.clock.advance(0)
        self.assertEqual(batches.batches[-1], list(range(SMALL_BATCH)))
        batches.land(1)
        self.assertEqual(
            [self.successResultOf(d) for d in waiting],
            [item * 2 for item in range(SMALL_BATCH)],
        )

    def test_server_hold(self):
        """
        The server holds a small batch open L{SERVER_HOLD} (10 ms): a
        fifth of the 50 ms a rotation's p99 may take.
        """
        self.assertEqual(SERVER_HOLD, 0.010)
        committer = GroupCommitter(self.clock, self.batches, hold=SERVER_HOLD)
        d = committer.submit(1)
        self.clock.advance(SERVER_HOLD - 0.001)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        self.assertEqual(self.successResultOf(d), 2)

    def test_bad_hold(self):
        """
        A C{hold} that is not a finite number of seconds, 0 or more,
        raises L{ValueError}.
        """
        for bad in [-0.001, float("inf"), float("nan"), True, None, "0.01"]:
            self.assertRaises(
                ValueError, GroupCommitter, self.clock, self.batches, hold=bad
            )
