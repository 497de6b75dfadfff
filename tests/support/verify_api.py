"""
A small HTTPS server speaking the contract of the SUTO server's
verification API (C{POST /v1/verify} over mutual TLS), for the unit tests
of C{suto-pam}; and the PKI and configuration file a host would have.

The real API is the server's; this fake exists so that the helper's every
failure path can be driven: any status, any body, an answer that never
comes.  The end-to-end test (C{tests.end_to_end.test_pam}) uses the real
server.
"""

from __future__ import annotations

import json
import os

from OpenSSL.crypto import X509, PKey
from twisted.internet import reactor
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.ssl import CertificateOptions
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from suto_client.tls import certificate_pin
from tests.support.pki import LOOPBACK, Authority, Files

#: What the fake answers a user it has no answer for.
DEFAULT_ANSWER = (200, "rejected")


class VerifyResource(Resource):
    """
    C{/v1/verify}: answers each user as L{answers} says and records every
    request body.

    @ivar answers: user name to C{(status, verdict)}, C{(status, raw
        bytes)}, or C{"hang"} to never answer.
    @ivar requests: the parsed bodies received, in order.
    @ivar hanging: the requests left unanswered.
    @ivar forbidden: when set, every request is refused with HTTP 403 and
        this error, as the server refuses a host lacking the verify role.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, object] = {}
        self.requests: list[object] = []
        self.hanging: list = []
        self.forbidden: str | None = None

    def render_POST(self, request) -> bytes:
        try:
            document = json.loads(request.content.read())
        except ValueError:
            document = None
        self.requests.append(document)
        if self.forbidden is not None:
            request.setResponseCode(403)
            return json.dumps({"error": self.forbidden}).encode()
        if not isinstance(document, dict) or not isinstance(document.get("user"), str):
            request.setResponseCode(400)
            return b'{"error": "bad request"}'
        user = document["user"]
        answer = self.answers.get(user, DEFAULT_ANSWER)
        if answer == "hang":
            self.hanging.append(request)
            return NOT_DONE_YET
        status, verdict = answer
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        if isinstance(verdict, bytes):
            return verdict
        if status != 200:
            return json.dumps({"error": verdict}).encode()
        return json.dumps(
            {"user": user, "verdict": verdict, "reason": f"the device said {verdict}"}
        ).encode()


class FakeVerifyAPI:
    """
    The fake API on loopback, behind a certificate from its own CA,
    demanding client certificates from the hosts' CA; and a host's files.

    @ivar folder: where every file is.
    @ivar resource: the L{VerifyResource}, to set answers and read requests.
    @ivar port: the listening port, once L{start} has fired.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files = Files(os.path.join(folder, "pki"))
        self.servers = Authority("Fake Servers CA")
        self.hosts = Authority("Fake Hosts CA")
        self.server_key, self.server_certificate = self.servers.issue(
            "verify-api", addresses=(LOOPBACK,)
        )
        self.bundle = self.files.write("servers-ca.pem", self.servers.certificate)
        self.certificate, self.key = self.host_files(self.hosts, "host")
        self.pin = certificate_pin(X509.from_cryptography(self.server_certificate))
        self.resource = VerifyResource()
        self.port = None

    def host_files(self, authority: Authority, name: str) -> tuple[str, str]:
        """
        A host certificate C{authority} issues, and its key, as files
        only root may change.
        """
        key, certificate = authority.issue(name, client=True)
        paths = (
            self.files.write(f"{name}.crt", certificate),
            self.files.write(f"{name}.key", key),
        )
        for path in paths:
            os.chmod(path, 0o600)
        return paths

    def start(self, testcase):
        """
        Listen on an ephemeral loopback port until C{testcase} ends.
        """
        key = PKey.from_cryptography_key(self.server_key)
        options = CertificateOptions(
            privateKey=key,
            certificate=X509.from_cryptography(self.server_certificate),
            verify=True,
            caCerts=[X509.from_cryptography(self.hosts.certificate)],
            requireCertificate=True,
        )
        endpoint = SSL4ServerEndpoint(reactor, 0, options, interface=LOOPBACK)
        listening = endpoint.listen(Site(self.resource))

        def listened(port):
            self.port = port.getHost().port
            testcase.addCleanup(port.stopListening)
            testcase.addCleanup(self._release)

        return listening.addCallback(listened)

    def _release(self) -> None:
        for request in self.resource.hanging:
            if not request.finished and not request._disconnected:
                request.finish()

    def config_text(self, **settings) -> str:
        """
        A configuration for a host of this API, trusting it by its CA
        bundle; C{settings} replace or add settings (L{None} removes one).
        """
        values = {
            "server": f"{LOOPBACK}:{self.port}",
            "ca": self.bundle,
            "certificate": self.certificate,
            "key": self.key,
            "deadline": 5,
            "users": ["alice"],
        }
        values.update(settings)
        return "".join(
            f"{name} = {json.dumps(value)}\n"
            for name, value in values.items()
            if value is not None and not isinstance(value, dict)
        ) + "".join(
            f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in value.items())
            for name, value in values.items()
            if isinstance(value, dict)
        )

    def config_file(self, name: str = "pam.toml", **settings) -> str:
        """
        Write L{config_text} to a file only root may change.
        """
        path = os.path.join(self.folder, name)
        with open(path, "w") as handle:
            handle.write(self.config_text(**settings))
        os.chmod(path, 0o600)
        return path
