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

#: Records of a page of the audit log.
AUDIT_PAGE = 100

#: Most alerts one filtered listing keeps.
MOST_RECORDS = 5000

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
            alerts = await self._audit.alerts(since)
            return pages.overview(
                status,
                await self._counts(),
                self._rate.per_minute(),
                [alert_json(a) for a in alerts],
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

    def alerts(self, request, session):
        query = self._query(request)
        since, until = time_field(request, "since"), time_field(request, "until")

        async def read():
            kept = []
            for alert in reversed(await self._audit.alerts(since)):
                if (
                    (until is None or alert.time <= until)
                    and query.get("user") in (None, alert.profile)
                    and query.get("type") in (None, alert.type)
                ):
                    kept.append(alert_json(alert))
                if len(kept) >= MOST_RECORDS:
                    break
            return pages.alerts(kept, query, sorted(ALERT_TYPES))

        return after_flush(self._audit, read)

    def audit(self, request, session, verified=None):
        number = page_field(request)
        query = self._query(request)
        filters = {
            "username": query.get("user"),
            "event": query.get("type"),
            "since": time_field(request, "since"),
            "until": time_field(request, "until"),
        }

        async def read():
            total = await self._audit.count(**filters)
            pages_count = max(1, -(-total // AUDIT_PAGE))
            number_shown = min(number, pages_count)
            records = await self._audit.matching(
                **filters, newest=AUDIT_PAGE, skip=(number_shown - 1) * AUDIT_PAGE
            )
            return pages.audit(
                session,
                [event_json(e) for e in records],
                total,
                number_shown,
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
