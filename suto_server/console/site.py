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
answered with its 4xx page, a store that cannot answer with a 503 page
saying so (and one warning), anything else with a 500 page and a logged
failure, never a traceback.

The live view polls with htmx (a GET of its panel every two seconds)
rather than holding a server-sent event stream open: each poll is an
ordinary request, checked like any other, bounded and cheap, and there is
no long-lived connection per open tab to count and limit.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.web import resource, server

from suto_server.admin.httpbounds import REQUEST_DEADLINE, DeadlineSite
from suto_server.admin.httpjson import refused
from suto_server.audit.refusal_records import RefusalAudit
from suto_server.console import pages
from suto_server.console.actions import Actions
from suto_server.console.guard import (
    BoundedRequest,
    ConsoleError,
    check_csrf,
    form_value,
    protect,
)
from suto_server.console.reports import Reports
from suto_server.console.rotations import RotationHistory, RotationRate
from suto_server.console.sessions import (
    COOKIE,
    Sessions,
    cleared_cookie,
    session_cookie,
)
from suto_server.console.signin import LoginLinks, on_loopback
from suto_server.console.views import Page, Redirect, render_fragment, render_page
from suto_server.store.errors import StoreError

#: The console's static files: name, content type.
STATIC = {
    b"htmx.min.js": b"text/javascript; charset=utf-8",
    b"console.css": b"text/css; charset=utf-8",
}

#: Seconds a connection may stay silent before it is closed: a browser
#: sends a request in far less, and the live view polls every two seconds.
IDLE_TIMEOUT = 60

#: Connections one source may hold on the console at once.  More than the
#: verification API's: every operator reaching a loopback console through
#: an SSH tunnel comes from the same 127.0.0.1, each browser with a few
#: kept-alive connections.
PER_SOURCE = 64

#: How an operator signs in when not signed in.
SIGN_IN_HELP = (
    "You are not signed in. On the server's host, run 'suto-admin "
    "console-link' and open the link it prints (valid for two minutes, "
    "once)."
)

