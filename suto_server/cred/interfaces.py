# -*- test-case-name: tests.cred.test_checkers,tests.cred.test_shadow -*-
"""
The boundary between cred's checkers and whatever holds password hashes.
"""

from zope.interface import Interface


class IPasswordHashSource(Interface):
    """
    Somewhere a user's crypt(3)-style password hash can be looked up: the
    server's own user store, or a shadow-format file.
    """

    def hash_for(username):
        """
        @param username: the account name, as a L{str}.
        @return: the stored hash (for example C{"$6$salt$..."}) as a
            L{str}, or L{None} when this source has no usable hash for
            that user (unknown or locked account).
        """
