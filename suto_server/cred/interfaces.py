# -*- test-case-name: tests.cred.test_checkers,tests.cred.test_shadow -*-
"""
The boundary between cred's checkers and whatever holds password hashes.
"""

from zope.interface import Interface


class IPasswordHashSource(Interface):
    """
    Somewhere a user's crypt(3)-style password hash can be looked up: the
    server's own user store, or a shadow-format file.

    A local source (a shadow file, a store object on its own thread)
    answers at once; one across a network (the store's calls on a
    PostgreSQL store, L{suto_server.store.calls}) answers with a
    L{twisted.internet.defer.Deferred}, so the reactor never waits for
    it.  Whoever asks takes either, as twisted.cred's checkers take
    either from C{requestAvatarId} (L{twisted.internet.defer.maybeDeferred}).
    """

    def hash_for(username):
        """
        @param username: the account name, as a L{str}.
        @return: the stored hash (for example C{"$6$salt$..."}) as a
            L{str}, or L{None} when this source has no usable hash for
            that user (unknown or locked account); or a L{Deferred}
            firing with one of them, or failing with why the source could
            not answer.
        """
