"""
C{suto-admin}'s requests to the daemon answered by an admin site in this
thread: a command's output is tested against the admin API's own answers,
with no socket and no reactor running.
"""

from urllib.parse import parse_qs, urlsplit

from tests.support.admin import answer, render


def site_call(site):
    """
    @return: a stand-in for L{suto_server.admin.client.call} that renders
        each request on C{site}.
    """

    def call(socket, method, path, body=None, timeout=30.0):
        url = urlsplit(path)
        args = {
            name.encode(): [value.encode() for value in values]
            for name, values in parse_qs(url.query).items()
        }
        request = render(site, method, url.path, body, args=args)
        return request.responseCode or 200, answer(request)

    return call
