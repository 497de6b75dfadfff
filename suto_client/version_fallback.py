# -*- test-case-name: tests.client.test_version_fallback -*-
"""
Which protocol version one profile's rotation connections announce
(docs/PROTOCOL.md §9.2).

This release announces version 3.  A server of the release before
speaks only version 2: it answers C{SUTO_VERSION_3} with
C{SUTO_ERROR_BAD_VERSION} and closes.  L{VersionFallback} remembers such
a refusal, read from the machine-readable C{refused_version} of the
rotation's report, and has the connections announce L{FALLBACK_VERSION}
for L{FALLBACK_SPELL} seconds on an injected clock; then this release's
version again, so a server upgraded meanwhile primes its rotations once
more.  A refusal of L{FALLBACK_VERSION} itself leaves nothing to fall
back to: it is an error like any other, for the caller to count.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from suto_server.core import wire

#: The version announced to a server that refused this release's: the
#: oldest this release speaks, the release before's, which rotates in two
#: round trips.
FALLBACK_VERSION = min(wire.PROTOCOL_VERSIONS)
#: Seconds the agent keeps announcing L{FALLBACK_VERSION} to a server that
#: refused its own; then it tries its own again, once per spell, so a
#: server upgraded meanwhile primes its rotations within the hour and one
#: that was not costs one refused connection an hour.
FALLBACK_SPELL = 3600.0


class VersionFallback:
    """
    The version one profile's next connection announces, and the fallback
    a server's refusal starts.
    """

    def __init__(self, clock: IReactorTime) -> None:
        """
        @param clock: measures the fallback.
        """
        self._clock = clock
        # When the fallback under way ends; None when there is none.
        self._until: float | None = None

    def version(self) -> int:
        """
        @return: the version to announce now: this release's, but
            L{FALLBACK_VERSION} while a fallback lasts.
        """
        if self._until is not None:
            if self._clock.seconds() < self._until:
                return FALLBACK_VERSION
            self._until = None
        return wire.PROTOCOL_VERSION

    def refused(self, version: int | None) -> bool:
        """
        Note that the server refused C{version} (the report's
        C{refused_version}; L{None} when it refused none), and fall back
        for L{FALLBACK_SPELL} seconds if there is an older version to
        announce.

        @return: whether a fallback starts: the refusal then says nothing
            about the key, and the next connection should come at once.
        """
        if version is None or version <= FALLBACK_VERSION:
            return False
        self._until = self._clock.seconds() + FALLBACK_SPELL
        return True
