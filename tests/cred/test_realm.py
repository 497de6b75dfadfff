"""
The cred realm behind the salted challenge.
"""

from twisted.cred.portal import IRealm
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import Interface
from zope.interface.verify import verifyObject

from suto_server.cred.realm import AuthenticatedUser, IAuthenticatedUser, SutoRealm


class IOther(Interface):
    "An avatar interface the realm does not provide."


class SutoRealmTests(SynchronousTestCase):
    """
    L{SutoRealm.requestAvatar} hands out L{IAuthenticatedUser} avatars and
    nothing else.
    """

    def setUp(self):
        self.realm = SutoRealm()

    def test_provides_irealm(self):
        """
        The realm is a complete L{IRealm}, so a portal can use it.
        """
        self.assertTrue(verifyObject(IRealm, self.realm))

    def test_authenticated_user(self):
        """
        Asking for L{IAuthenticatedUser} yields that interface, an avatar
        naming the user, and a logout that needs nothing.
        """
        interface, avatar, logout = self.realm.requestAvatar(
            "alice", None, IAuthenticatedUser
        )
        self.assertIs(interface, IAuthenticatedUser)
        self.assertEqual(avatar, AuthenticatedUser("alice"))
        self.assertTrue(verifyObject(IAuthenticatedUser, avatar))
        self.assertEqual(avatar.username, "alice")
        self.assertIsNone(logout())

    def test_among_other_interfaces(self):
        """
        L{IAuthenticatedUser} is found among other requested interfaces.
        """
        interface, avatar, _ = self.realm.requestAvatar(
            "alice", None, IOther, IAuthenticatedUser
        )
        self.assertIs(interface, IAuthenticatedUser)
        self.assertEqual(avatar.username, "alice")

    def test_other_interface(self):
        """
        Any other interface is refused, as cred expects of a realm.
        """
        self.assertRaises(
            NotImplementedError,
            self.realm.requestAvatar,
            "alice",
            None,
            IOther,
        )
        self.assertRaises(
            NotImplementedError, self.realm.requestAvatar, "alice", None
        )
