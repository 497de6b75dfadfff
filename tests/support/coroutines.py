# -*- test-case-name: tests.store.test_calls -*-
"""
Running a rule's coroutine in a test: on a local store every call it
awaits has fired, so the coroutine has finished by the time it returns,
and its result or failure is there to take.
"""

from twisted.internet.defer import Deferred


def result_of(case, coroutine):
    """
    @param case: the running L{twisted.trial.unittest.SynchronousTestCase}.
    @return: what C{coroutine} returned; the test fails if it has not
        finished, or raised.
    """
    return case.successResultOf(Deferred.fromCoroutine(coroutine))


def failure_of(case, coroutine, *errors):
    """
    @param errors: the exception types expected.
    @return: the L{twisted.python.failure.Failure} C{coroutine} raised; the
        test fails if it has not finished, returned, or raised another
        type.
    """
    return case.failureResultOf(Deferred.fromCoroutine(coroutine), *errors)
