"""
The boundaries of the SUTO server, as zope interfaces.

Everything that can be swapped (where password hashes come from, where
state is kept) is reached through one of these, so tests and alternative
back ends plug in without monkeypatching.
"""

from zope.interface import Attribute, Interface


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


class IUserStore(IPasswordHashSource):
    """
    The server's own durable account store.  Implementations: SQLite (the
    embedded default) and in-memory (tests); one shared test suite runs
    against both.
    """

    def add_user(username, password_hash, now):
        """
        Create an account.

        @param now: POSIX time of creation, passed in so rules never read
            the clock themselves.
        @raise suto_server.store.errors.UserExists: the name is taken.
        """

    def set_password_hash(username, password_hash, now):
        """
        Replace an existing account's hash.

        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def remove_user(username):
        """
        Delete an account.

        @raise suto_server.store.errors.UnknownUser: no such account.
        """

    def list_users():
        """
        @return: a L{list} of L{suto_server.store.records.UserRecord},
            sorted by name.
        """

    def close():
        """
        Release the underlying resources.  Further calls are errors.
        """


class IUserRecord(Interface):
    """
    One account as listed by L{IUserStore.list_users}; never carries the
    hash itself, only its scheme.
    """

    username = Attribute("The account name.")
    scheme = Attribute("The hash scheme name, e.g. C{'sha512_crypt'}.")
    created = Attribute("POSIX time the account was created.")
    updated = Attribute("POSIX time the hash was last set.")


class IFingerprintSource(Interface):
    """
    One piece of system data that identifies a client machine and rarely
    changes (a machine ID, a firmware UUID, a network card's burned-in
    address).  The client hashes what its sources read into its hardware
    fingerprint; see L{suto_client.fingerprint}.
    """

    name = Attribute(
        "A short fixed L{str} naming the source; it is hashed with the "
        "value, so it must never change."
    )

    def read():
        """
        Read the value on this machine.

        @return: the value as a non-empty L{str}, or L{None} when this
            machine does not provide it or it cannot be read.  Never
            raises for an absent or unreadable source.
        """
