# -*- test-case-name: tests.core.test_timing -*-
"""
The timing rules of key rotation that the agent and the server must agree
on (docs/PROTOCOL.md §10.1), and how long each waits for an enrollment's
commit (§8.2).

An agent rotates its profile's key every interval, each wait drawn with up
to L{JITTER} either side so that a fleet started together drifts apart.
The server cannot see the draw, so it reasons from the longest wait an
agent may draw: a rotation connection may stay quiet that long plus a
grace, and a profile unseen for that long has missed its junk and is
offline.  The agent marks itself offline at the longest wait alone, so it
always finds out before the server does, and a profile the server marked
offline has always marked itself so.

A profile that went offline reconnects with a key derived for a time
step (docs/PROTOCOL.md §7.4): the agent takes the step length from the
server's C{SUTO_TIME} answer, and the server tries its own step and a
window either side, as TOTP does, for a clock that drifted while offline.

Both sides compute these from here, so a change to one is a change to
both; the arithmetic is written once, and the same inputs give the same
floats on either side.
"""

from __future__ import annotations

from random import Random

#: The share by which an agent's wait between rotations may differ from
#: the interval, either way.
JITTER = 0.1
#: Seconds between an agent's key rotations, unless configured otherwise.
DEFAULT_ROTATION_INTERVAL = 60.0
#: Seconds past the longest wait before the server gives up on a rotation
#: connection or a profile, unless configured otherwise.
DEFAULT_ROTATION_GRACE = 30.0
#: Seconds in one offline time step (as TOTP's), unless configured
#: otherwise.
DEFAULT_OFFLINE_STEP = 30
#: Steps either side of the server's own that a reconnection may use,
#: unless configured otherwise.
DEFAULT_OFFLINE_WINDOW = 2


def draw_wait(interval: float, random: Random) -> float:
    """
    The agent's wait before its next rotation: the interval times a factor
    drawn uniformly from M{[1 - JITTER, 1 + JITTER]}.

    @param random: the source of the draw, injected so tests can fix it.
    """
    return interval * random.uniform(1 - JITTER, 1 + JITTER)


def longest_wait(interval: float) -> float:
    """
    The longest wait L{draw_wait} can return for C{interval}.
    """
    return interval * (1 + JITTER)


def next_due(last_agreed: float, interval: float) -> float:
    """
    When the junk of the rotation after an agreement is due at the latest:
    past this, a profile that has not rotated since C{last_agreed} has
    missed it, and the agent marks the profile offline.

    @param last_agreed: when the profile's current key was agreed, in
        POSIX seconds.
    """
    return last_agreed + longest_wait(interval)


def silence_allowed(interval: float, grace: float) -> float:
    """
    Seconds the server lets a profile, or its rotation connection, go
    unseen before counting it as offline, or dead: the longest wait an
    agent draws, plus the grace.
    """
    return longest_wait(interval) + grace


# The enrollment's last step (docs/PROTOCOL.md §8.2).  The server commits
# the profile before it answers C{SUTO_ENROLLED_}, and a commit that has
# begun cannot be called back: were the server to time the device out
# while it waits, the profile could land with the device holding no
# confirmed key.  So the server waits for the commit this long, whatever
# its exchange timeout, and the agent waits for the answer longer still.

#: Seconds the server lets an enrollment's commit take before it gives up
#: on the device: above the longest a store call fails in by the store's
#: own bounds (on PostgreSQL a connect timeout of 5 s, then a lock timeout
#: of 10 s, or a TCP user timeout of 10 s and the keepalives' 11 s), so a
#: store that fails is answered C{SUTO_ERROR_BUSY} before it.
ENROLLMENT_COMMIT_BOUND = 30.0
#: Seconds the agent allows past the server's bound for the answer to
#: cross the network and the server's timeout wheel to turn (its slots
#: are a second wide).
ENROLLMENT_ANSWER_MARGIN = 10.0


def commit_wait(exchange_timeout: float) -> float:
    """
    Seconds the server lets an enrollment's commit take: its exchange
    timeout, or L{ENROLLMENT_COMMIT_BOUND} when that is longer.
    """
    return max(exchange_timeout, ENROLLMENT_COMMIT_BOUND)


def confirmation_wait(timeout: float) -> float:
    """
    Seconds the agent waits for C{SUTO_ENROLLED_} once its data went out:
    its own C{timeout}, or the server's commit bound and the margin when
    that is longer.
    """
    return max(timeout, ENROLLMENT_COMMIT_BOUND + ENROLLMENT_ANSWER_MARGIN)
