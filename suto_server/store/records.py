"""
What the account store holds about one account, and which names it accepts.
"""

from dataclasses import dataclass

from zope.interface import implementer

from suto_server import wire
from suto_server.interfaces import IUserRecord


def check_username(username):
    """
    Refuse a name that could not travel in a SUTO hello.  The store accepts
    exactly the names the wire does (1 to 64 of C{A-Z a-z 0-9 . _ -}, not
    starting with C{-}), so no account can exist that no peer could ever
    ask for, and no leading C{-} can be mistaken for an option by tools.

    @param username: the proposed account name.
    @raise ValueError: C{username} is not a L{str} following that rule.
    """
    if not wire.is_valid_user(username):
        raise ValueError("invalid user name")


@implementer(IUserRecord)
@dataclass(frozen=True)
class UserRecord:
    """
    One account as listed; it names the hash scheme but never carries the
    hash, so a listing can be shown or logged without leaking secrets.
    """

    username: str
    scheme: str
    created: float
    updated: float
