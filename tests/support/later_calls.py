"""
The store's calls answered when a test says so, as a store across the
network answers them: after the reactor's turn has ended.

L{LaterCalls} takes the place of L{suto_server.store.calls.IStoreCalls}
over a real store: each call is kept with a L{Deferred} that has not
fired, and the test makes the oldest one on the store (L{LaterCalls.answer})
or fails it (L{LaterCalls.fail}), so it can show what a connection does
while the store has not answered, and that the answer, once it comes, is
the right one.
"""

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from suto_server.store.calls import CALLS


class LaterCalls:
    """
    @param store: the store each call is made on once answered.
    @ivar waiting: the calls not answered yet, oldest first, as
        C{(name, args, kwargs, deferred)}.
    """

    def __init__(self, store) -> None:
        self._store = store
        self.waiting: list = []

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
        with what the store returned, or fail it with what it raised.

        @return: the call's name.
        """
        name, args, kwargs, d = self.waiting.pop(0)
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
