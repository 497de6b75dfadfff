# -*- test-case-name: tests.api.test_verify_resource -*-
"""
C{POST /v1/verify}: the HTTP side of a verification.

The request is C{{"user": "alice", "deadline": 10}} (the deadline in
seconds, optional, clamped to the server's bounds); the answer, once the
verdict is in, is 200 with C{{"user", "verdict", "reason"}}.  A body that
is not that is a 400, one over L{MAX_VERIFY_BODY} bytes a 413, and nothing
about it reaches a device.  A calling host over its limits
(L{suto_server.api.callers}) is answered C{rate_limited} at once.  Every
verification is audited as C{verify_<verdict>} with the caller's subject,
the user, the verdict and its reason (the answer waits until that record,
and every one before it, has landed), and a request it could not read as
C{verify_bad_request} (refusals at most so many a minute per caller,
L{suto_server.audit.refusal_records}); never a secret (there is none to
log: the device proves itself to the server, not to the caller).
"""

from __future__ import annotations

import math

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web import resource

from suto_server.admin.httpjson import (
    BadRequest,
    BodyTooLarge,
    answer_later,
    read_json,
    user_field,
    write_json,
)
from suto_server.api.callers import CallerLimits
from suto_server.api.guard import SUPPRESSED, Caller, caller_of
from suto_server.api.verifier import (
    Answer,
    Verifier,
    VerifyResult,
    clamp_deadline,
)
from suto_server.audit.log import AuditLog
from suto_server.audit.refusal_records import RefusalAudit
from suto_server.cred.roles import RolePolicy

#: Largest request body read: a user name and a deadline need far less.
MAX_VERIFY_BODY = 1024


def deadline_field(body: dict) -> float | None:
    """
    @return: the body's C{deadline}, L{None} when it has none.
    @raise BadRequest: it is not a finite positive number.
    """
    value = body.get("deadline")
    if value is None:
        return None
    problem = BadRequest("'deadline' must be a positive number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise problem
    try:
        # JSON integers are unbounded; one past a float's range is no
        # deadline either.
        seconds = float(value)
    except OverflowError:
        raise problem from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise problem
    return seconds


class VerifyResource(resource.Resource):
    """
    @param bounds: the least and most seconds a deadline is clamped to.
    """

    isLeaf = True
    log = Logger()

    def __init__(
        self,
        verifier: Verifier,
        limits: CallerLimits,
        policy: RolePolicy,
        audit: AuditLog,
        clock: IReactorTime,
        bounds: tuple[float, float],
    ) -> None:
        super().__init__()
        self._verifier = verifier
        self._limits = limits
        self._policy = policy
        self._audit = audit
        self._clock = clock
        self._bounds = bounds
        self._refusals = RefusalAudit(audit, clock, SUPPRESSED)

    def render_POST(self, request):
        caller = caller_of(request, self._policy)
        try:
            body = read_json(request, MAX_VERIFY_BODY)
            user = user_field(body)
            deadline = clamp_deadline(deadline_field(body), *self._bounds)
        except BadRequest as error:
            status = 413 if isinstance(error, BodyTooLarge) else 400
            self._refusals.refused(
                "verify_bad_request",
                None,
                caller.subject,
                caller.address,
                f"{error} (asked from {caller.address})",
            )
            return write_json(request, status, {"error": str(error)})
        refusal = self._limits.admit(caller.subject, self._clock.seconds())
        if refusal is not None:
            result = VerifyResult(user, Answer.RATE_LIMITED, refusal)
            self._refusals.refused(
                f"verify_{result.answer.value}",
                user,
                caller.subject,
                caller.address,
                _reason(caller, result),
            )
            return write_json(request, 200, _json(result))
        d = self._verifier.verify(user, deadline)

        def answered(result: VerifyResult) -> Deferred:
            # As the admin API's verdicts: told only once its record (and
            # every record before it) has landed, so a crash never leaves a
            # login granted and unrecorded.
            self._limits.done(caller.subject)
            self._record(caller, result)
            return self._audit.flushed().addCallback(lambda _: _json(result))

        d.addCallback(answered)
        return answer_later(request, d, self.log)

    def _record(self, caller: Caller, result: VerifyResult) -> None:
        self._audit.record(
            self._clock.seconds(),
            f"verify_{result.answer.value}",
            result.user,
            caller.subject or None,
            _reason(caller, result),
        )


def _reason(caller: Caller, result: VerifyResult) -> str:
    """
    @return: the audit record's reason for C{result}: its own, where it
        was asked from and where the device was asked.
    """
    device = "" if result.device is None else f"; device at {result.device}"
    return f"{result.reason} (asked from {caller.address}{device})"


def _json(result: VerifyResult) -> dict:
    return {"user": result.user, "verdict": result.answer.value, "reason": result.reason}
