# -*- test-case-name: tests.console.test_site -*-
"""
The console driven over HTTP in memory: its site's protocol on a
StringTransport with loopback (or other) addresses, so every request
goes through the real HTTP parser, the bounded request and the guard.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure


class Answer:
    """
    An HTTP answer: its status code, headers (lower-case names, each a
    list) and body.
    """

    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.code = int(lines[0].split()[1])
        self.headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        if self.headers.get(b"transfer-encoding") == [b"chunked"]:
            body = _dechunk(body)
        self.body = body
        self.text = body.decode("utf-8")

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name)
        return None if not values else values[-1]

    def csrf(self) -> str:
        """
        @return: the CSRF token of the page's forms.
        """
        return re.search(r'name="csrf" value="([^"]+)"', self.text).group(1)


def _dechunk(data: bytes) -> bytes:
    body = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        body += rest[:length]
        data = rest[length + 2 :]
    return body


class Exchange:
    """
    A request sent by a L{Browser}, its connection still open.
    """

    def __init__(self, browser, protocol, transport) -> None:
        self._browser = browser
        self._protocol = protocol
        self.transport = transport

    def answered(self) -> bool:
        """
        @return: whether anything of the answer was written yet.
        """
        return bool(self.transport.value())

    def answer(self) -> Answer:
        """
        Close the connection and read the answer, keeping its cookie.
        """
        answer = Answer(self.transport.value())
        cookie = answer.header(b"set-cookie")
        if cookie is not None:
            self._browser.cookie = cookie.split(b";")[0]
        self._protocol.connectionLost(Failure(ConnectionDone()))
        return answer


class Browser:
    """
    Requests to a console site, keeping its session cookie like a
    browser.

    @param peer: the client's address; the host is 127.0.0.1.
    """

    def __init__(self, site, peer: str = "127.0.0.1", host: str = "127.0.0.1") -> None:
        self._site = site
        self._peer = peer
        self._host = host
        self.cookie: bytes | None = None

    def request(self, method: str, path: str, fields=None, raw_body=None) -> Answer:
        return self.start(method, path, fields, raw_body).answer()

    def start(self, method: str, path: str, fields=None, raw_body=None) -> Exchange:
        """
        Send a request and leave its connection open: its answer may
        come later, once what the page waits for has fired.
        """
        protocol = self._site.buildProtocol(IPv4Address("TCP", self._peer, 40000))
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", self._host, 8080),
            peerAddress=IPv4Address("TCP", self._peer, 40000),
        )
        protocol.makeConnection(transport)
        body = raw_body
        if body is None:
            body = urlencode(fields or {}).encode()
        headers = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        if self.cookie is not None:
            headers.append("Cookie: " + self.cookie.decode())
        if method == "POST":
            headers += [
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}",
            ]
        protocol.dataReceived(
            ("\r\n".join(headers) + "\r\n\r\n").encode()
            + (body if method == "POST" else b"")
        )
        return Exchange(self, protocol, transport)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, fields: dict) -> Answer:
        return self.request("POST", path, fields)
