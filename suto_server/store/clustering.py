# -*- test-case-name: tests.cluster.test_leadership,tests.cluster.test_relay -*-
"""
What a store shared by several server processes offers besides their
state (L{suto_server.store.interfaces}): a lock that elects one leader,
and notices with claims that carry the rendezvous between processes.
Only the PostgreSQL store provides them; L{suto_server.cluster} uses
them.
"""

from zope.interface import Interface


class IClusterLock(Interface):
    """
    One lock that at most one holder, in any process on any host, holds
    at a time: what elects the leader of the server processes sharing a
    store.  Its calls block on the network, so they run on a thread of
    their own (L{suto_server.cluster.leadership.Leadership}'s), and only
    that thread calls them.
    """

    def try_acquire():
        """
        Take the lock if nobody holds it, or check that it is still held:
        a holder loses it when its connection to the store ends.

        @return: whether this object holds the lock now.
        @raise suto_server.store.errors.StoreError: the store cannot be
            reached; the lock is not held (any hold ended with the
            connection).
        """

    def release():
        """
        Let the lock go (if held) and close its connection.
        """


class IClusteredStore(Interface):
    """
    A store several server processes, on one host or several, may share
    at once (PostgreSQL's; a SQLite file belongs to one process by the
    data folder's lock).
    """

    def leader_lock():
        """
        @return: a new L{IClusterLock} on this store, not yet held; the
            same lock for every process sharing the store.
        """

    def announce(notice):
        """
        Send C{notice} to every L{INoticeListener} of this store, in any
        process, this one's included.  One round trip, on the database
        thread (through L{suto_server.store.calls}).

        @param notice: a L{str} of at most 7999 bytes in UTF-8.
        @raise suto_server.store.errors.StoreError: it could not be sent.
        """

    def take_claim(key):
        """
        Take the claim C{key} (a 63-bit number) if no session holds it.
        One round trip, on the database thread (through
        L{suto_server.store.calls}), whose one session then holds it: the
        claim is let go through the same object.

        @return: whether this object holds it now.
        @raise suto_server.store.errors.StoreError: the store failed.
        """

    def release_claim(key):
        """
        Let the claim C{key} go.

        @raise suto_server.store.errors.StoreError: the store failed.
        """

    def notice_listener():
        """
        @return: a new L{INoticeListener} of this store's notices.
        """


class INoticeListener(Interface):
    """
    Hears the notices of the processes sharing a store
    (L{IClusteredStore.announce}).  Its calls block on the network: only
    a thread of its own calls them.
    """

    def listen():
        """
        Start listening, if not listening already: notices sent from now
        on are kept for L{receive}.

        @raise suto_server.store.errors.StoreError: the store cannot be
            reached.
        """

    def receive(timeout):
        """
        Start listening if not listening already, and wait up to
        C{timeout} seconds for notices.

        @return: the notices that arrived, oldest first (perhaps none).
        @raise suto_server.store.errors.StoreError: the store cannot be
            reached; the next call tries again.
        """

    def close():
        """
        Stop listening.
        """
