# -*- test-case-name: tests.client.pam.test_verdict -*-
"""
What the server's answer to C{POST /v1/verify} means for a login.

Only one answer lets a user in: HTTP 200 with a JSON object whose
C{verdict} is C{"accepted"} and whose C{user} is the user asked about.
Every other status, body, verdict or user is a denial whose reason names
what came back, so the line in the system log says why without anyone
reading the server's logs.  The server's own C{reason} is shown only
after being cut to printable text of bounded length: it travels into the
host's syslog, and the host must not trust it to be well-formed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from suto_server.core.shown import ELLIPSIS, replaced

#: The largest answer read; the contract's answers are under 300 bytes.
MAX_ANSWER_BYTES = 4096

#: The verdicts the server gives, per the contract.
VERDICTS = frozenset(
    {
        "accepted",
        "rejected",
        "no_device",
        "device_offline",
        "blacklisted",
        "rate_limited",
        "error",
    }
)

_MAX_REASON = 400


@dataclass(frozen=True)
class Decision:
    """
    The outcome of one verification.

    @ivar accepted: whether the user is let in.
    @ivar verdict: the server's verdict, or the kind of failure that
        stood in for one (C{unreachable}, C{tls}, C{deadline}, C{http},
        C{answer}, C{config}, C{interrupted}, C{offline}...).
    @ivar reason: why, in words fit for the system log.
    """

    accepted: bool
    verdict: str
    reason: str


def denied(verdict: str, reason: str) -> Decision:
    """
    A denial of the kind C{verdict}, for C{reason}.
    """
    return Decision(False, verdict, printable(reason))


def printable(text: str) -> str:
    """
    C{text} with control characters replaced and its length capped, for a
    log line that must stay one line.

    Unlike the server's L{suto_server.core.shown.printable}, which fits
    its mark within the width of a record's field, this keeps
    L{_MAX_REASON} characters of the text itself and marks the cut after
    them: a syslog line has no field to fit, and an operator reading why
    a login was denied loses nothing of a reason within the bound.  The
    text is cut before it is replaced, so an answer of any size costs no
    more than the bound.
    """
    cleaned = replaced(text[: _MAX_REASON + 1])
    if len(cleaned) > _MAX_REASON:
        cleaned = cleaned[:_MAX_REASON] + ELLIPSIS
    return cleaned


def judge(user: str, status: int, body: bytes) -> Decision:
    """
    Read the server's answer about C{user}.

    @param status: the HTTP status code.
    @param body: the body, at most L{MAX_ANSWER_BYTES} long.
    """
    document = _json_object(body)
    if status != 200:
        detail = ""
        if document is not None and isinstance(document.get("error"), str):
            detail = f": {document['error']}"
        meaning = {
            400: "the server refused the request as malformed",
            403: "the server refused this host (its certificate lacks the verify role)",
            413: "the server refused the request as too large",
        }.get(status, "the server answered with an unexpected status")
        return denied("http", f"HTTP {status}, {meaning}{detail}")
    if document is None:
        return denied("answer", "the server's answer is not a JSON object")
    verdict = document.get("verdict")
    reason = document.get("reason", "")
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        return denied("answer", "the server's answer carries no known verdict")
    if document.get("user") != user:
        return denied("answer", "the server's answer is about another user")
    if not isinstance(reason, str):
        reason = ""
    if verdict == "accepted":
        return Decision(True, verdict, printable(reason or "accepted by the server"))
    return denied(verdict, f"{verdict}: {reason}" if reason else verdict)


def _json_object(body: bytes) -> dict | None:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None
