# -*- test-case-name: tests.cred.test_checkers,tests.phases.test_classic_off_reactor -*-
"""
Checking answers to the salted challenge, as a twisted.cred checker.

The server expects C{crypt(stored_hash, rsalt)}, computed in the hash pool,
and compares it with the client's answer in constant time.  A user without
a usable hash costs the same crypt as any other (on a fixed stand-in hash),
so response timing does not tell which accounts exist.

A hash source may answer later (L{IPasswordHashSource}: the store across
the network); the checker waits for it without holding the reactor, and
a source that cannot answer fails the login with its error, which is no
verdict on the credentials.
"""

from __future__ import annotations

import hmac

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, maybeDeferred
from zope.interface import implementer

from suto_server.cred.credentials import ISaltedChallenge
from suto_server.cred.interfaces import IPasswordHashSource

# The stand-in crypted for users without a usable hash: a sha512-crypt hash
# at the default cost, like the hashes SUTO makes, of a password nobody
# kept.  It is public, so a match against it never logs anyone in.
_STAND_IN_HASH = (
    "$6$zMq7QnUJC0aa48eT$ggSj49vGMRx2aYMXAZmJ4wcN10bxxBr2/f2EdibTaMtQrYwey"
    "AN20dNKLZYRTJIPSezwuj6xhWbRhkWRn.xdh1"
)


@implementer(ICredentialsChecker)
class SaltedChallengeChecker:
    """
    Verifies L{ISaltedChallenge} credentials against stored hashes.
    """

    credentialInterfaces = (ISaltedChallenge,)

    def __init__(self, source, pool) -> None:
        """
        @param source: an L{IPasswordHashSource} holding the stored hashes.
        @param pool: computes the hashes off the reactor thread (a
            L{suto_server.cred.hashpool.HashPool}).
        """
        self._source = source
        self._pool = pool

    def requestAvatarId(self, credentials) -> Deferred[str]:
        """
        @return: a L{Deferred} firing with the username when the response
            is right; failing with L{UnauthorizedLogin} when it is wrong or
            the user has no usable hash; failing with
            L{suto_server.cred.hashpool.HashPoolBusy} when the pool is saturated,
            or with the source's error when it could not answer, neither
            of which is a verdict on the credentials.
        """
        return maybeDeferred(self._source.hash_for, credentials.username).addCallback(
            self._check, credentials
        )

    def _check(self, stored: str | None, credentials) -> Deferred[str]:
        phrase = _STAND_IN_HASH if stored is None else stored
        d = self._pool.crypt(phrase, credentials.rsalt)
        d.addCallback(self._verdict, credentials, stored is not None)
        return d

    def _verdict(self, expected: str, credentials, known: bool) -> str:
        """
        Compare the expected response with the received one.

        @raise UnauthorizedLogin: they differ, or the user is unknown.
        """
        # Bytes, because compare_digest refuses non-ASCII text and the
        # response comes from the network.
        received = credentials.response.encode("utf-8", "surrogatepass")
        matches = hmac.compare_digest(expected.encode("ascii"), received)
        if known and matches:
            return credentials.username
        raise UnauthorizedLogin()


@implementer(IPasswordHashSource)
class ChainedHashSource:
    """
    Several hash sources consulted in order: the first with a usable hash
    for the user answers.  A source cannot say "locked" apart from
    "unknown", so an account locked in one source is still usable through
    a later source that has a hash for it.

    The sources may answer at once or later (the store's calls first, the
    shadow files after them), so the chain always answers with a
    L{Deferred}; one source that fails fails the lookup, so that the
    login is answered busy rather than refused as if the user had no
    hash there.
    """

    def __init__(self, sources) -> None:
        """
        @param sources: L{IPasswordHashSource} providers, first consulted
            first.
        """
        self._sources = tuple(sources)

    def hash_for(self, username: str) -> Deferred[str | None]:
        """
        See L{IPasswordHashSource.hash_for}.
        """
        return Deferred.fromCoroutine(self._first(username))

    async def _first(self, username: str) -> str | None:
        for source in self._sources:
            password_hash = await maybeDeferred(source.hash_for, username)
            if password_hash is not None:
                return password_hash
        return None
