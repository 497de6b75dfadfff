# -*- test-case-name: tests.console.test_site -*-
"""
The console's site: one resource that checks every request the same way
and hands it to the page it names.

A request goes through, in order: the headers every answer carries
(L{guard.protect}); the body bound (413); the static files and the
sign-in, which need no session; the session (its cookie, or a client
certificate with the C{admin} role where the certificate sign-in is
given); the CSRF token of a POST; then its page.  A page answers a
L{Page}, a fragment of tags (the live view's panel) or a L{Redirect},
at once or through a L{Deferred}; any L{ConsoleError} on the way is
answered with its 4xx page, anything else with a 500 page and a logged
failure, never a traceback.

The live view polls with htmx (a GET of its panel every two seconds)
rather than holding a server-sent event stream open: each poll is an
ordinary request, checked like any other, bounded and cheap, and there is
no long-lived connection per open tab to count and limit.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.web import resource, server

from suto_server.admin.formatting import alert_json, event_json
from suto_server.admin.httpjson import BadRequest
from suto_server.admin.operations import (
    NotFound,
    after_flush,
    cancel_window,
    open_window,
    unblock,
    verify_chain,
)
from suto_server.audit.alerts import ALERT_TYPES
from suto_server.console import pages
from suto_server.console.guard import (
    BoundedRequest,
    ConsoleError,
    check_csrf,
    form_value,
    protect,
)
from suto_server.console.listing import endpoints_listing
from suto_server.console.rotations import RotationHistory, RotationRate
from suto_server.console.sessions import (
    COOKIE,
    Sessions,
    cleared_cookie,
    session_cookie,
)
from suto_server.console.signin import LoginLinks, on_loopback
from suto_server.console.views import Page, render_fragment, render_page
from suto_server.core import wire
from suto_server.locations import LocationError
from suto_server.store.errors import ProfileExists

#: The console's static files: name, content type.
STATIC = {
    b"htmx.min.js": b"text/javascript; charset=utf-8",
    b"console.css": b"text/css; charset=utf-8",
}

#: Rows of a listing page.
PAGE_SIZE = 50

#: Records of a page of the audit log.
AUDIT_PAGE = 100

#: Most alerts one filtered listing keeps.
MOST_RECORDS = 5000

#: The newest audit records a profile's page shows.
PROFILE_RECORDS = 200

#: The newest audit records the live view shows.
LIVE_RECORDS = 20

#: How an operator signs in when not signed in.
SIGN_IN_HELP = (
    "You are not signed in. On the server's host, run 'suto-admin "
    "console-link' and open the link it prints (valid for two minutes, "
    "once), or connect with a client certificate that has the admin role."
)


@dataclass(frozen=True)
class Redirect:
    """A page's answer that sends the browser to C{location} (303)."""

    location: bytes


def _user(request, required: bool = True) -> str | None:
    user = form_value(request, "user", 64)
    if user is None and not required:
        return None
    if not wire.is_valid_user(user):
        raise ConsoleError(400, "'user' must be a valid account name")
    return user


