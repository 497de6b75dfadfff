# -*- test-case-name: tests.console.test_signin -*-
"""
Who may use the console: the seam between a request and an operator.

An L{IOperatorSignIn} answers one question for a request: which operator
makes it (a printable subject for the audit log), or nobody.  Two ways
exist:

  - L{LoginLinks}: C{suto-admin console-link} asks the daemon over its
    admin socket for a single-use token, valid for L{LINK_LIFETIME}
    seconds.  Only its SHA-256 is kept, in memory; a redeemed token is
    compared in constant time and consumed, so a link that leaked from
    a terminal's scrollback after use is worth nothing.  A link is only
    accepted on a loopback listener from a loopback peer: the token
    travels in a URL, which must not cross a network (nor come through a
    reverse proxy on the host, whose forwarding headers betray it).
  - L{CertificateSignIn}: the TLS client certificate of the connection,
    given the C{admin} role by the certificate role policy.  The policy
    is a constructor argument (C{admin_subject}); without one, the
    console does not offer this way at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from twisted.internet.interfaces import ISSLTransport
from zope.interface import Interface, implementer

from suto_server.rules.limits import peer_ip

#: Seconds a login link stays valid.
LINK_LIFETIME = 120.0

#: Most login links outstanding at once; the oldest is forgotten first.
MOST_LINKS = 16

#: Bytes of randomness in a token (it is shown as URL-safe base64).
TOKEN_BYTES = 32


class IOperatorSignIn(Interface):
    """
    A way for an operator to sign in to the console.
    """

    def operator_of(request):
        """
        @return: the subject of the operator making C{request} (printable,
            for the audit log), or L{None} when this way does not sign
            the request in.
        """


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def is_loopback(host) -> bool:
    """
    @return: whether C{host}, an L{IAddress} of a TCP connection, is a
        loopback address (C{127.0.0.0/8} or C{::1}, an IPv4-mapped one
        too).
    """
    address = peer_ip(getattr(host, "host", None))
    return address is not None and address.is_loopback


#: Headers a reverse proxy adds to name the client it forwards for.
FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def on_loopback(request) -> bool:
    """
    @return: whether C{request} came from a loopback peer to a loopback
        listener, and not through a proxy: a reverse proxy on the server's
        host is a loopback peer, but the request it forwards (and the
        token in its URL) came over a network, which its forwarding
        headers say.
    """
    if any(request.requestHeaders.hasHeader(name) for name in FORWARDING_HEADERS):
        return False
    return is_loopback(request.getHost()) and is_loopback(request.getClientAddress())


class LoginLinks:
    """
    The outstanding one-time login tokens, as hashes, each with its
    deadline and the operator who asked for it.

    @param clock: the L{IReactorTime} deadlines are read from.
    """

    def __init__(self, clock, lifetime: float = LINK_LIFETIME) -> None:
        self._clock = clock
        self._lifetime = lifetime
        # digest -> (deadline, operator), oldest first.
        self._links: dict[bytes, tuple[float, str]] = {}

    def issue(self, operator: str) -> str:
        """
        @return: a new token for C{operator}; it is shown once and never
            kept.
        """
        self._forget_expired()
        while len(self._links) >= MOST_LINKS:
            del self._links[next(iter(self._links))]
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._links[_digest(token)] = (
            self._clock.seconds() + self._lifetime,
            operator,
        )
        return token

    def link(self, operator: str, address, tls: bool) -> dict:
        """
        A new one-time login link for C{operator} to the console listening
        at C{address}, for C{suto-admin console-link}.

        @param tls: the console is served over TLS.
        @raise ValueError: the console does not listen on loopback (yet),
            where alone the links are accepted.
        """
        if address is None or not is_loopback(address):
            raise ValueError(
                "login links are accepted only by a console on a loopback "
                "listener (--console-listen PORT, or interface=127.0.0.1 or "
                "::1); sign in there with a client certificate instead"
            )
        token = self.issue(f"{operator} (console link)")
        host = f"[{address.host}]" if ":" in address.host else address.host
        scheme = "https" if tls else "http"
        return {
            "url": f"{scheme}://{host}:{address.port}/signin?token={token}",
            "expires_in": self._lifetime,
        }

    def redeem(self, token: str) -> str | None:
        """
        Consume C{token}.

        @return: the operator it was issued for, or L{None} when it is
            unknown, used or expired.
        """
        self._forget_expired()
        offered = _digest(token)
        found = None
        # Every outstanding digest is compared, in constant time each.
        for digest in list(self._links):
            if hmac.compare_digest(digest, offered):
                found = digest
        if found is None:
            return None
        return self._links.pop(found)[1]

    def _forget_expired(self) -> None:
        now = self._clock.seconds()
        for digest, (deadline, _) in list(self._links.items()):
            if now >= deadline:
                del self._links[digest]

    def __len__(self) -> int:
        return len(self._links)


@implementer(IOperatorSignIn)
class CertificateSignIn:
    """
    Sign in with the TLS client certificate of the request's connection.

    @param admin_subject: the certificate role policy's answer for a peer
        certificate (a L{OpenSSL.crypto.X509}): its printable subject when
        the policy gives it the C{admin} role, else L{None}.  This is the
        seam where the daemon's role policy plugs in.
    """

    def __init__(self, admin_subject) -> None:
        self._admin_subject = admin_subject

    def operator_of(self, request):
        transport = getattr(request.channel, "transport", None)
        if transport is None or not ISSLTransport.providedBy(transport):
            return None
        certificate = transport.getPeerCertificate()
        if certificate is None:
            return None
        subject = self._admin_subject(certificate)
        return None if subject is None else f"{subject} (client certificate)"
