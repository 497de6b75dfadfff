"""
The admin API and C{suto-admin}, driven from tests.

The admin site is rendered in memory with twisted.web's L{DummyRequest},
with a L{FakeAuthenticator} in place of the rendezvous; C{suto-admin} runs
with injected streams, in this thread or, against a live daemon's admin
socket, in a thread of its own so the reactor can answer it.
"""

import io
import json
import os

from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from suto_server.admin.api import admin_site


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


def render(site, method, path, body=None, raw=None, args=None):
    """
    Render C{path} of C{site} with a JSON C{body} (or C{raw} bytes) and
    the query C{args}.

    @return: the L{DummyRequest}, finished unless its answer waits.
    """
    segments = path.strip("/").split("/")
    request = DummyRequest(segments)
    request.method = method
    request.path = path.encode()
    request.args = args or {}
    if raw is None:
        raw = json.dumps(body).encode() if body is not None else b""
    request.content = io.BytesIO(raw)
    # As twisted.web's Request.process does.
    request.site = site
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


def run_admin_in_thread(data, *argv, stdin=""):
    """
    Run C{suto-admin --data data argv} in a thread, for a command that
    waits on a daemon this reactor runs.

    @return: a L{Deferred} firing with the exit status, standard output
        and standard error.
    """
    return threads.deferToThread(run_admin, "--data", data, *argv, stdin=stdin)


class AdminCommandMixin:
    """
    Mixed into a test case whose C{data} is a running daemon's data folder.
    """

    @defer.inlineCallbacks
    def listen_admin(self, site):
        """
        Serve C{site} on the admin socket of C{self.data}, as the daemon
        does, until the test ends.
        """
        path = quoteStringArgument(os.path.join(self.data, "admin.sock"))
        port = yield serverFromString(reactor, f"unix:{path}:mode=600").listen(site)
        self.addCleanup(port.stopListening)

    def run_admin(self, *argv):
        """
        Run C{suto-admin} with C{argv} against C{self.data}, in a thread.

        @return: a L{Deferred} firing with the exit status, standard output
            and standard error.
        """
        return run_admin_in_thread(self.data, *argv)