def _time(request, name: str) -> float | None:
    """
    @return: the form field C{name}, a UTC date and time (ISO 8601), as a
        POSIX time; L{None} when absent.
    """
    text = form_value(request, name, 40)
    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConsoleError(400, f"'{name}' must be a UTC time as 2026-01-31T08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _page_number(request) -> int:
    text = form_value(request, "page", 9) or "1"
    if not text.isdigit() or int(text) < 1:
        raise ConsoleError(400, "'page' must be a page number")
    return int(text)


class Console:
    """
    The console's state (its login links, its sessions) and its pages.

    @param clock: the L{IReactorTime} sessions, links and rotation rates
        are timed by.

    @ivar rotation_history: each profile's rotations of the last day; the
        daemon makes its C{record} an observer of the rotation rules.
    @param status: returns the daemon's status (listeners, certificates).
    @param counts: returns the connected, offline and blacklisted
        endpoints and the open windows.
    @param rotations: returns the count of completed rotations so far.
    @param clients: returns the clients report's rows.
    @param client: returns one user's row of that report, or L{None}.
    @param connected: returns the users connected now.
    @param history: returns a user's moves and alerts, or L{None}.
    @param audit: the L{suto_server.audit.log.AuditLog}.
    @param desk: the L{WindowDesk}, or L{None} when the server does not
        enroll.
    @param reconnection: the blacklist's rules, or L{None}.
    @param certificates: an L{IOperatorSignIn} reading client
        certificates, or L{None} when none is configured.
    """

    log = Logger()

    def __init__(
        self,
        clock,
        *,
        status,
        counts,
        rotations,
        clients,
        client,
        connected,
        history,
        audit,
        desk=None,
        reconnection=None,
        certificates=None,
    ) -> None:
        self._clock = clock
        self._status = status
        self._counts = counts
        self._clients = clients
        self._client = client
        self._connected = connected
        self._history = history
        self._audit = audit
        self._desk = desk
        self._reconnection = reconnection
        self._certificates = certificates
        self.rate = RotationRate(clock, rotations)
        self.rotation_history = RotationHistory()
        self.links = LoginLinks(clock)
        self.sessions = Sessions(clock)
        folder = FilePath(__file__).sibling("static")
        self._static = {name: folder.child(name.decode()).getContent() for name in STATIC}
        self._pages = {
            (b"GET", b"/"): self.overview,
            (b"GET", b"/endpoints"): self.endpoints,
            (b"GET", b"/profile"): self.profile,
            (b"GET", b"/windows"): self.windows,
            (b"POST", b"/windows/open"): self.open_window,
            (b"POST", b"/windows/cancel"): self.cancel_window,
            (b"GET", b"/blacklist"): self.blacklist,
            (b"GET", b"/blacklist/unblock"): self.confirm_unblock,
            (b"POST", b"/blacklist/unblock"): self.unblock,
            (b"GET", b"/alerts"): self.alerts,
            (b"GET", b"/audit"): self.audit,
            (b"POST", b"/audit/verify"): self.verify,
            (b"GET", b"/live"): self.live,
            (b"GET", b"/live/panel"): self.live_panel,
            (b"POST", b"/signout"): self.sign_out,
        }

    def site(self) -> server.Site:
        site = server.Site(_ConsoleResource(self))
        site.requestFactory = BoundedRequest
        site.displayTracebacks = False
        site.noisy = False
        return site

    # Sign-in and sessions.

    def session_of(self, request):
        """
        @return: the request's session: its cookie's, or a new one for
            its client certificate's operator; L{None} when it has none.
        """
        cookie = request.getCookie(COOKIE)
        session = None
        if cookie is not None:
            session = self.sessions.find(cookie.decode("ascii", "replace"))
        if session is None and self._certificates is not None:
            operator = self._certificates.operator_of(request)
            if operator is not None:
                session = self._start(request, operator)
        return session

    def _start(self, request, operator: str):
        session_id, session = self.sessions.start(operator)
        request.responseHeaders.addRawHeader(
            b"set-cookie", session_cookie(session_id, request.isSecure())
        )
        self.log.info("console: {operator} signed in", operator=operator)
        return session

    def sign_in(self, request):
        """
        C{GET /signin?token=...}: redeem a login link, on loopback only.
        """
        if not on_loopback(request):
            raise ConsoleError(
                403, "login links are only accepted on a loopback listener, "
                "from the server's own host"
            )
        token = form_value(request, "token", 128)
        operator = None if token is None else self.links.redeem(token)
        if operator is None:
            raise ConsoleError(
                403, "this login link is unknown, used or expired: ask for "
                "a new one with suto-admin console-link"
            )
        self._start(request, operator)
        return Redirect(b"/")

    def sign_out(self, request, session):
        cookie = request.getCookie(COOKIE)
        if cookie is not None:
            self.sessions.end(cookie.decode("ascii", "replace"))
        request.responseHeaders.addRawHeader(b"set-cookie", cleared_cookie(request.isSecure()))
        self.log.info("console: {operator} signed out", operator=session.operator)
        return pages.message("Signed out", "You are signed out.")

    # The pages.

    def overview(self, request, session):
        since = self._clock.seconds() - 3600
        return after_flush(
            self._audit,
            lambda: pages.overview(
                self._status(),
                self._counts(),
                self.rate.per_minute(),
                [alert_json(a) for a in self._audit.alerts(since)],
            ),
        )

    def endpoints(self, request, session):
        listing = endpoints_listing(
            self._clients(),
            search=form_value(request, "q", 100),
            sort=form_value(request, "sort", 20) or "user",
            order=form_value(request, "order", 4) or "asc",
        )
        page = listing.page(_page_number(request), PAGE_SIZE)
        return pages.endpoints(
            page.rows, listing.total, page.number, page.count, listing.query
        )

    def profile(self, request, session):
        user = _user(request)
        client = self._client(user)
        history = self._history(user)
        if client is None and history is None:
            raise ConsoleError(404, f"nothing is known of {user}")
        history = history or {"moves": [], "alerts": []}

        def read():
            return pages.profile(
                user,
                client,
                history,
                [
                    event_json(e)
                    for e in self._audit.matching(username=user, newest=PROFILE_RECORDS)
                ],
                self.rotation_history.hourly(user, self._clock.seconds()),
            )

        return after_flush(self._audit, read)

    def _needs(self, part, what: str):
        if part is None:
            raise ConsoleError(404, f"this server {what}")
        return part

    def windows(self, request, session, opened=None):
        desk = self._needs(self._desk, "does not enroll (it has no master key)")
        return pages.windows(session, desk.list(), opened)

    def open_window(self, request, session):
        desk = self._needs(self._desk, "does not enroll (it has no master key)")
        timeout = form_value(request, "timeout", 9)
        if timeout is not None and not timeout.isdigit():
            raise ConsoleError(400, "'timeout' must be a whole number of seconds")
        fields = {
            "user": form_value(request, "user", 64),
            "location": form_value(request, "location", 256),
            "replace": form_value(request, "replace", 3) == "yes",
            "wide": form_value(request, "wide", 3) == "yes",
        }
        if timeout is not None:
            fields["timeout"] = int(timeout)
        d = open_window(desk, fields, session.operator)
        return d.addCallback(lambda opened: self.windows(request, session, opened))

    def cancel_window(self, request, session):
        desk = self._needs(self._desk, "does not enroll (it has no master key)")
        cancel_window(desk, {"user": _user(request)}, session.operator)
        return Redirect(b"/windows")

    def blacklist(self, request, session, notice=None):
        reconnection = self._needs(self._reconnection, "keeps no blacklist")
        return pages.blacklist(reconnection.blacklist_report(), notice)

    def confirm_unblock(self, request, session):
        self._needs(self._reconnection, "keeps no blacklist")
        return pages.confirm_unblock(session, _user(request))

    def unblock(self, request, session):
        reconnection = self._needs(self._reconnection, "keeps no blacklist")
        done = unblock(reconnection, self._clock, {"user": _user(request)}, session.operator)
        return self.blacklist(
            request,
            session,
            f"Lifted the blacklist entry of {done['user']} and removed its "
            f"profile: enroll the device again.",
        )

    def _query(self, request) -> dict:
        """
        @return: the filters of a listing of alerts or audit records, as
            the form gave them.
        """
        query = {
            "type": form_value(request, "type", 40),
            "user": _user(request, required=False),
            "since": form_value(request, "since", 40),
            "until": form_value(request, "until", 40),
        }
        return {name: value for name, value in query.items() if value is not None}

    def alerts(self, request, session):
        query = self._query(request)
        since, until = _time(request, "since"), _time(request, "until")

        def read():
            kept = []
            for alert in reversed(self._audit.alerts(since)):
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
        number = _page_number(request)
        query = self._query(request)
        filters = {
            "username": query.get("user"),
            "event": query.get("type"),
            "since": _time(request, "since"),
            "until": _time(request, "until"),
        }

        def read():
            total = self._audit.count(**filters)
            pages_count = max(1, -(-total // AUDIT_PAGE))
            number_shown = min(number, pages_count)
            records = self._audit.matching(
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

    def verify(self, request, session):
        return verify_chain(self._audit).addCallback(
            lambda verified: self.audit(request, session, verified)
        )

    def _panel(self):
        def read():
            return pages.live_panel(
                self._counts(),
                self.rate.per_minute(),
                self._connected(),
                [event_json(e) for e in self._audit.matching(newest=LIVE_RECORDS)],
            )

        return after_flush(self._audit, read)

    def live(self, request, session):
        return self._panel().addCallback(pages.live)

    def live_panel(self, request, session):
        return self._panel()

    # Answering.

    def handle(self, request, signed_in: list):
        """
        Answer C{request}: see the module's docstring for the order of
        the checks.

        @param signed_in: gets the request's session as soon as it is
            known, so that an error page after it still shows the
            navigation.
        @return: the session (or L{None}) and the page's answer.
        """
        protect(request)
        if request.too_large:
            raise ConsoleError(413, "the request is too large")
        path, method = request.path, request.method
        if path.startswith(b"/static/") and method == b"GET":
            return self._static_file(request, path[len(b"/static/"):])
        if path == b"/signin" and method == b"GET":
            return None, self.sign_in(request)
        session = self.session_of(request)
        if session is None:
            raise ConsoleError(401, SIGN_IN_HELP)
        signed_in.append(session)
        page = self._pages.get((method, path))
        if page is None:
            if any(known == path for _, known in self._pages):
                raise ConsoleError(405, "this page does not take that method")
            raise ConsoleError(404, "there is no such page")
        if method == b"POST":
            check_csrf(request, session)
        return session, page(request, session)

    def _static_file(self, request, name: bytes):
        if name not in STATIC:
            raise ConsoleError(404, "there is no such file")
        request.setHeader(b"content-type", STATIC[name])
        return None, self._static[name]

    def error_page(self, request, code: int, text: str) -> Page:
        request.setResponseCode(code)
        return pages.message("Cannot do that" if code != 401 else "Sign in", text)


#: The errors of the shared operations, as console pages: status code.
_OPERATION_ERRORS = (
    (BadRequest, 400),
    (LocationError, 400),
    (NotFound, 404),
    (ProfileExists, 409),
)


class _ConsoleResource(resource.Resource):
    """
    The one resource of the console's site.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def render(self, request):
        finished = []
        request.notifyFinish().addBoth(finished.append)
        signed_in = []

        def handled():
            return self._console.handle(request, signed_in)[1]

        def write(answer):
            if isinstance(answer, Redirect):
                request.setResponseCode(303)
                request.setHeader(b"location", answer.location)
                return b""
            if isinstance(answer, bytes):
                return answer
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            if isinstance(answer, Page):
                return render_page(answer, signed_in[0] if signed_in else None)
            return render_fragment(answer)

        def failed(failure):
            for kind, code in _OPERATION_ERRORS:
                if failure.check(kind):
                    return write(self._console.error_page(request, code, str(failure.value)))
            if failure.check(ConsoleError):
                error = failure.value
                return write(self._console.error_page(request, error.code, error.message))
            self.log.failure("console request failed", failure)
            return write(self._console.error_page(request, 500, "internal error"))

        def send(body):
            if not finished:
                request.write(body)
                request.finish()

        d = maybeDeferred(handled).addCallback(write).addErrback(failed)
        d.addCallback(send)
        d.addErrback(lambda failure: self.log.failure("console answer failed", failure))
        return server.NOT_DONE_YET
