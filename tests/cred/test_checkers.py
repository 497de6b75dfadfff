"""
The salted-challenge credentials and their checker, and chained hash
sources.
"""

import hmac

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from suto_server.core import libxcrypt, schemes
from suto_server.cred import checkers
from suto_server.cred.checkers import ChainedHashSource, SaltedChallengeChecker
from suto_server.cred.credentials import ISaltedChallenge, SaltedChallenge
from suto_server.cred.hashpool import HashPool, HashPoolBusy
from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.store.errors import StoreError
from tests.support.sources import DictSource

PASSWORD = "password"
STORED = (
    "$6$abcdefghijklmnop$0aenUFHf897F9u0tURIHOeACWajSuVGa7jgJGyq.DKZm/WXl/IZFv"
    "PbneFydBjomEOgM.Sh1m0L3KsS1.H5b//"
)
RSALT = "$6$ABCDEFGHIJKLMNOP"

NOT_AVAILABLE = None if libxcrypt.available() else "libxcrypt is not installed"


class SynchronousHashPool:
    """
    Computes at once on the calling thread and records each computation,
    or fails with L{HashPoolBusy} when C{busy} is set.
    """

    def __init__(self):
        self.busy = False
        self.computed = []

    def crypt(self, phrase, setting):
        if self.busy:
            return defer.fail(HashPoolBusy())
        self.computed.append((phrase, setting))
        return defer.succeed(libxcrypt.crypt(phrase, setting))


class SaltedChallengeTests(SynchronousTestCase):
    """
    L{SaltedChallenge} carries a response without showing it.
    """

    def test_interface(self):
        """
        It provides L{ISaltedChallenge}.
        """
        self.assertTrue(
            verifyObject(ISaltedChallenge, SaltedChallenge("alice", RSALT, "x"))
        )

    def test_repr_hides_response(self):
        """
        Its C{repr} shows the user and the random salt, not the response.
        """
        text = repr(SaltedChallenge("alice", RSALT, "$6$SECRET$response"))
        self.assertIn("alice", text)
        self.assertIn(RSALT, text)
        self.assertNotIn("SECRET", text)

    def test_frozen(self):
        """
        It cannot be changed after the fact.
        """
        credentials = SaltedChallenge("alice", RSALT, "x")
        with self.assertRaises(AttributeError):
            credentials.username = "mallory"


class SaltedChallengeCheckerTests(SynchronousTestCase):
    """
    L{SaltedChallengeChecker} accepts exactly C{crypt(stored_hash, rsalt)}.
    """

    skip = NOT_AVAILABLE

    def setUp(self):
        self.source = DictSource({"alice": STORED, "locked": None})
        self.pool = SynchronousHashPool()
        self.checker = SaltedChallengeChecker(self.source, self.pool)

    def check(self, username, response):
        return self.checker.requestAvatarId(SaltedChallenge(username, RSALT, response))

    def right_response(self):
        return schemes.client_response(PASSWORD, schemes.salt_of(STORED), RSALT)

    def test_interface(self):
        """
        It provides L{ICredentialsChecker} for L{ISaltedChallenge}.
        """
        self.assertTrue(verifyObject(ICredentialsChecker, self.checker))
        self.assertEqual(self.checker.credentialInterfaces, (ISaltedChallenge,))

    def test_right_response(self):
        """
        The right response gives the user name, after one crypt of the
        stored hash with the random salt.
        """
        self.assertEqual(
            self.successResultOf(self.check("alice", self.right_response())), "alice"
        )
        self.assertEqual(self.pool.computed, [(STORED, RSALT)])

    def test_wrong_response(self):
        """
        A response from the wrong password is refused.
        """
        wrong = schemes.client_response("wrong", schemes.salt_of(STORED), RSALT)
        self.failureResultOf(self.check("alice", wrong), UnauthorizedLogin)

    def test_malformed_response(self):
        """
        Responses that could never match, including non-ASCII ones, are
        refused rather than raising.
        """
        for response in ["", "x" * 5000, "\u00e9" * 10, "\udc80"]:
            with self.subTest(response=response[:5]):
                self.failureResultOf(self.check("alice", response), UnauthorizedLogin)

    def test_unknown_user(self):
        """
        An unknown user is refused, after a crypt like any other, so the
        time taken does not reveal that the account does not exist.
        """
        self.failureResultOf(
            self.check("nobody", self.right_response()), UnauthorizedLogin
        )
        self.assertEqual(len(self.pool.computed), 1)
        phrase, setting = self.pool.computed[0]
        self.assertEqual(setting, RSALT)
        self.assertEqual(schemes.identify(phrase), "sha512_crypt")

    def test_locked_user(self):
        """
        A user without a usable hash is refused the same way.
        """
        self.failureResultOf(
            self.check("locked", self.right_response()), UnauthorizedLogin
        )
        self.assertEqual(len(self.pool.computed), 1)

    def test_stand_in_never_matches(self):
        """
        Answering with the stand-in hash's own response does not log an
        unknown user in.
        """
        response = libxcrypt.crypt(checkers._STAND_IN_HASH, RSALT)
        self.failureResultOf(self.check("nobody", response), UnauthorizedLogin)

    def test_constant_time_comparison(self):
        """
        The comparison goes through L{hmac.compare_digest}.
        """
        compared = []
        real_compare = hmac.compare_digest

        def recording_compare(a, b):
            compared.append((a, b))
            return real_compare(a, b)

        self.patch(hmac, "compare_digest", recording_compare)
        response = self.right_response()
        self.successResultOf(self.check("alice", response))
        self.assertEqual(
            compared, [(response.encode("ascii"), response.encode("ascii"))]
        )

    def test_busy(self):
        """
        A saturated pool fails with L{HashPoolBusy}, not L{UnauthorizedLogin},
        so the protocol can tell "busy" from "wrong".
        """
        self.pool.busy = True
        self.failureResultOf(self.check("alice", self.right_response()), HashPoolBusy)
        self.failureResultOf(self.check("nobody", self.right_response()), HashPoolBusy)


