"""
The admin HTTP API's site, rendered in memory.

L{AdminRequestsMixin} builds the admin site around a window desk, with a
L{FakeAuthenticator} in place of the rendezvous, and renders requests with
twisted.web's L{DummyRequest}: the admin API's own tests and the blacklist
commands drive it without a socket.
"""

import io
import json

from twisted.internet import defer
from twisted.web import server
from twisted.web.test.requesthelper import DummyRequest

from suto_server.admin.api import admin_site


class FakeAuthenticator:
    """
    Records the authentications asked for and answers with C{pending}, or
    raises C{error} if set.
    """

    def __init__(self):
        self.calls = []
        self.error = None
        self.pending = defer.Deferred()

    def authenticate(self, user, targets, timeout=None):
        if self.error is not None:
            raise self.error
        self.calls.append((user, targets, timeout))
        return self.pending


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
        """
        Render C{path} of the site with a JSON C{body} (or C{raw} bytes).
        """
        segments = path.strip("/").split("/")
        request = DummyRequest(segments)
        request.method = method
        if raw is None:
            raw = json.dumps(body).encode() if body is not None else b""
        request.content = io.BytesIO(raw)
        resource = (site or self.site).resource
        for segment in segments:
            resource = resource.getChildWithDefault(segment.encode(), request)
        result = resource.render(request)
        if result is not server.NOT_DONE_YET:
            request.write(result)
            request.finish()
        return request

    def body(self, request):
        return json.loads(b"".join(request.written))

    def enroll(self, **fields):
        body = {"user": "alice", "location": "127.0.0.5"}
        body.update(fields)
        return self.request("POST", "/v1/enroll", body)
