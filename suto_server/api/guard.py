# -*- test-case-name: tests.api.test_guard -*-
"""
Who is calling, and whether they may: the check every request of the
verification API's listener passes before any resource sees it.

The caller is the client certificate of the request's TLS connection
(the listener demanded one from the named CA), its roles what the
L{RolePolicy} grants it, checked on every request rather than once per
connection, so a policy is the same for a request on a kept-alive
connection as for a new one.  C{/v1/verify} needs the C{verify} role;
every other path is the admin API's and needs C{admin}.  Every request is
audited with the caller's subject: a refusal as C{api_refused} (at
most so many a minute per caller, L{suto_server.audit.refusal_records}),
an admin request as C{api_admin_request} (the verifications audit their verdicts
themselves, L{suto_server.api.verify_resource}), and the admin action it
asks for names the caller's certificate as its operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime
from twisted.web import resource

from suto_server.admin.httpjson import write_json
from suto_server.admin.operations import name_operator
from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import RefusalAudit
from suto_server.core.shown import printable
from suto_server.cred.roles import (
    ADMIN,
    VERIFY,
    RolePolicy,
    certificate_of,
    shown_subject,
)
from suto_server.store.records import MAX_NAME

#: The path of the one resource the C{verify} role opens.
VERIFY_PATH = b"/v1/verify"

#: The record standing for a caller's refusals past their allowance
#: (L{suto_server.audit.refusal_records}).
SUPPRESSED = "api_refusals_suppressed"

#: Longest request path quoted in an audit record.
_MAX_PATH = 200


@dataclass(frozen=True)
class Caller:
    """
    The peer of one request.

    @ivar subject: its certificate's subject, fit for an audit record
        (printable, at most L{MAX_NAME} characters); C{""} without one.
    @ivar address: its IP address, or L{None}.
    @ivar roles: what the policy grants it.
    """

    subject: str
    address: str | None
    roles: frozenset


def caller_of(request, policy: RolePolicy) -> Caller:
    """
    @return: the L{Caller} of C{request}, from its connection's client
        certificate.
    """
    getter = getattr(request.transport, "getPeerCertificate", None)
    certificate = certificate_of(getter() if getter is not None else None)
    address = getattr(request.getClientAddress(), "host", None)
    return Caller(
        subject=shown_subject(certificate, MAX_NAME) if certificate else "",
        address=address,
        roles=policy.roles_of(certificate),
    )


class _Refused(resource.Resource):
    """
    The answer to a caller without the role: 403 and why.
    """

    isLeaf = True

    def __init__(self, role: str) -> None:
        super().__init__()
        self._role = role

    def render(self, request):
        return write_json(
            request,
            403,
            {"error": f"the client certificate does not hold the {self._role} role"},
        )


class ApiRoot(resource.Resource):
    """
    The root of the verification API's site: C{/v1/verify} for callers
    with the C{verify} role, the admin API's resources for callers with
    C{admin}, a 403 for anyone else.

    @param verify: the C{/v1/verify} resource (a leaf).
    @param admin: the admin API's root resource.
    """

    def __init__(
        self,
        policy: RolePolicy,
        verify: resource.Resource,
        admin: resource.Resource,
        audit: AuditLog,
        clock: IReactorTime,
    ) -> None:
        super().__init__()
        self._policy = policy
        self._verify = verify
        self._admin = admin
        self._audit = audit
        self._clock = clock
        self._refusals = RefusalAudit(audit, clock, SUPPRESSED)

    def getChildWithDefault(self, path, request):
        caller = caller_of(request, self._policy)
        wanted = VERIFY if request.path == VERIFY_PATH else ADMIN
        if wanted not in caller.roles:
            self._refusals.refused(
                "api_refused",
                None,
                caller.subject,
                caller.address,
                _quoted(request, caller, f"lacks the {wanted} role"),
            )
            return _Refused(wanted)
        if wanted == VERIFY:
            return self._verify
        self._audit.record(
            self._clock.seconds(),
            "api_admin_request",
            None,
            caller.subject or None,
            _quoted(request, caller, "admin role"),
        )
        name_operator(request, f"{caller.subject} (client certificate)")
        return self._admin.getChildWithDefault(path, request)

    def render(self, request):
        # The bare root: nothing is served there, to anyone.
        return write_json(request, 404, {"error": "no such resource"})


def _quoted(request, caller: Caller, why: str) -> str:
    """
    @return: an audit record's reason for C{request}: its method and path
        (printable, bounded), the caller's address and C{why}.
    """
    method = printable(request.method.decode("ascii", "replace"), 16)
    path = printable(request.path.decode("ascii", "replace"), _MAX_PATH)
    return f"{method} {path} from {caller.address}: {why}"
