# -*- test-case-name: tests.cred.test_checkers -*-
"""
The credentials of a SUTO login: a user's answer to a salted challenge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.cred.credentials import ICredentials
from zope.interface import Attribute, implementer


class ISaltedChallenge(ICredentials):
    """
    A response to a salted challenge: the client was sent the setting of
    the user's stored hash and a random salt C{rsalt}, and answered with
    C{crypt(crypt(password, salt), rsalt)}.
    """

    username = Attribute("The account name, a str.")
    rsalt = Attribute("The random salt the server sent for this challenge.")
    response = Attribute("The final hash the client sent (SUTO_CF_HASH_).")


@implementer(ISaltedChallenge)
@dataclass(frozen=True)
class SaltedChallenge:
    """
    One answer to one challenge.  The response is left out of C{repr} so it
    never reaches a log: it is a hash an eavesdropper could attack offline.
    """

    username: str
    rsalt: str
    response: str = field(repr=False)
