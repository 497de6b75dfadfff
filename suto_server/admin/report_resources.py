# -*- test-case-name: tests.admin.test_listings,tests.admin.test_registry -*-
"""
The admin API's reports: C{/v1/alerts}, C{/v1/audit} (and its C{verify}),
C{/v1/clients} and C{/v1/history}, which C{suto-admin}'s
L{suto_server.admin.reports} commands call.

Alerts and audit records are written on the daemon's database thread, so
a listing of them waits until every record made so far is written.  Every
report reads the store through its calls and is written when they answer
(from the database thread, for a store across the network), so the
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
    since_argument,
    user_argument,
)
from suto_server.admin.operations import after_flush, verify_chain


def _since_listing(request, audit, read, log):
    """
    Answer C{request} with C{read(since)} once every audit record made so
    far is written (the daemon writes them on its database thread), so
    that an operator reading the log right after an event sees it;
    C{since} is its C{since} argument, and 400 the answer when that
    argument is not a POSIX time.
    """

    def listing():
        since = since_argument(request)
        return after_flush(audit, lambda: read(since))

    return answer(request, listing, log)


class AlertsResource(resource.Resource):
    """
    C{GET /v1/alerts?since=T}: the alerts at or after POSIX time C{T} (all
    without it), oldest first.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit

    def render_GET(self, request):
        async def read(since):
            alerts = await self._audit.alerts(since)
            return {"alerts": [alert_json(a) for a in alerts]}

        return _since_listing(request, self._audit, read, self.log)


class AuditResource(resource.Resource):
    """
    C{GET /v1/audit?since=T}: the audit records at or after POSIX time
    C{T} (all without it), oldest first; its child C{verify} checks the
    hash chain.
    """

    log = Logger()

    def __init__(self, audit) -> None:
        super().__init__()
        self._audit = audit
        self.putChild(b"verify", AuditVerifyResource(audit))

    def render_GET(self, request):
        async def read(since):
            events = await self._audit.events(since)
            return {"events": [event_json(e) for e in events]}

        return _since_listing(request, self._audit, read, self.log)


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
    C{GET /v1/history?user=U}: that profile's moves and the alerts about
    it, oldest first.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, history) -> None:
        super().__init__()
        self._history = history

    def render_GET(self, request):
        async def read():
            user = user_argument(request)
            report = await self._history(user)
            if report is None:
                raise NotFound(f"nothing is known of {user}")
            return report

        return answer(request, read, self.log)
