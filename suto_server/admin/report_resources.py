# -*- test-case-name: tests.admin.test_listings,tests.admin.test_registry -*-
"""
The admin API's reports: C{/v1/alerts}, C{/v1/audit} (and its C{verify}),
C{/v1/clients} and C{/v1/history}, which C{suto-admin}'s
L{suto_server.admin.reports} commands call.

Alerts and audit records are written on the daemon's database thread, so
a listing of them waits until every record made so far is written; it
reads one page of them (L{suto_server.audit.paging}), never the whole
log.  Every
report reads the store through its calls and is written when they answer
(from the database pool, for a store across the network), so the
reactor serves connections meanwhile; a store that cannot answer is a
503.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import resource

from suto_server.admin.formatting import alert_json, event_json
from suto_server.admin.httpjson import (
    BadRequest,
    NotFound,
    answer,
    answer_later,
    page_argument,
    since_argument,
    user_argument,
)
from suto_server.admin.operations import after_flush, verify_chain
from suto_server.audit.paging import page_answer, page_filters


def _paged_listing(request, audit, name, read, to_json, log):
    """
    Answer C{request} with one page of a listing of the audit log (see
    L{suto_server.audit.paging}) once every audit record made so far
    is written (the daemon writes them on its database thread), so that
    an operator reading the log right after an event sees it: under
    C{name}, what C{read(since=..., newest=..., skip=...)} reads for the
    request's C{since} and C{page} arguments, each made by C{to_json}; a
    400 when an argument is out of bounds.
    """

    def listing():
        since = since_argument(request)
        number = page_argument(request)

        async def page():
            records = await read(since=since, **page_filters(number))
            return page_answer(name, records, number, to_json)

        return after_flush(audit, page)

    return answer(request, listing, log)


class AlertsResource(resource.Resource):
    """
    C{GET /v1/alerts?since=T&page=N}: the alerts at or after POSIX time
    C{T} (all without it), a page of at most
    L{suto_server.audit.paging.LISTING_PAGE}: the newest, or the
    C{N}th counting back; oldest first.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit

    def render_GET(self, request):
        return _paged_listing(
            request, self._audit, "alerts", self._audit.alerts, alert_json, self.log
        )


class AuditResource(resource.Resource):
    """
    C{GET /v1/audit?since=T&page=N}: the audit records at or after POSIX
    time C{T} (all without it), a page at a time as C{/v1/alerts}; its
    child C{verify} checks the hash chain.
    """

    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit
        self.putChild(b"verify", AuditVerifyResource(audit))

    def render_GET(self, request):
        return _paged_listing(
            request, self._audit, "events", self._audit.matching, event_json, self.log
        )


class AuditVerifyResource(resource.Resource):
    """
    C{GET /v1/audit/verify}: whether the audit log's hash chain is intact,
    and every problem found when it is not.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit

    def render_GET(self, request):
        return answer_later(request, verify_chain(self._audit), self.log)


class ClientsResource(resource.Resource):
    """
    C{GET /v1/clients}: one row per enrolled profile: where it is, whether
    it is connected, when it was last seen and last rotated, its key id
    and that key's age.  No key material (key ids are public names).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, clients) -> None:
        super().__init__()
        self._clients = clients

    def render_GET(self, request):
        async def read():
            if request.args:
                raise BadRequest("no arguments are taken")
            return {"clients": await self._clients()}

        return answer(request, read, self.log)


class HistoryResource(resource.Resource):
    """
    C{GET /v1/history?user=U&page=N}: that profile's moves and a page of
    the alerts about it as C{/v1/alerts} pages them, oldest first.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, history) -> None:
        super().__init__()
        self._history = history

    def render_GET(self, request):
        async def read():
            user = user_argument(request, others={b"page"})
            report = await self._history(user, page_argument(request))
            if report is None:
                raise NotFound(f"nothing is known of {user}")
            return report

        return answer(request, read, self.log)
