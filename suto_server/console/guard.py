# -*- test-case-name: tests.console.test_site -*-
"""
What every console request and answer must satisfy, whatever the page.

Every answer carries a strict Content Security Policy (only the console's
own script and style, no inline code, no framing, forms only to itself),
C{nosniff}, no referrer (a login link must not leak through one) and
C{no-store} (no page is kept in a cache).  A request body is read up to
L{MAX_FORM} bytes and no further: past it the request is answered 413
and its body dropped as it arrives, so a large upload costs no memory.
Every POST must carry its session's CSRF token, and every field is read
through one of the functions here, which bound and check it.
"""

from __future__ import annotations

import datetime
import io

from twisted.web import server

from suto_server.core import wire
from suto_server.store.records import MAX_TIME

#: The Content Security Policy of every console answer.
POLICY = (
    b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

#: Headers set on every answer.
HEADERS = (
    (b"content-security-policy", POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
)

#: Largest request body the console reads: its forms are a few fields.
MAX_FORM = 8 * 1024

#: The form field that carries the session's CSRF token.
CSRF_FIELD = "csrf"


class ConsoleError(Exception):
    """
    A request the console answers with a 4xx page: C{code} and a message
    for the operator.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BoundedRequest(server.Request):
    """
    A request whose body is kept only up to L{MAX_FORM} bytes.

    @ivar too_large: the body went past L{MAX_FORM} (or said it would).
    """

    too_large = False
    _received = 0

    def gotLength(self, length):
        if length is not None and length > MAX_FORM:
            self.too_large = True
        self.content = io.BytesIO()
        self._received = 0

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > MAX_FORM:
            self.too_large = True
        if not self.too_large:
            self.content.write(data)

    def requestReceived(self, command, path, version):
        if self.too_large:
            # Twisted would parse what was kept as a form; there is none.
            self.content = io.BytesIO()
            self.requestHeaders.removeHeader(b"content-type")
        super().requestReceived(command, path, version)


def protect(request) -> None:
    """
    Set the headers every console answer carries.
    """
    for name, value in HEADERS:
        request.setHeader(name, value)


def form_value(request, name: str, most: int = 512) -> str | None:
    """
    @return: the one value of the form or query field C{name}, as text,
        or L{None} when it is absent or empty.
    @raise ConsoleError: it is repeated, not UTF-8, has control
        characters or is longer than C{most} characters.  Refused, never
        made printable (L{suto_server.core.shown}), as the admin API's
        L{suto_server.admin.httpjson.printable_field} refuses; apart from
        it because a console field may be empty and is refused with a
        page, not JSON.
    """
    values = request.args.get(name.encode("ascii"), [])
    if not values:
        return None
    if len(values) > 1:
        raise ConsoleError(400, f"'{name}' was given more than once")
    try:
        value = values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ConsoleError(400, f"'{name}' is not UTF-8 text") from None
    if len(value) > most or not value.isprintable():
        raise ConsoleError(400, f"'{name}' must be at most {most} printable characters")
    return value or None


def check_csrf(request, session) -> None:
    """
    @raise ConsoleError: C{request}, a POST, does not carry C{session}'s
        CSRF token: a page of another site may have sent it.
    """
    if not session.accepts(form_value(request, CSRF_FIELD, 128)):
        raise ConsoleError(
            403,
            "this form has expired or did not come from the console: "
            "reload the page and try again",
        )


def user_field(request, required: bool = True) -> str | None:
    """
    @return: the request's C{user} field, a valid account name; L{None}
        when it is absent and not C{required}.
    @raise ConsoleError: it is not a valid account name.
    """
    user = form_value(request, "user", 64)
    if user is None and not required:
        return None
    if not wire.is_valid_user(user):
        raise ConsoleError(400, "'user' must be a valid account name")
    return user


def time_field(request, name: str) -> float | None:
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
        raise ConsoleError(
            400, f"'{name}' must be a UTC time as 2026-01-31T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    seconds = moment.timestamp()
    if not 0 <= seconds <= MAX_TIME:
        # The audit log holds no time before 1970, and refuses to be
        # asked about one.
        raise ConsoleError(400, f"'{name}' must be a UTC time from 1970 on")
    return seconds


def number_field(request, name: str, problem: str) -> int | None:
    """
    @return: the form field C{name}, a whole number of at most nine ASCII
        digits; L{None} when absent.
    @raise ConsoleError: with C{problem}, it is anything else (only ASCII
        digits: C{str.isdigit} also takes C{"\u00b2"}, which C{int}
        refuses).
    """
    text = form_value(request, name, 9)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise ConsoleError(400, problem)
    return int(text)


def page_field(request) -> int:
    """
    @return: the request's C{page} field, a page number from 1 (1 when
        absent).
    @raise ConsoleError: it is not one.
    """
    problem = "'page' must be a page number"
    number = number_field(request, "page", problem)
    if number is None:
        return 1
    if number < 1:
        raise ConsoleError(400, problem)
    return number
