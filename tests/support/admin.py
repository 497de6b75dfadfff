"""
Fakes and helpers for the admin API's tests: an authenticator that
records its calls, a hash pool that computes at once, and the rendering
of one request on an admin site with twisted.web's L{DummyRequest}.
"""

import io
import json

from twisted.internet import defer
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from suto_server.admin.api import admin_site
from suto_server.core import libxcrypt


class FakeAuthenticator:
    """
    Records what C{POST /v1/auth} asks; C{error} is raised by
    C{authenticate}, C{pending} is what it returns.
    """

    def __init__(self):
        self.calls = []
        self.wide = None
        self.error = None
        self.pending = defer.Deferred()

    def authenticate(self, user, targets, timeout=None, wide=False):
        if self.error is not None:
            raise self.error
        self.calls.append((user, targets, timeout))
        self.wide = wide
        return self.pending


class ReportingPool:
    """
    Computes hashes at once and, as the real hash pool does, reports a
    refused input through the L{Deferred} rather than by raising.
    """

    def crypt(self, phrase, setting):
        return defer.maybeDeferred(libxcrypt.crypt, phrase, setting)


def render(site, method, path, body=None, raw=None, args=None):
    """
    Render C{path} of C{site} with a JSON C{body} (or C{raw} bytes) and
    the query C{args}.

    @return: the L{DummyRequest}, finished unless its answer waits.
    """
    segments = path.strip("/").split("/")
    request = DummyRequest(segments)
    request.method = method
    request.args = args or {}
    if raw is None:
        raw = json.dumps(body).encode() if body is not None else b""
    request.content = io.BytesIO(raw)
    resource = site.resource
    for segment in segments:
        resource = resource.getChildWithDefault(segment.encode(), request)
    result = resource.render(request)
    if result is not server.NOT_DONE_YET:
        request.write(result)
        request.finish()
    return request


def answer(request):
    """
    @return: the JSON answer written to C{request}.
    """
    return json.loads(b"".join(request.written))


class AdminRequestsMixin:
    """
    Builds the admin site around a desk and renders requests on it.
    """

    def make_site(self, desk):
        return admin_site(
            FakeAuthenticator(),
            2020,
            lambda: {"uptime": 1.0, "listeners": [], "pending": []},
            lambda: [],
            desk,
        )

    def request(self, method, path, body=None, raw=None, site=None):
        return render(site or self.site, method, path, body, raw)

    def body(self, request):
        return answer(request)

    def enroll(self, **fields):
        body = {"user": "alice", "location": "127.0.0.5"}
        body.update(fields)
        return self.request("POST", "/v1/enroll", body)


def run_admin(*argv, stdin="", environ=None):
    """
    Run C{suto-admin argv} with injected streams and environment (empty
    unless given), in this thread.

    @return: the exit status, standard output and standard error.
    """
    from suto_server.admin import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(
        list(argv),
        stdin=io.StringIO(stdin),
        stdout=stdout,
        stderr=stderr,
        environ={} if environ is None else environ,
    )
    return code, stdout.getvalue(), stderr.getvalue()
