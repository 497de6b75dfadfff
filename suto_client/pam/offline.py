# -*- test-case-name: tests.client.pam.test_offline -*-
"""
The offline policy for laptops: off unless the configuration turns it on,
and narrow when it is.

A laptop on a train cannot reach the SUTO server, and a fail-closed
helper would then lock its own user out.  With C{[offline] enabled =
true}, exactly this is allowed, and nothing more:

 - the user is named in C{offline.users} (never a group: each is a
   deliberate choice);
 - the request failed because no TCP connection to the server could be
   made (refused, no route, name not resolved, none within the deadline): a
   certificate refused in either direction, an HTTP error, an answer cut
   short, a deadline passed after connecting, and every verdict the
   server gave (rejected, blacklisted, no device...) stay denials;
 - the server accepted this same user on this host within the last
   C{offline.grace} seconds (eight hours unless set, at most 72), as
   recorded in a stamp file in a root-only folder.

Why that is safe enough: it lets in only someone who passed the full
check on this host recently, for a bounded time, and only when the
server is not there to ask; a server that answers is always obeyed, so a
blacklisting reaches the laptop as soon as it is back online.  The risk
left, stated in the README, is a thief who takes the laptop within the
grace period and keeps it offline, at a prompt where the user's account
is already the one being asked for.

Stamps hold only the time of the last acceptance.  Their names are the
SHA-256 of the user name, so no user name becomes a path.  A stamp from
the future (a clock set back) counts as none.
"""

from __future__ import annotations

import hashlib
import os

from suto_client.pam.config import Offline, PamConfigError, check_owner
from suto_client.pam.verdict import Decision
from suto_server.core.atomicfile import write_atomically

_MAX_STAMP_BYTES = 64


def _stamp_path(offline: Offline, user: str) -> str:
    name = hashlib.sha256(user.encode("utf-8", "surrogateescape")).hexdigest()
    return os.path.join(offline.stamps, name)


def record(offline: Offline | None, user: str, now: float) -> None:
    """
    Remember that the server accepted C{user} at C{now}, if the offline
    policy is on and names them.
    """
    if offline is None or user not in offline.users:
        return
    os.makedirs(offline.stamps, mode=0o700, exist_ok=True)
    write_atomically(_stamp_path(offline, user), f"{now!r}\n".encode("ascii"))


def admit(
    offline: Offline | None, user: str, denial: Decision, now: float
) -> Decision:
    """
    The decision once the offline policy has looked at C{denial}: an
    acceptance of the kind C{offline} if the policy allows it, else
    C{denial} unchanged.
    """
    if offline is None or denial.verdict != "unreachable" or user not in offline.users:
        return denial
    path = _stamp_path(offline, user)
    try:
        check_owner(offline.stamps, "offline stamp folder", secret=True)
        check_owner(path, "offline stamp", secret=True)
        with open(path, "rb") as handle:
            last = float(handle.read(_MAX_STAMP_BYTES).decode("ascii"))
    except (PamConfigError, OSError, ValueError):
        return denial
    age = now - last
    if not 0 <= age <= offline.grace:
        return denial
    return Decision(
        True,
        "offline",
        f"{denial.reason}; let in offline, last verified {age:.0f} s ago "
        f"(grace {offline.grace:g} s)",
    )