#: Added to L{SIGN_IN_HELP} where client certificates sign in.
CERTIFICATE_HELP = (
    " Or connect with a client certificate that holds the admin role."
)


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
        self._audit = audit
        self._refusals = RefusalAudit(audit, clock, "console_refusals_suppressed")
        self._certificates = certificates
        self.rotation_history = RotationHistory()
        reports = Reports(
            clock,
            {
                "status": status,
                "counts": counts,
                "clients": clients,
                "client": client,
                "connected": connected,
                "history": history,
                "audit": audit,
            },
            RotationRate(clock, rotations),
            self.rotation_history,
        )
        actions = Actions(clock, desk, reconnection, reports, audit)
        self.links = LoginLinks(clock)
        self.sessions = Sessions(clock)
        folder = FilePath(__file__).sibling("static")
        self._static = {
            name: folder.child(name.decode()).getContent() for name in STATIC
        }
        self._pages = {
            (b"GET", b"/"): reports.overview,
            (b"GET", b"/endpoints"): reports.endpoints,
            (b"GET", b"/profile"): reports.profile,
            (b"GET", b"/alerts"): reports.alerts,
            (b"GET", b"/audit"): reports.audit,
            (b"GET", b"/live"): reports.live,
            (b"GET", b"/live/panel"): reports.live_panel,
            (b"GET", b"/windows"): actions.windows,
            (b"POST", b"/windows/open"): actions.open_window,
            (b"POST", b"/windows/cancel"): actions.cancel_window,
            (b"GET", b"/blacklist"): actions.blacklist,
            (b"GET", b"/blacklist/unblock"): actions.confirm_unblock,
            (b"POST", b"/blacklist/unblock"): actions.unblock,
            (b"POST", b"/audit/verify"): actions.verify,
            (b"POST", b"/signout"): self.sign_out,
        }

    def site(self, deadline: float = REQUEST_DEADLINE) -> server.Site:
        """
        The console's site.  Its idle timeout and its request deadline
        (L{suto_server.admin.httpbounds}) run on the console's clock:
        Twisted's default (twelve hours, on the global reactor, reset by
        every byte) would let slow clients hold connections all day.

        @param deadline: seconds a whole request may take to arrive.
        """
        site = DeadlineSite(
            _ConsoleResource(self), self._clock, IDLE_TIMEOUT, deadline
        )
        site.requestFactory = BoundedRequest
        return site

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
        # A new session replaces the one the browser held, if any: an id
        # that was ever in the browser names nothing once it signs in.
        self._end(request)
        session_id, session = self.sessions.start(operator)
        request.responseHeaders.addRawHeader(
            b"set-cookie", session_cookie(session_id, request.isSecure())
        )
        self._record(request, "console_signed_in", operator)
        return session

    def _record(self, request, event: str, operator: str) -> None:
        """
        Audit an operator's signing in or out, with the browser's address:
        who used the console, and when, belongs in the audit log.
        """
        address = getattr(request.getClientAddress(), "host", None)
        self._audit.record(
            self._clock.seconds(), event, None, None, f"{operator} from {address}"
        )

    def sign_in(self, request):
        """
        C{GET /signin?token=...}: redeem a login link, on loopback only.
        """
        if not on_loopback(request):
            self._refused(request, "not on loopback")
            raise ConsoleError(
                403,
                "login links are only accepted on a loopback listener, "
                "from the server's own host",
            )
        token = form_value(request, "token", 128)
        operator = None if token is None else self.links.redeem(token)
        if operator is None:
            self._refused(request, "unknown, used or expired")
            raise ConsoleError(
                403,
                "this login link is unknown, used or expired: ask for "
                "a new one with suto-admin console-link",
            )
        self._start(request, operator)
        return Redirect(b"/")

    def _end(self, request) -> None:
        """
        End the session the request's cookie names, if any.
        """
        cookie = request.getCookie(COOKIE)
        if cookie is not None:
            self.sessions.end(cookie.decode("ascii", "replace"))

    def _refused(self, request, why: str) -> None:
        """
        Audit a refused login link (never its token), at most so many a
        minute per address (L{RefusalAudit}): anyone reaching the
        listener can send them.
        """
        address = getattr(request.getClientAddress(), "host", None)
        self._refusals.refused(
            "console_sign_in_refused",
            None,
            "",
            address,
            f"a login link {why}, from {address}",
        )

    def sign_out(self, request, session):
        self._end(request)
        request.responseHeaders.addRawHeader(
            b"set-cookie", cleared_cookie(request.isSecure())
        )
        self._record(request, "console_signed_out", session.operator)
        return pages.message("Signed out", "You are signed out.")

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
            return self._static_file(request, path[len(b"/static/") :])
        if path == b"/signin" and method == b"GET":
            return None, self.sign_in(request)
        session = self.session_of(request)
        if session is None:
            offered = CERTIFICATE_HELP if self._certificates is not None else ""
            raise ConsoleError(401, SIGN_IN_HELP + offered)
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


#: What the console's page says when the store cannot answer.
STORE_UNAVAILABLE = (
    "The store is unavailable right now, so this page cannot be shown and "
    "nothing was changed; try again in a moment."
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
            refusal = refused(failure)
            if refusal is not None:
                return write(self._console.error_page(request, *refusal))
            if failure.check(StoreError):
                self.log.warn(
                    "console page {path} failed: the store is unavailable: {error}",
                    path=request.path.decode("ascii", "replace"),
                    error=str(failure.value),
                )
                return write(
                    self._console.error_page(request, 503, STORE_UNAVAILABLE)
                )
            if failure.check(ConsoleError):
                error = failure.value
                return write(
                    self._console.error_page(request, error.code, error.message)
                )
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
