# -*- test-case-name: tests.net.test_descriptions -*-
"""
What each of the daemon's listeners listens on: the full endpoint string
an option's value stands for (the generated certificate for an C{ssl:}
listener given no key, the device listener's certificate for the API and
the console, a bare console port on loopback), the endpoint types each
option takes, and the refusal of a value an option does not take.
L{suto_server.net.listening} parses these strings and listens on them.
"""

from __future__ import annotations

import datetime
import re

from twisted.internet.endpoints import quoteStringArgument
from twisted.logger import Logger

from suto_server.net import certificate
from suto_server.net.endpoint import STOCK_PREFIX

log = Logger()


class ListenerOptionError(ValueError):
    """
    A listener option's endpoint string is not one the option takes.
    """

    def __init__(self, option: str, description: str, reason: str) -> None:
        super().__init__(f"{option} {description}: {reason}")


#: The TLS listener when the operator names none.
DEFAULT_LISTEN = "ssl:2021"

def tls_listen(data: str, hostname: str, description: str) -> str:
    """
    The TLS listener's full description.  An C{ssl:} listener given no
    private key serves the data folder's generated certificate (made now
    if missing), so binding one interface or IPv6
    (C{ssl:2021:interface=\\:\\:1}) needs no certificate files.
    """
    if not description.startswith(STOCK_PREFIX) or names_private_key(description):
        return description
    key, cert, created = certificate.ensure_self_signed(
        data, hostname, datetime.datetime.now(datetime.timezone.utc)
    )
    with open(cert, "rb") as handle:
        info = certificate.describe(handle.read())
    log.info(
        "{what} TLS certificate for {subject}, SHA-256 fingerprint "
        "{fingerprint}, valid until {not_after}",
        what="generated" if created else "using",
        subject=info.subject,
        fingerprint=info.fingerprint,
        not_after=info.not_after.isoformat(),
    )
    return (
        f"{description}:privateKey={quoteStringArgument(key)}"
        f":certKey={quoteStringArgument(cert)}"
    )


def api_listen(description: str, devices: str) -> str:
    """
    The verification API listener's full description (C{--api-listen}).

    It must demand client certificates from a named CA: the roles of its
    callers come from those certificates, so a listener that let a peer
    in without one would serve nobody, or, misconfigured, anybody.  Given
    no private key, it serves the device listener's certificate (the one
    devices pin), with that listener's own key and chain.

    @param devices: the device listener's full description (see
        L{tls_listen}).
    @raise ListenerOptionError: it is an C{ssl:} endpoint that does not
        demand client certificates from C{caCerts}.
    """
    if not description.startswith(STOCK_PREFIX):
        # Not TLS at all: refused for its type (L{API_TYPES}).
        return description
    arguments = endpoint_arguments(description)
    named = dict(
        argument.split("=", 1) for argument in arguments if "=" in argument
    )
    if "caCerts" not in named or named.get("requireClientCert", "").lower() != "yes":
        raise ListenerOptionError(
            "--api-listen",
            description,
            "the verification API needs client certificates from a named CA: "
            "add :caCerts=FILE:requireClientCert=yes",
        )
    return _with_own_certificate(description, devices)


def _with_own_certificate(description: str, devices: str) -> str:
    """
    An C{ssl:} listener's description, given the device listener's
    certificate (its key, certificate and chain) when it names no private
    key of its own: the certificate the daemon already serves, generated
    or the operator's.

    @param devices: the device listener's full description (see
        L{tls_listen}); when it is not TLS, C{description} is returned as
        it is (and fails to parse for want of a key).
    """
    if names_private_key(description) or not devices.startswith(STOCK_PREFIX):
        return description
    own = [
        argument
        for argument in endpoint_arguments(devices)
        if argument.split("=", 1)[0] in ("privateKey", "certKey", "extraCertChain")
    ]
    return ":".join([description, *own])


def endpoint_arguments(description: str) -> list[str]:
    """
    The arguments of an endpoint string after its type, as written:
    separated by colons not escaped with a backslash.
    """
    return re.split(r"(?<!\\):", description)[1:]


def names_private_key(description: str) -> bool:
    """
    Does an C{ssl:} endpoint string give a private key, by name or as its
    second argument without a name (C{ssl:2021:server.pem})?
    """
    arguments = endpoint_arguments(description)
    unnamed = [argument for argument in arguments if "=" not in argument]
    return len(unnamed) > 1 or any(
        argument.startswith("privateKey=") for argument in arguments
    )


#: The endpoint types of the device listeners (C{--listen},
#: C{--legacy-listen}): TLS (C{ssl:}, served by our hardened parser) or
#: plaintext.  Others, such as Twisted's C{tls:}, which reads C{tls:2021}
#: as a certificate folder named 2021 and listens on port 443, are refused.
DEVICE_TYPES = ("ssl", "suto-tls", "tcp", "tcp6", "unix")

#: The endpoint types of the verification API (C{--api-listen}).
API_TYPES = ("ssl",)

#: The endpoint types of the metrics page (C{--metrics-listen}).
METRICS_TYPES = ("tcp", "tcp6", "unix", "ssl")

#: The endpoint types of the web console (C{--console-listen}).
CONSOLE_TYPES = ("tcp", "tcp6", "ssl")


def console_description(given: str) -> str:
    """
    The web console's endpoint string: a bare port is on loopback, where
    the one-time login links of C{suto-admin console-link} are accepted.
    """
    if given.isdigit():
        return f"tcp:{given}:interface=127.0.0.1"
    return given


def console_listen(given: str, devices: str) -> str:
    """
    The web console's full description (C{--console-listen}).

    An C{ssl:} console is parsed as the device listener is (hardened TLS,
    L{suto_server.net.endpoint.server_endpoint}), so C{caCerts=FILE} asks
    browsers for a client certificate from that CA, which signs in an
    operator whose certificate holds the C{admin} role (optional unless
    C{requireClientCert=yes}).  Given no private key it serves the device
    listener's certificate, as the verification API does.

    @param devices: the device listener's full description (see
        L{tls_listen}).
    """
    description = console_description(given)
    if not description.startswith(STOCK_PREFIX):
        return description
    return _with_own_certificate(description, devices)
