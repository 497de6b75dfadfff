# -*- test-case-name: tests.client.test_rotation,tests.client.test_reconnection,tests.client.test_version_fallback -*-
"""
How a key rotation ends and what it asks of whoever runs it: the
vocabulary L{suto_client.rotation_machine.ClientRotation} speaks besides
the L{suto_server.core.machine.Send} and L{suto_server.core.machine.Close}
every machine uses.

The machine only decides.  L{suto_client.rotation} carries out a L{Commit}
against the state file and hands each L{Report} on; the agent and the
benchmarks read only the L{RotationOutcome} and its reason, so they import
this vocabulary and never the transition table.  The reasons are written
for people (logs, the command line) and never hold a secret.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from suto_client.state import EnrolledProfile
from suto_server.core import wire

#: What the errors a server may end a rotation with mean.
_SERVER_ERRORS = {
    wire.ERROR_ROTATION_FAILED: (
        "the server could not open our acknowledgement"
    ),
    wire.ERROR_BUSY: "the server is busy; try again",
    wire.ERROR_TIMEOUT: "the server gave up waiting",
    wire.ERROR_BAD_VERSION: "the server does not speak the version announced",
}

UNKNOWN_KEY_REASON = "the server does not know this key: re-enrollment needed"
REFUSED_REASON = (
    "the server refused the profile (SUTO_AUTH_0): it may be blacklisted, "
    "which IT must lift before the machine enrolls again"
)
OPEN_FAILED_REASON = (
    "could not open the server's rotation message: the hardware fingerprint "
    "changed or the key is stale"
)
TIMEOUT_REASON = "the server did not answer in time"


def server_error_reason(code: str) -> str:
    """
    @return: what the server's C{SUTO_ERROR_<code>} that ended a rotation
        means, for people.
    """
    return f"{_SERVER_ERRORS.get(code, 'the server failed')} ({code})"


class RotationError(ValueError):
    """
    A rotation cannot start with these inputs: the profile's user name
    cannot travel in C{SUTO_C_ROTATE_}, or an argument is malformed.
    """


class RotationOutcome(enum.Enum):
    """
    How one rotation ended.
    """

    ROTATED = "rotated"
    UNKNOWN_KEY = "unknown-key"
    OPEN_FAILED = "open-failed"
    REFUSED = "refused"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Commit:
    """
    Store C{profile}, which holds the new key, in place of the profile the
    rotation started from, and say whether that worked
    (L{ClientRotation.committed} or L{ClientRotation.commit_failed}).
    """

    profile: EnrolledProfile


@dataclass(frozen=True)
class Report:
    """
    A rotation ended with C{outcome}.

    @ivar key_id: the id of the key the profile holds now: the new key's
        after L{RotationOutcome.ROTATED}, the unchanged one otherwise.  Key
        ids are public names and may be logged.
    @ivar generation: that key's generation.
    @ivar reason: a short explanation for people; never a secret.
    @ivar answered: whether the server sent anything on the connection
        before the rotation ended; C{False} for a connection it closed, or
        let time out, before its version answer.
    @ivar refused_version: the protocol version the agent announced, when
        the server answered it with C{SUTO_ERROR_BAD_VERSION} (a server of
        an earlier release); L{None} otherwise.  The rotation then never
        started, and the key has nothing to do with it.
    """

    outcome: RotationOutcome
    key_id: str
    generation: int
    reason: str = ""
    answered: bool = True
    refused_version: int | None = None


def require_rotatable(profile: EnrolledProfile) -> None:
    """
    @raise RotationError: C{profile}'s user cannot travel in
        C{SUTO_C_ROTATE_}.
    """
    if not wire.can_enroll(profile.user):
        raise RotationError(
            f"profile {profile.user!r} cannot rotate: its user name cannot "
            f"be enrolled"
        )
