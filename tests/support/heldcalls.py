# -*- test-case-name: tests.phases.test_rotation_awaits,tests.phases.test_classic_off_reactor,tests.phases.test_enrollment_off_reactor,tests.api.test_verifier_off_reactor,tests.rules.test_windows_awaits,tests.admin.test_store_waits -*-
"""
The store's calls answered when a test says so, as a store across the
network answers them: after the reactor's turn has ended.

L{HeldCalls} takes the place of L{suto_server.store.calls.IStoreCalls}
over a real store: each call is kept with a L{Deferred} that has not
fired, until the test makes it on the store (L{HeldCalls.answer},
L{HeldCalls.answer_all}) or fails it (L{HeldCalls.fail}, or every later
answer with L{HeldCalls.fail_every}).  So a test shows what the server
does while the store has not answered (nothing, to the peer), and that
the answer, once it comes, is the right one.
"""

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from suto_server.store.calls import CALLS, IStoreCalls


@implementer(IStoreCalls)
class HeldCalls:
    """
    @param store: the store each call is made on once answered.
    @ivar waiting: the calls not answered yet, oldest first, as
        C{(name, args, kwargs, deferred)}.
    """

    def __init__(self, store) -> None:
        self._store = store
        self.waiting: list = []
        self._failing: dict = {}

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)

        def call(*args, **kwargs) -> Deferred:
            d = Deferred()
            self.waiting.append((name, args, kwargs, d))
            return d

        return call

    @property
    def names(self) -> list[str]:
        """
        The names of the calls waiting, oldest first.
        """
        return [name for name, _, _, _ in self.waiting]

    def answer(self) -> str:
        """
        Make the oldest waiting call on the store and fire its L{Deferred}
        with what the store returned, or fail it with what it raised (or
        with the error L{fail_every} gave for it, without making it).

        @return: the call's name.
        """
        name, args, kwargs, d = self.waiting.pop(0)
        error = self._failing.get(name, self._failing.get(None))
        if error is not None:
            d.errback(error)
            return name
        try:
            result = getattr(self._store, name)(*args, **kwargs)
        except Exception:
            d.errback(Failure())
        else:
            d.callback(result)
        return name

    def answer_all(self) -> list[str]:
        """
        Answer every call, and the calls those answers lead to, until none
        waits.

        @return: the names answered, in order.
        """
        answered = []
        while self.waiting:
            answered.append(self.answer())
        return answered

    def fail(self, error: Exception) -> str:
        """
        Fail the oldest waiting call with C{error}, without making it.

        @return: the call's name.
        """
        name, _, _, d = self.waiting.pop(0)
        d.errback(error)
        return name

    def fail_every(self, error: Exception, name: str | None = None) -> None:
        """
        From now on, answer every call named C{name} (every call, for
        L{None}) with C{error} instead of making it, as a store that went
        away answers.
        """
        self._failing[name] = error