class CheckerWithPoolTests(TestCase):
    """
    The checker with a real L{HashPool}, its results delivered by the
    running reactor.
    """

    skip = NOT_AVAILABLE

    def test_right_and_wrong(self):
        """
        Through the pool the right response logs in and a wrong one does
        not.
        """
        pool = HashPool(reactor, size=2)
        pool.startService()
        self.addCleanup(pool.stopService)
        checker = SaltedChallengeChecker(DictSource({"alice": STORED}), pool)
        right = schemes.client_response(PASSWORD, schemes.salt_of(STORED), RSALT)
        accepted = checker.requestAvatarId(SaltedChallenge("alice", RSALT, right))
        refused = checker.requestAvatarId(SaltedChallenge("alice", RSALT, right[:-1]))
        accepted.addCallback(self.assertEqual, "alice")
        return defer.gatherResults(
            [accepted, self.assertFailure(refused, UnauthorizedLogin)]
        )


class ChainedHashSourceTests(SynchronousTestCase):
    """
    L{ChainedHashSource} asks its sources in order.
    """

    def test_interface(self):
        """
        It provides L{IPasswordHashSource}.
        """
        self.assertTrue(verifyObject(IPasswordHashSource, ChainedHashSource([])))

    def test_order(self):
        """
        The first source with a hash for the user answers; a source without
        one is skipped; nobody's hash is L{None}.
        """
        first = DictSource({"alice": "first-alice", "locked": None})
        second = DictSource(
            {"alice": "second-alice", "bob": "second-bob", "locked": "x"}
        )
        chain = ChainedHashSource([first, second])
        self.assertEqual(self.successResultOf(chain.hash_for("alice")), "first-alice")
        self.assertEqual(self.successResultOf(chain.hash_for("bob")), "second-bob")
        self.assertEqual(self.successResultOf(chain.hash_for("locked")), "x")
        self.assertIsNone(self.successResultOf(chain.hash_for("nobody")))

    def test_empty(self):
        """
        With no sources no user has a hash.
        """
        self.assertIsNone(self.successResultOf(ChainedHashSource([]).hash_for("alice")))

    def test_sources_fixed(self):
        """
        The chain keeps its own copy of the sources it was given.
        """
        sources = [DictSource({"alice": "a"})]
        chain = ChainedHashSource(sources)
        sources.clear()
        self.assertEqual(self.successResultOf(chain.hash_for("alice")), "a")

    def test_later_source(self):
        """
        A source that answers later (the store's calls across the network)
        is waited for, without the reactor waiting: the chain answers once
        it does, and asks the next source only if it has no hash.
        """
        later = {}

        class LaterSource:
            def hash_for(self, username):
                later[username] = Deferred()
                return later[username]

        chain = ChainedHashSource([LaterSource(), DictSource({"bob": "second-bob"})])
        alice, bob = chain.hash_for("alice"), chain.hash_for("bob")
        self.assertNoResult(alice)
        self.assertNoResult(bob)
        later["alice"].callback("first-alice")
        later["bob"].callback(None)
        self.assertEqual(self.successResultOf(alice), "first-alice")
        self.assertEqual(self.successResultOf(bob), "second-bob")

    def test_failing_source(self):
        """
        A source that cannot answer fails the lookup with its error: a
        later source does not answer for it, so the login is answered busy
        rather than decided on what the first source may hold.
        """

        class Unreachable:
            def hash_for(self, username):
                return fail(StoreError("the store is away"))

        chain = ChainedHashSource([Unreachable(), DictSource({"alice": "a"})])
        self.failureResultOf(chain.hash_for("alice"), StoreError)
