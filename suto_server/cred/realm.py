# -*- test-case-name: tests.cred.test_realm -*-
"""
The cred realm: what a successful salted challenge yields.

SUTO's classic exchange proves "the person holding this device knows the
user's password right now"; the avatar records just that.  Later phases
(enrollment, rotation) ask the same portal for richer avatars.
"""

from dataclasses import dataclass

from twisted.cred.portal import IRealm
from zope.interface import Attribute, Interface, implementer


class IAuthenticatedUser(Interface):
    """
    A user whose password the device just proved.
    """

    username = Attribute("The account name, as a str.")


@implementer(IAuthenticatedUser)
@dataclass(frozen=True)
class AuthenticatedUser:
    username: str


@implementer(IRealm)
class SutoRealm:
    """
    Hands out L{IAuthenticatedUser} avatars; holds no per-login state, so
    logging out is a no-op.
    """

    def requestAvatar(self, avatarId, mind, *interfaces):
        if IAuthenticatedUser in interfaces:
            return IAuthenticatedUser, AuthenticatedUser(avatarId), _no_logout
        raise NotImplementedError(
            "SUTO's realm only provides IAuthenticatedUser"
        )


def _no_logout() -> None:
    "Nothing to release when an authenticated user logs out."
