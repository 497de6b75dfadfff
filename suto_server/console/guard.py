# -*- test-case-name: tests.console.test_site -*-
"""
What every console request and answer must satisfy, whatever the page.

Every answer carries a strict Content Security Policy (only the console's
own script and style, no inline code, no framing, forms only to itself),
C{nosniff}, no referrer (a login link must not leak through one) and
C{no-store} (no page is kept in a cache).  A request body is read up to
L{MAX_FORM} bytes and no further: past it the request is answered 413
and its body dropped as it arrives, so a large upload costs no memory.
Every POST must carry its session's CSRF token.
"""

from __future__ import annotations

import io

from twisted.web import server

#: The Content Security Policy of every console answer.
POLICY = (
    b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    b"base-uri 'none'"
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
        characters or is longer than C{most} characters.
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
        raise ConsoleError(
            400, f"'{name}' must be at most {most} printable characters"
        )
    return value or None


def check_csrf(request, session) -> None:
    """
    @raise ConsoleError: C{request}, a POST, does not carry C{session}'s
        CSRF token: a page of another site may have sent it.
    """
    if not session.accepts(form_value(request, CSRF_FIELD, 128)):
        raise ConsoleError(
            403, "this form has expired or did not come from the console: "
            "reload the page and try again"
        )
