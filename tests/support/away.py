"""
A store that can be made to fail every call, as one whose database
stopped does, for the tests of what the server does then.
"""

from suto_server.store.errors import StoreError

#: What its calls fail with while it is away.
AWAY = "reading the store failed: the server stopped"


class AwayStore:
    """
    Goes to C{store}, except that while C{away} every call fails with
    L{StoreError}.

    @ivar away: whether the store is away now.
    """

    def __init__(self, store):
        self._store = store
        self.away = False

    def __getattr__(self, name):
        method = getattr(self._store, name)

        def call(*args, **kwargs):
            if self.away:
                raise StoreError(AWAY)
            return method(*args, **kwargs)

        return call
