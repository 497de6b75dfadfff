"""
Tests for L{suto_server.phases.steps}: a step runs to its first wait for
an unfired L{Deferred}, goes on with that L{Deferred}'s result or
failure, and reports what it raises.
"""

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from suto_server.phases.steps import run_step


class Failed:
    """Records the failures a step reports, with their arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, failure, *args):
        self.calls.append((failure, args))


class RunStepTests(SynchronousTestCase):
    def setUp(self):
        self.failed = Failed()
        self.seen = []

    def test_fired_calls(self):
        """
        A step whose every call has fired (a local store's) runs to its
        end before L{run_step} returns, with each call's result.
        """

        async def step():
            self.seen.append(await succeed(1))
            self.seen.append(await succeed(2))

        run_step(step(), self.failed)
        self.assertEqual(self.seen, [1, 2])
        self.assertEqual(self.failed.calls, [])

    def test_waits(self):
        """
        A step stops at a call that has not fired, and goes on with its
        result when it fires; the L{Deferred} keeps L{None}.
        """
        call = Deferred()

        async def step():
            self.seen.append("before")
            self.seen.append(await call)

        run_step(step(), self.failed)
        self.assertEqual(self.seen, ["before"])
        call.callback("answer")
        self.assertEqual(self.seen, ["before", "answer"])
        self.assertIsNone(self.successResultOf(call))
        self.assertEqual(self.failed.calls, [])

    def test_waits_in_turn(self):
        """
        A step waits for each of its unfired calls in turn, fired in any
        later turn, its own coroutines' calls included.
        """
        calls = [Deferred() for _ in range(3)]

        async def inner(call):
            return await call

        async def step():
            for call in calls:
                self.seen.append(await inner(call))

        run_step(step(), self.failed)
        for index, call in enumerate(calls):
            self.assertEqual(self.seen, list(range(index)))
            call.callback(index)
        self.assertEqual(self.seen, [0, 1, 2])

    def test_failure_raised_in_the_step(self):
        """
        A call that fails raises its exception in the step, which may
        catch it; the failure is not reported as unhandled.
        """
        call = Deferred()

        async def step():
            try:
                await call
            except ZeroDivisionError as error:
                self.seen.append(error)

        run_step(step(), self.failed)
        error = ZeroDivisionError()
        call.errback(error)
        self.assertEqual(self.seen, [error])
        self.assertEqual(self.failed.calls, [])
        self.assertIsNone(self.successResultOf(call))

    def test_fired_failure_raised_in_the_step(self):
        """
        So does a call that has failed already.
        """

        async def step():
            try:
                await fail(ZeroDivisionError())
            except ZeroDivisionError:
                self.seen.append("caught")

        run_step(step(), self.failed)
        self.assertEqual(self.seen, ["caught"])
        self.assertEqual(self.failed.calls, [])

    def test_raises_at_once(self):
        """
        What a step raises before any wait goes to C{failed}, with the
        arguments L{run_step} was given.
        """

        async def step():
            raise ValueError("no")

        run_step(step(), self.failed, "doing", 2)
        [(failure, args)] = self.failed.calls
        self.assertTrue(failure.check(ValueError))
        self.assertEqual(args, ("doing", 2))

    def test_raises_after_a_wait(self):
        """
        So does what it raises after a wait, a call's failure it does
        not catch included.
        """
        call = Deferred()

        async def step():
            await call

        run_step(step(), self.failed, "doing")
        self.assertEqual(self.failed.calls, [])
        call.errback(KeyError("gone"))
        [(failure, args)] = self.failed.calls
        self.assertTrue(failure.check(KeyError))
        self.assertEqual(args, ("doing",))
        self.assertIsNone(self.successResultOf(call))

    def test_returns_nothing(self):
        """
        A step's return value is dropped: its effect is what it did.
        """

        async def step():
            self.seen.append("ran")
            return "dropped"

        self.assertIsNone(run_step(step(), self.failed))
        self.assertEqual(self.seen, ["ran"])
