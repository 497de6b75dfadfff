# -*- test-case-name: tests.phases.test_rotation_awaits -*-
"""
The store's calls as a store across the network makes them, answered when
the test says: each call waits until the test releases it, so a test sees
what the server does while the store has not answered yet (nothing, to
the peer), and then what it does once it has.
"""

from twisted.internet.defer import Deferred
from zope.interface import implementer

from suto_server.store.calls import CALLS, IStoreCalls


@implementer(IStoreCalls)
class HeldCalls:
    """
    L{IStoreCalls} over a real store whose calls run only when released,
    in the order they were made.

    @ivar held: the calls made and not released yet, as C{(name, run,
        Deferred)}.
    @ivar failing: the name of a call to fail with C{error} when it is
        released, instead of running it; L{None} for none.
    """

    def __init__(self, store) -> None:
        self._store = store
        self.held: list = []
        self.failing = None
        self.error = None

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)

        def call(*args, **kwargs) -> Deferred:
            d = Deferred()
            method = getattr(self._store, name)
            self.held.append((name, lambda: method(*args, **kwargs), d))
            return d

        return call

    def names(self) -> list[str]:
        """
        @return: the names of the calls waiting, in order.
        """
        return [name for name, _, _ in self.held]

    def release(self) -> list[str]:
        """
        Answer every call waiting now, in order, and those the answers
        lead to, until none waits.

        @return: the names of the calls answered.
        """
        answered = []
        while self.held:
            name, run, d = self.held.pop(0)
            answered.append(name)
            if name == self.failing:
                d.errback(self.error)
                continue
            try:
                result = run()
            except Exception as error:
                d.errback(error)
            else:
                d.callback(result)
        return answered

    def fail(self, name: str, error: Exception) -> None:
        """
        Fail every later release of C{name} with C{error}.
        """
        self.failing, self.error = name, error
