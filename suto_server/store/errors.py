# -*- test-case-name: tests.store.test_sqlite,tests.store.test_dbthread,tests.store.test_open -*-
"""
The typed failures of the store.

Callers catch L{StoreError} to handle every storage problem at once, or one
of its subclasses when they can do something specific about it.
"""


class StoreError(Exception):
    """
    The store could not do what was asked.
    """


class UserExists(StoreError):
    """
    An account with that name already exists.
    """


class UnknownUser(StoreError):
    """
    No account has that name.
    """


class DatabaseTooNew(StoreError):
    """
    The database file was written by a newer SUTO whose schema this code
    does not know; it is left untouched rather than misread.
    """


class CorruptDatabase(StoreError):
    """
    The database file is not a SUTO database this code can trust: not a
    SQLite file at all, missing its version table, or failing SQLite's
    integrity check.
    """


class UnknownWindow(StoreError):
    """
    No enrollment window is open for that user (never opened, closed, or
    already used).
    """


class ProfileExists(StoreError):
    """
    The user already has an enrolled profile, and the window being
    completed was not opened to replace it.
    """


class UnknownProfile(StoreError):
    """
    No enrolled profile has that name.
    """
