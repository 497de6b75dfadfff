# -*- test-case-name: tests.client.test_statefile -*-
"""
What the endpoint agent keeps between runs: its accounts, the profiles it
enrolled, and the two together as L{ClientState}.

These are plain records.  L{suto_client.state_document} maps them to and
from the JSON document, checking every field on the way in, and
L{suto_client.statefile} keeps that document on disk; the protocols and
the command line work with the records alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SERVER_PORT = 2021
"""The TCP port a SUTO server accepts authentication connections on."""


def server_text(host: str, port: int) -> str:
    """
    @return: a server's address as the agent prints it, an IPv6 address
        bracketed so that its port stays readable.
    """
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


@dataclass
class Account:
    """
    One account the agent authenticates for.

    @ivar user: the user name the server's hellos carry.
    @ivar server_host: the server's IP address; hellos are accepted only
        from it and the agent connects back to it.
    @ivar server_port: the server's TCP port.
    @ivar pin: the SHA-256 fingerprint of the server's TLS certificate
        (lowercase hex, no colons), or L{None} for a legacy account or one
        trusted through C{ca}.
    @ivar legacy: speak the unencrypted SUTO 1.3.2 framing over plain TCP.
    @ivar ca: path of a PEM bundle of the CA certificates that vouch for
        the server's certificate, instead of a C{pin}; the certificate
        must then be issued for C{server_host}.
    @ivar client_cert: path of the PEM client certificate presented to a
        server that demands one (mutual TLS); set with C{client_key}.
    @ivar client_key: path of that certificate's unencrypted PEM key.
    @ivar password: the plaintext password, kept only until the first
        successful authentication teaches the agent the salted hash.
    @ivar salt: the password salt learned from the server.
    @ivar salted_hash: C{crypt(password, salt)}, all the challenge needs.
    """

    user: str
    server_host: str
    server_port: int = DEFAULT_SERVER_PORT
    pin: str | None = None
    legacy: bool = False
    password: str | None = field(default=None, repr=False)
    salt: str | None = None
    salted_hash: str | None = field(default=None, repr=False)
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class EnrolledProfile:
    """
    A profile this machine enrolled with a server: the key both sides
    derived, which later exchanges roll forward.

    @ivar user: the enrolled user name.
    @ivar server_host: the server's IP address.
    @ivar server_port: the server's TCP port.
    @ivar pin: the SHA-256 fingerprint of the server's TLS certificate
        (lowercase hex, no colons) that enrollment was made against, or
        L{None} for a profile trusting its server through C{ca}.
    @ivar key: the current chain key,
        L{suto_server.core.keyschedule.KEY_SIZE} bytes; kept out of
        C{repr}.
    @ivar key_id: the key's public name, 32 lowercase hex digits.
    @ivar generation: how many times the key has been rolled forward (0
        for the first key).
    @ivar enrolled_at: when enrollment completed, as POSIX time.
    @ivar rotated_at: when the last rotation was committed, as POSIX
        time, or L{None} if the key never rotated.
    @ivar offline_since: when this machine found it could not deliver
        junk that was due, as POSIX time; L{None} while it is online.  An
        offline profile reconnects with its offline key.
    @ivar ca: path of the PEM CA bundle that vouches for the server's
        certificate, instead of a C{pin}, as for an L{Account}.
    @ivar client_cert: path of the PEM client certificate presented to a
        server that demands one; set with C{client_key}.
    @ivar client_key: path of that certificate's unencrypted PEM key.
    @ivar failover: the other servers of the same deployment, as
        C{(IP address, port)} pairs in the order they are tried once the
        one the agent uses cannot be reached (L{suto_client.failover}).
        They serve the same store, so the profile and its key are theirs
        too, and they are trusted as C{server_host} is: by the same pin,
        or the same CA bundle.
    """

    user: str
    server_host: str
    server_port: int
    pin: str | None
    key: bytes = field(repr=False)
    key_id: str
    generation: int
    enrolled_at: float
    rotated_at: float | None = None
    offline_since: float | None = None
    ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    failover: tuple[tuple[str, int], ...] = ()

    @property
    def servers(self) -> tuple[tuple[str, int], ...]:
        """
        Every server of the profile's deployment, the enrolled one first.
        """
        return ((self.server_host, self.server_port), *self.failover)

    @property
    def last_agreed(self) -> float:
        """
        When the current key was agreed on: its rotation, or enrollment.
        """
        return self.enrolled_at if self.rotated_at is None else self.rotated_at


@dataclass
class ClientState:
    """
    Everything the agent keeps between runs.

    @ivar accounts: the accounts, keyed by user name.
    @ivar profiles: the enrolled profiles, keyed by user name.
    """

    accounts: dict[str, Account] = field(default_factory=dict)
    profiles: dict[str, EnrolledProfile] = field(default_factory=dict)
