# -*- test-case-name: tests.console.test_site -*-
"""
The console's pages that read: the overview, the endpoints and a
profile, the alerts and the audit log, and the live view.

Each takes the request and the operator's session and answers a
L{suto_server.console.views.Page} (or the live view's panel) through a
L{Deferred}; the daemon's reports and the store's queries give what they
show, after the audit records made so far are written.  Every read is a
call of the store's that may answer from the database thread (a store
across the network), so the reactor serves other requests meanwhile, and
nothing read before an await is taken as still true after it but what
the page shows as read at that moment.
"""

from __future__ import annotations

from suto_server.admin.formatting import alert_json, event_json
from suto_server.admin.operations import after_flush
from suto_server.audit.alerts import ALERT_TYPES
from suto_server.audit.log import alerts_among
from suto_server.console import pages
from suto_server.console.guard import (
    ConsoleError,
    form_value,
    page_field,
    time_field,
    user_field,
)
from suto_server.console.listing import endpoints_listing

#: Rows of a page of the endpoints.
PAGE_SIZE = 50

#: Records of a page of the audit log or of the alerts.
AUDIT_PAGE = 100

#: The newest alerts of the last hour the overview lists.
OVERVIEW_ALERTS = 20

#: The newest audit records a profile's page shows.
PROFILE_RECORDS = 200

#: The newest audit records the live view shows.
LIVE_RECORDS = 20


class Reports:
    """
    The reading pages, over the daemon's reports.

    @param clock: the L{IReactorTime} "the last hour" is read from.
    @param sources: what the pages read (see L{Console}): C{status},
        C{counts}, C{clients}, C{client}, C{connected}, C{history},
        C{audit}.
    @param rate: the L{RotationRate}.
    @param rotation_history: the L{RotationHistory}.
    """

    def __init__(self, clock, sources, rate, rotation_history) -> None:
        self._clock = clock
        self._status = sources["status"]
        self._counts = sources["counts"]
        self._clients = sources["clients"]
        self._client = sources["client"]
        self._connected = sources["connected"]
        self._history = sources["history"]
        self._audit = sources["audit"]
        self._rate = rate
        self._rotation_history = rotation_history

    def overview(self, request, session):
        since = self._clock.seconds() - 3600

        async def read():
            status = await self._status()
            alerts = await self._audit.alerts(OVERVIEW_ALERTS, since=since)
            return pages.overview(
                status,
                self._rate.per_minute(),
                [alert_json(a) for a in alerts],
                await self._audit.count(types=ALERT_TYPES, since=since),
            )

        return after_flush(self._audit, read)

    async def endpoints(self, request, session):
        search = form_value(request, "q", 100)
        sort = form_value(request, "sort", 20) or "user"
        order = form_value(request, "order", 4) or "asc"
        number = page_field(request)
        listing = endpoints_listing(
            await self._clients(), search=search, sort=sort, order=order
        )
        page = listing.page(number, PAGE_SIZE)
        return pages.endpoints(
            page.rows, listing.total, page.number, page.count, listing.query
        )

    def profile(self, request, session):
        user = user_field(request)

        async def read():
            client = await self._client(user)
            history = await self._history(user)
            if client is None and history is None:
                raise ConsoleError(404, f"nothing is known of {user}")
            events = await self._audit.matching(username=user, newest=PROFILE_RECORDS)
            return pages.profile(
                user,
                client,
                history or {"moves": [], "alerts": []},
                [event_json(e) for e in events],
                self._rotation_history.hourly(user, self._clock.seconds()),
            )

        return after_flush(self._audit, read)

    def _query(self, request) -> dict:
        """
        @return: the filters of a listing of alerts or audit records, as
            the form gave them.
        """
        query = {
            "type": form_value(request, "type", 40),
            "user": user_field(request, required=False),
            "since": form_value(request, "since", 40),
            "until": form_value(request, "until", 40),
        }
        return {name: value for name, value in query.items() if value is not None}

    def _listing(self, request, types=None) -> tuple[dict, dict]:
        """
        @param types: the event types listed, all unless given.
        @return: the filters of a listing of audit records as the form
            gave them, and as the store's reads take them.
        """
        query = self._query(request)
        filters = {
            "username": query.get("user"),
            "event": query.get("type"),
            "since": time_field(request, "since"),
            "until": time_field(request, "until"),
        }
        if types is not None:
            filters["types"] = types
        return query, filters

    async def _page(self, request, filters: dict):
        """
        @return: the records of the listing's page the request asks for
            (the last when it asks past it), at most L{AUDIT_PAGE}, newest
            first; how many C{filters} select; that page's number and how
            many pages there are.
        """
        number = page_field(request)
        total = await self._audit.count(**filters)
        pages_count = max(1, -(-total // AUDIT_PAGE))
        number_shown = min(number, pages_count)
        records = await self._audit.matching(
            **filters, newest=AUDIT_PAGE, skip=(number_shown - 1) * AUDIT_PAGE
        )
        return records, total, number_shown, pages_count

    def alerts(self, request, session):
        query, filters = self._listing(request, ALERT_TYPES)

        async def read():
            records, total, number, pages_count = await self._page(request, filters)
            return pages.alerts(
                [alert_json(a) for a in alerts_among(records)],
                total,
                number,
                pages_count,
                query,
                sorted(ALERT_TYPES),
            )

        return after_flush(self._audit, read)

    def audit(self, request, session, verified=None):
        query, filters = self._listing(request)

        async def read():
            records, total, number, pages_count = await self._page(request, filters)
            return pages.audit(
                session,
                [event_json(e) for e in records],
                total,
                number,
                pages_count,
                query,
                verified,
            )

        return after_flush(self._audit, read)

    def _panel(self):
        async def read():
            counts = await self._counts()
            events = await self._audit.matching(newest=LIVE_RECORDS)
            return pages.live_panel(
                counts,
                self._rate.per_minute(),
                self._connected(),
                [event_json(e) for e in events],
            )

        return after_flush(self._audit, read)

    def live(self, request, session):
        return self._panel().addCallback(pages.live)

    def live_panel(self, request, session):
        return self._panel()
