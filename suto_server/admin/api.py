# -*- test-case-name: tests.admin.test_api,tests.admin.test_api_enroll,tests.admin.test_console_link -*-
"""
The daemon's admin interface: JSON over HTTP on a UNIX socket in the data
folder (mode 0600, so only the daemon's own user and root reach it).

C{suto-admin} is its client.  Each resource validates its input fully and
answers errors as C{{"error": "..."}} with a 4xx status, so a script can
tell a bad request from a failed authentication.

This module assembles the site and serves the daemon's own resources
(C{/v1/auth}, C{/v1/status}, C{/v1/reload}); the enrollment and blacklist
resources are in L{suto_server.admin.enrollment_resources}, the reports in
L{suto_server.admin.report_resources}, and the request and answer rules
they all follow in L{suto_server.admin.httpjson}.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web import resource, server

from suto_server.admin.enrollment_resources import (
    BlacklistResource,
    CancelResource,
    EnrollResource,
    UnblockResource,
    WindowsResource,
)
from suto_server.admin.httpbounds import (
    REQUEST_DEADLINE,
    ConnectionBounds,
    DeadlineSite,
)
from suto_server.admin.httpjson import (
    BadRequest,
    Refusal,
    answer,
    answer_later,
    flag,
    printable_field,
    read_json,
    user_field,
    write_json,
)
from suto_server.admin.operations import operator_of
from suto_server.admin.report_resources import (
    AlertsResource,
    AuditResource,
    ClientsResource,
    HistoryResource,
)
from suto_server.net.discovery import parse_targets
from suto_server.rules.authenticator import (
    Authenticator,
    TargetTooWide,
    UnknownAccount,
)
from suto_server.rules.rendezvous import RequestConflict
from suto_server.store.errors import StoreError


def _refusal(failure) -> Refusal:
    """
    Why an authentication was not started, as the admin API answers it.

    @raise Exception: C{failure}'s own, when it is no refusal.
    """
    kind = failure.trap(
        TargetTooWide, UnknownAccount, RequestConflict, OSError, StoreError
    )
    if kind is OSError:
        error = failure.value
        return Refusal(503, f"the hello could not be sent: {error.strerror or error}")
    if kind is StoreError:
        return Refusal(503, "the store could not be read; try again")
    return Refusal(_REFUSED[kind], failure.getErrorMessage())


#: The status of each refusal whose message says it all.
_REFUSED = {TargetTooWide: 400, UnknownAccount: 404, RequestConflict: 409}


class AuthResource(resource.Resource):
    """
    C{POST /v1/auth} with C{{"user", "target", "accept"?, "timeout"?,
    "wide"?}}:
    answers when the verdict is in, with C{{"user", "verdict", "source",
    "reason"}}.

    The verdict is recorded in the audit log as it is reached, through a
    group commit on the database thread; the answer waits until that
    record is on disk, so that no verdict is ever told before its record
    would survive a crash.  A record the store refuses is logged as
    critical by the audit log, and the verdict answered once the write
    has failed.  (A verdict another process sharing the store reached is
    recorded there; its announcement does not wait.)
    """

    isLeaf = True
    log = Logger()

    def __init__(
        self, authenticator: Authenticator, hello_port: int, audit=None
    ) -> None:
        """
        @param audit: the L{suto_server.audit.log.AuditLog} verdicts are
            recorded in, whose records the answer waits for; L{None} when
            nothing is recorded.
        """
        super().__init__()
        self._authenticator = authenticator
        self._hello_port = hello_port
        self._audit = audit

    def render_POST(self, request):
        try:
            body = read_json(request)
            user, targets, timeout = self._parse(body)
            wide = flag(body, "wide")
        except BadRequest as error:
            return write_json(request, 400, {"error": str(error)})
        # The account is read from the store, which may answer later: a
        # refusal arrives as the Deferred's failure.
        d = maybeDeferred(
            self._authenticator.authenticate,
            user,
            targets,
            timeout,
            wide=wide,
        )
        shown = ",".join(str(t) for t in targets)
        self.log.info(
            "admin asked to authenticate {user} at {targets}", user=user, targets=shown
        )
        d.addCallback(self._recorded).addCallback(
            lambda outcome: {
                "user": outcome.user,
                "verdict": outcome.verdict.value,
                "source": outcome.source,
                "reason": outcome.reason,
            }
        )
        d.addErrback(self._not_started, user, shown)
        return answer_later(request, d, self.log)

    def _not_started(self, failure, user: str, targets: str):
        """
        Answer an authentication the authenticator refused to start, and
        say so in the log: no hello writes a line of its own, so the
        request's line alone would read as if one had gone out.

        @raise Refusal: how the refusal is answered (L{_refusal}).
        """
        refusal = _refusal(failure)
        if failure.check(OSError):
            # Sending failed: at the first target, or at a later one.
            self.log.warn(
                "the hello for {user} at {targets} could not be sent: {error}",
                user=user,
                targets=targets,
                error=str(failure.value),
            )
        else:
            self.log.info(
                "no hello went out for {user} at {targets}: {reason}",
                user=user,
                targets=targets,
                reason=refusal.message,
            )
        raise refusal

    def _recorded(self, outcome):
        """
        @return: C{outcome}, once every audit record made so far (its own
            among them) has landed: at once when none waits.
        """
        if self._audit is None:
            return outcome
        return self._audit.flushed().addCallback(lambda _: outcome)

    def _parse(self, body: dict):
        user = user_field(body)
        target = body.get("target")
        if not isinstance(target, str) or not target:
            raise BadRequest("'target' must name an address or network")
        accept = body.get("accept")
        if accept is not None and not isinstance(accept, str):
            raise BadRequest("'accept' must be a string")
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= 600
        ):
            raise BadRequest("'timeout' must be seconds between 0 and 600")
        try:
            targets = parse_targets(target, self._hello_port, accept)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        return user, targets, timeout


class StatusResource(resource.Resource):
    """
    C{GET /v1/status}: the daemon is alive and what it is waiting for.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, status) -> None:
        super().__init__()
        self._status = status

    def render_GET(self, request):
        return answer(request, self._status, self.log)


