# -*- test-case-name: tests.audit.test_alerts -*-
"""
Alerts: the audit events an operator must hear about as they happen.

An alert is made from its audit record and carries what the record says
(when, which profile, from where, at which locations, why) and nothing
else, so it never carries a key, a hash or a password: the audit log holds
none.  L{suto_server.audit.log.AuditLog} hands each alert to every configured
L{suto_server.audit.interfaces.IAlertSink}, at once or, for alerts any peer could
raise at will, gathered into one per source and interval
(L{suto_server.audit.aggregation}): such an alert stands for C{count}
events, and L{Alert.joined} makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from suto_server.core.timestamps import iso_utc

#: The audit events that are alerts.
ALERT_TYPES = frozenset(
    {
        # A second holder of a profile's key chain.
        "clone_suspected",
        # A profile is served from a new address; its old one fell silent.
        "location_changed",
        # An enrollment attempt was refused.
        "enrollment_failed",
        # An enrollment window closed after too many failed attempts.
        "enrollment_window_exhausted",
        # Rotations keep failing on the device: its hardware changed.
        "fingerprint_mismatch",
        # A device coming back after being offline failed to prove its key.
        "reconnect_failed",
        # A profile was blacklisted.
        "blacklisted",
        # A peer was refused for asking too often.
        "rate_limited",
        # A TLS certificate is close to expiry.
        "certificate_expiring",
        # A client certificate revocation list is close to its nextUpdate,
        # or past it (every client of its CA is refused).
        "crl_expiring",
        "crl_expired",
        # An answer to a check packet carried a wrong proof.
        "check_forged",
    }
)

#: The reason of an alert standing for events whose reasons differ.
VARIED_REASONS = "the reasons vary; the audit log records each"


@dataclass(frozen=True)
class Alert:
    """
    One alert.

    @ivar type: one of L{ALERT_TYPES}.
    @ivar time: POSIX time of the event.
    @ivar profile: the user name of the profile concerned, if any.
    @ivar locations: the places concerned, as operators name them.
    @ivar reason: what happened, in words.
    @ivar source: the peer's address, if a peer was involved.
    @ivar count: how many events of this type from this source the alert
        stands for: 1, or more for an alert gathered over an interval.
    """

    type: str
    time: float
    profile: str | None
    locations: tuple[str, ...]
    reason: str
    source: str | None
    count: int = 1

    def to_json(self) -> dict:
        """
        @return: the alert as a JSON-ready L{dict}, as every sink sends it
            (the admin API leaves out C{timestamp}): C{type}, C{time} (ISO
            8601, UTC), C{timestamp} (POSIX), C{profile}, C{source},
            C{locations}, C{reason} and C{count}.
        """
        return {
            "type": self.type,
            "time": iso_utc(self.time),
            "timestamp": self.time,
            "profile": self.profile,
            "source": self.source,
            "locations": list(self.locations),
            "reason": self.reason,
            "count": self.count,
        }

    def joined(self, later: Alert) -> Alert:
        """
        One alert standing for this one's events and C{later}'s (of the same
        type, from the same source), dated by the later.  What they share
        it keeps; a profile or locations they differ on it leaves out, and
        differing reasons it replaces with L{VARIED_REASONS}, so that a
        gathered alert never pins on one profile what a peer did to many.
        """
        return replace(
            later,
            profile=later.profile if later.profile == self.profile else None,
            locations=later.locations if later.locations == self.locations else (),
            reason=later.reason if later.reason == self.reason else VARIED_REASONS,
            count=self.count + later.count,
        )


def alert_for(event) -> Alert | None:
    """
    @param event: an L{suto_server.store.records.AuditEvent}.
    @return: the L{Alert} the event raises, or L{None} if it is not one of
        L{ALERT_TYPES}.
    """
    if event.event not in ALERT_TYPES:
        return None
    return Alert(
        type=event.event,
        time=event.time,
        profile=event.username,
        locations=event.locations,
        reason=event.reason,
        source=event.source,
    )
