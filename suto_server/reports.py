# -*- test-case-name: tests.admin.test_status,tests.admin.test_listings,tests.admin.test_registry,tests.test_service -*-
"""
The running server's reports: what C{suto-admin status}, C{clients} and
C{history}, the console's figures and the metrics' stored gauges read.

Each is a coroutine over the store's calls (L{suto_server.store.calls}),
reading what it shows in a few calls however large the store, and the
in-memory state (the live connections) only after its last await, so
what it shows of them is current when it answers.

L{ServerReports} is a base of L{suto_server.service.SutoServer}, which
assembles what the reports read: C{calls}, C{live}, C{enrollment},
C{rendezvous}, C{expiry_watch}, C{listeners} and C{_locations},
C{_reactor}, C{_started}; the last alert comes from the audit log's
observer L{ServerReports._note_alert}.  They are kept apart from the
service so that what the server shows reads in one place, and what it
runs in another.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from suto_server.admin.formatting import alert_json
from suto_server.audit.alerts import ALERT_TYPES, alert_for
from suto_server.core.logformat import address_text
from suto_server.core.version import VERSION
from suto_server.rules.registry import client_row, clients_report, history_report


class ServerReports:
    """
    The reports of L{suto_server.service.SutoServer}, read over its parts.

    @ivar _last_alert: the last alert the audit log recorded, for
        L{status}; L{None} before any.
    """

    _last_alert = None

    async def stored_counts(self) -> dict:
        """
        The counts the store keeps, for the metrics and the console: each
        read through the store's calls, counted by the store (never every
        profile read to count them).

        @raise suto_server.store.errors.StoreError: the store failed.
        """
        offline = await self.calls.count_offline()
        blacklisted = await self.calls.count_blacklisted()
        return {
            "offline": offline,
            "blacklisted": blacklisted,
            "windows": await self._open_windows(),
        }

    async def counts(self) -> dict:
        """
        The endpoints connected (now, after the store's counts are read),
        offline and blacklisted, and the open windows: the console's
        figures.
        """
        counts = await self.stored_counts()
        return {"connected": len(self.live), **counts}

    async def _open_windows(self) -> int:
        """
        How many enrollment windows are open; reading them closes those
        past their deadline.
        """
        if self.enrollment is None:
            return 0
        windows = await maybeDeferred(
            self.enrollment.windows, self._reactor.seconds()
        )
        return len(windows)

    def _note_alert(self, event) -> None:
        """
        An audit log observer: keep the last alert among the events
        recorded, which L{status} shows.
        """
        alert = alert_for(event)
        if alert is not None:
            self._last_alert = alert

    async def clients(self) -> list[dict]:
        """
        What C{suto-admin clients} shows: one row per enrolled profile.
        """
        return await clients_report(
            self.calls, self.live, self._locations, self._reactor.seconds()
        )

    async def client(self, user: str) -> dict | None:
        """
        C{user}'s row of L{clients}, or L{None} when it has no profile.
        """
        start = await self.calls.rotation_start(user)
        if start.profile is None:
            return None
        return client_row(
            start.profile,
            self.live,
            start.offline_since,
            self._locations,
            self._reactor.seconds(),
        )

    async def history(self, user: str, page: int = 1) -> dict | None:
        """
        What C{suto-admin history USER} shows (its alerts' page C{page}),
        or L{None} when the store knows nothing of C{user}: no profile,
        no move, no alert.
        """
        report = await history_report(self.calls, user, ALERT_TYPES, page)
        if report["moves"] or report["alerts"]:
            return report
        if await self.calls.get_profile(user) is None:
            return None
        return report

    async def status(self) -> dict:
        """
        What C{suto-admin status} shows: the counts read once (the
        console's overview shows them from here), and the served
        certificates and loaded CRLs with the warning the expiry watch
        raises of each.
        """
        counts = await self.counts()
        expiry = (
            {"certificates": [], "crls": []}
            if self.expiry_watch is None
            else self.expiry_watch.state()
        )
        return {
            "uptime": self._reactor.seconds() - self._started
            if self._started is not None
            else 0.0,
            "listeners": [
                {"name": service.name, "address": address_text(service.address)}
                for service in self.listeners
                if service.address is not None
            ],
            "certificates": expiry["certificates"],
            "crls": expiry["crls"],
            "pending": [
                {"user": request.user, "claimed_by": request.claimed_by}
                for request in self.rendezvous.pending
            ],
            "enrollment_windows": counts["windows"],
            "connected": counts["connected"],
            "offline": counts["offline"],
            "blacklisted": counts["blacklisted"],
            "last_alert": (
                alert_json(self._last_alert) if self._last_alert is not None else None
            ),
            "version": VERSION,
        }
