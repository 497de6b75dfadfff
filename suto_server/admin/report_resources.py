# -*- test-case-name: tests.admin.test_listings,tests.admin.test_registry -*-
"""
The admin API's reports: C{/v1/alerts}, C{/v1/audit} (and its C{verify}),
C{/v1/clients} and C{/v1/history}, which C{suto-admin}'s
L{suto_server.admin.reports} commands call.

Alerts and audit records are written on the daemon's database thread, so
a listing of them waits until every record made so far is written.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import resource

from suto_server.admin.formatting import alert_json, event_json
from suto_server.admin.httpjson import (
    BadRequest,
    answer_later,
    since_argument,
    user_argument,
    write_json,
)
from suto_server.admin.operations import after_flush, verify_chain


def _after_flush(request, audit, read, log):
    """
    Answer C{request} with C{read()} once every audit record made so far
    is written (the daemon writes them on its database thread), so that
    an operator reading the log right after an event sees it.
    """
    return answer_later(request, after_flush(audit, read), log)


def _since_listing(request, audit, read, log):
    """
    Answer C{request} with C{read(since)} once every audit record made so
    far is written, C{since} being its C{since} argument; 400 when that
    argument is not a POSIX time.
    """
    try:
        since = since_argument(request)
    except BadRequest as error:
        return write_json(request, 400, {"error": str(error)})
    return _after_flush(request, audit, lambda: read(since), log)


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
        def read(since):
            return {"alerts": [alert_json(a) for a in self._audit.alerts(since)]}

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
        def read(since):
            return {"events": [event_json(e) for e in self._audit.events(since)]}

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

    def __init__(self, clients) -> None:
        super().__init__()
        self._clients = clients

    def render_GET(self, request):
        if request.args:
            return write_json(request, 400, {"error": "no arguments are taken"})
        return write_json(request, 200, {"clients": self._clients()})


class HistoryResource(resource.Resource):
    """
    C{GET /v1/history?user=U}: that profile's moves and the alerts about
    it, oldest first.
    """

    isLeaf = True

    def __init__(self, history) -> None:
        super().__init__()
        self._history = history

    def render_GET(self, request):
        try:
            user = user_argument(request)
        except BadRequest as error:
            return write_json(request, 400, {"error": str(error)})
        report = self._history(user)
        if report is None:
            return write_json(request, 404, {"error": f"nothing is known of {user}"})
        return write_json(request, 200, report)