class ReloadResource(resource.Resource):
    """
    C{POST /v1/reload}: re-read the TLS certificates without a restart.
    """

    isLeaf = True

    def __init__(self, reload) -> None:
        super().__init__()
        self._reload = reload

    def render_POST(self, request):
        return write_json(request, 200, {"certificates": self._reload()})


class ConsoleLinkResource(resource.Resource):
    """
    C{POST /v1/console-link} with C{{"operator"}} (who asks, as the
    login name C{suto-admin} runs under): a one-time login link to the
    web console, for that operator; over the verification API, for the
    caller's certificate instead.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, link) -> None:
        super().__init__()
        self._link = link

    def render_POST(self, request):
        try:
            operator = printable_field(read_json(request), "operator", 1, 64)
            # Over a listener that named the caller (a certificate), the
            # name the body claims counts for nothing.
            operator = operator_of(request, unnamed=operator)
            answer = self._link(operator)
        except BadRequest as error:
            return write_json(request, 400, {"error": str(error)})
        except ValueError as error:
            return write_json(request, 409, {"error": str(error)})
        self.log.info("a console login link was given to {operator}", operator=operator)
        return write_json(request, 200, answer)


#: Seconds a connection to the admin socket may stay silent.
IDLE_TIMEOUT = 60

#: Connections the admin socket holds at once.  Its clients are the
#: operators who may open it (and scripts of theirs): a few at a time; the
#: bound keeps a runaway script from taking every file descriptor.
ADMIN_CONNECTIONS = 64


class _AdminSite(DeadlineSite):
    """
    A site without the per-request access log line: every admin action is
    already logged (and audited) with what it did, which says more.  Its
    connections have the bounds of L{suto_server.admin.httpbounds}, as the
    listeners facing the network do: whoever may open the socket may still
    run a client that stalls.  Every resource reads a JSON body, so no
    POST is parsed as a form (see L{DeadlineSite}).
    """

    def log(self, request) -> None:
        "No access log."


def admin_listener(site: server.Site, clock) -> ConnectionBounds:
    """
    @param site: the admin API's site (L{admin_site}).
    @param clock: the L{IReactorTime} connections are counted on.
    @return: the factory the admin socket listens with: C{site}, holding
        at most L{ADMIN_CONNECTIONS} connections at once (a UNIX socket's
        clients have no address, so they are counted in all only).
    """
    return ConnectionBounds(
        site, clock, per_source=ADMIN_CONNECTIONS, total=ADMIN_CONNECTIONS
    )


def admin_site(
    authenticator: Authenticator,
    hello_port: int,
    status,
    reload,
    desk=None,
    audit=None,
    reconnection=None,
    clock=None,
    clients=None,
    history=None,
    console_link=None,
    deadline: float = REQUEST_DEADLINE,
) -> server.Site:
    """
    The admin API's site.

    @param status: returns the JSON-ready status dictionary.
    @param reload: reloads the TLS certificates and returns what it did.
    @param desk: the enrollment window operations (L{WindowDesk}), or
        L{None} when this server does not enroll.
    @param audit: the L{suto_server.audit.log.AuditLog}, or L{None} to serve
        no alerts nor audit records.
    @param reconnection: the blacklist's rules
        (L{suto_server.rules.reconnection.Reconnection}), or L{None} when this
        server keeps no blacklist.
    @param clock: the L{IReactorTime} admin actions are timed by, and
        the connections' idle timeout and request deadline; the global
        reactor's when not given.
    @param clients: returns the rows of C{GET /v1/clients}, or L{None} to
        serve no registry.
    @param history: returns a user's moves and alerts, or L{None} when
        nothing is known of the user; L{None} to serve no histories.
    @param console_link: returns a one-time login link to the web console
        for an operator, or L{None} when the console is off.
    @param deadline: seconds a whole request may take to arrive.
    """
    root = resource.Resource()
    v1 = resource.Resource()
    root.putChild(b"v1", v1)
    v1.putChild(b"auth", AuthResource(authenticator, hello_port, audit))
    v1.putChild(b"status", StatusResource(status))
    v1.putChild(b"reload", ReloadResource(reload))
    if desk is not None:
        v1.putChild(b"enroll", EnrollResource(desk))
        v1.putChild(b"windows", WindowsResource(desk))
        v1.putChild(b"cancel", CancelResource(desk))
    if audit is not None:
        v1.putChild(b"alerts", AlertsResource(audit))
        v1.putChild(b"audit", AuditResource(audit))
    if reconnection is not None:
        v1.putChild(b"blacklist", BlacklistResource(reconnection))
        v1.putChild(b"unblock", UnblockResource(reconnection, clock))
    if clients is not None:
        v1.putChild(b"clients", ClientsResource(clients))
    if history is not None:
        v1.putChild(b"history", HistoryResource(history))
    if console_link is not None:
        v1.putChild(b"console-link", ConsoleLinkResource(console_link))
    return _AdminSite(root, clock, IDLE_TIMEOUT, deadline, forms=False)
