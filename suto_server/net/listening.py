"""
The daemon's listeners: the description of its TLS listener, and a
listener as a service, which listens on its endpoint while it runs and
tells when it is listening and where.
"""

from __future__ import annotations

import datetime
import re

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import quoteStringArgument
from twisted.logger import Logger

from suto_server.net import certificate
from suto_server.net.tls import STOCK_PREFIX

#: The TLS listener's port when the operator names none.
DEFAULT_PORT = 2021

log = Logger()


def tls_listen(data: str, hostname: str, description: str | None) -> str:
    """
    The TLS listener's description: the operator's, or port 2021.  An
    C{ssl:} listener given no private key serves the data folder's
    generated certificate (made now if missing), so binding one interface
    or IPv6 (C{ssl:2021:interface=\\:\\:1}) needs no certificate files.
    """
    if description is None:
        description = f"{STOCK_PREFIX}{DEFAULT_PORT}"
    if not description.startswith(STOCK_PREFIX) or _names_private_key(description):
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


def _names_private_key(description: str) -> bool:
    """
    Does an C{ssl:} endpoint string give a private key, by name or as its
    second argument without a name (C{ssl:2021:server.pem})?  Arguments
    are separated by colons not escaped with a backslash.
    """
    arguments = re.split(r"(?<!\\):", description)[1:]
    unnamed = [argument for argument in arguments if "=" not in argument]
    return len(unnamed) > 1 or any(
        argument.startswith("privateKey=") for argument in arguments
    )


class ListeningService(Service):
    """
    Listens on one endpoint while running; C{listening} fires with the
    L{IListeningPort} (tests read the bound port number from it).
    """

    log = Logger()

    def __init__(self, name: str, endpoint, factory) -> None:
        self.setName(name)
        self._endpoint = endpoint
        self._factory = factory
        self._port = None
        self.listening: Deferred = Deferred()

    def startService(self) -> None:
        super().startService()
        d = self._endpoint.listen(self._factory)

        def listened(port):
            self._port = port
            self.log.info(
                "{name} listening on {address}",
                name=self.name,
                address=port.getHost(),
            )
            self.listening.callback(port)

        def failed(failure):
            self.log.failure("{name} could not listen", failure, name=self.name)
            self.listening.errback(failure)

        d.addCallbacks(listened, failed)

    @property
    def address(self):
        """
        The bound address while listening, else L{None}.
        """
        return None if self._port is None else self._port.getHost()

    def stopService(self):
        super().stopService()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
