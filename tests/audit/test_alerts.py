"""
Tests for L{suto_server.audit.alerts}: which audit events are alerts, and what
an alert carries (and does not).
"""

import dataclasses
import json

from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.alerts import ALERT_TYPES, Alert, alert_for
from suto_server.store import chain
from suto_server.store.records import AuditEvent

NOW = 1_700_000_000.25

CLONE = AuditEvent(
    NOW,
    "clone_suspected",
    "alice",
    "10.9.0.4",
    "superseded key id 00ff used from 10.9.0.4",
    ("10.9.0.4", "10.2.3.17 (bldg2-f3-jack17)"),
)


class AlertTypesTests(SynchronousTestCase):
    """
    L{ALERT_TYPES} names exactly the events an operator must hear about.
    """

    def test_types(self):
        """
        The alert types are the issue's list plus C{certificate_expiring},
        C{crl_expiring}, C{crl_expired} and C{check_forged}.
        """
        self.assertEqual(
            ALERT_TYPES,
            {
                "clone_suspected",
                "location_changed",
                "enrollment_failed",
                "enrollment_window_exhausted",
                "fingerprint_mismatch",
                "reconnect_failed",
                "blacklisted",
                "rate_limited",
                "certificate_expiring",
                "crl_expiring",
                "crl_expired",
                "check_forged",
            },
        )


class AlertForTests(SynchronousTestCase):
    """
    L{alert_for} turns an audit record into its alert, if it is one.
    """

    def test_alert(self):
        """
        An event of an alert type gives an alert with the record's time,
        profile, locations, reason and source.
        """
        self.assertEqual(
            alert_for(CLONE),
            Alert(
                type="clone_suspected",
                time=NOW,
                profile="alice",
                locations=("10.9.0.4", "10.2.3.17 (bldg2-f3-jack17)"),
                reason="superseded key id 00ff used from 10.9.0.4",
                source="10.9.0.4",
            ),
        )

    def test_every_type(self):
        """
        Every alert type makes an alert of that type.
        """
        self.assertEqual(
            {
                alert_for(dataclasses.replace(CLONE, event=name)).type
                for name in ALERT_TYPES
            },
            ALERT_TYPES,
        )

    def test_not_an_alert(self):
        """
        Other events make no alert.
        """
        for name in ["enrolled", "enrollment_window_opened", "rotation_failed"]:
            self.assertIsNone(alert_for(dataclasses.replace(CLONE, event=name)))


class AlertJSONTests(SynchronousTestCase):
    """
    L{Alert.to_json} is what every sink and the admin API send.
    """

    def test_fields(self):
        """
        The JSON holds the type, the time (ISO 8601 UTC and POSIX), the
        profile, the source, the locations, the reason and the count of
        events the alert stands for, and it serialises as JSON.
        """
        data = alert_for(CLONE).to_json()
        self.assertEqual(
            data,
            {
                "type": "clone_suspected",
                "time": "2023-11-14T22:13:20Z",
                "timestamp": NOW,
                "profile": "alice",
                "source": "10.9.0.4",
                "locations": ["10.9.0.4", "10.2.3.17 (bldg2-f3-jack17)"],
                "reason": "superseded key id 00ff used from 10.9.0.4",
                "count": 1,
            },
        )
        self.assertEqual(json.loads(json.dumps(data)), data)

    def test_absent_profile_and_source(self):
        """
        An alert about no profile and no peer says so with nulls.
        """
        data = alert_for(
            AuditEvent(NOW, "certificate_expiring", None, None, "3 days left")
        ).to_json()
        self.assertEqual(
            (data["profile"], data["source"], data["locations"]),
            (None, None, []),
        )

    def test_never_a_secret(self):
        """
        An alert has no field that could hold a secret or the chain: made
        from a stored record, its JSON holds neither the record's hash nor
        the previous one, in any form.
        """
        self.assertEqual(
            [field.name for field in dataclasses.fields(Alert)],
            ["type", "time", "profile", "locations", "reason", "source", "count"],
        )
        stored = chain.chained(chain.GENESIS, CLONE)
        text = json.dumps(alert_for(stored).to_json())
        for digest in [stored.hash, stored.previous_hash]:
            self.assertNotIn(digest.hex(), text)
            self.assertNotIn(repr(digest)[2:-1], text)
