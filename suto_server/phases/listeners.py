# -*- test-case-name: tests.test_service -*-
"""
Which phases each device listener offers.

Enrollment, rotation and reconnection carry key material, so they run
only over TLS: a plaintext listener (the legacy one, or a framed one on a
C{tcp:} endpoint) serves the classic challenge alone, and the server says
so in its log when it starts.
"""

from __future__ import annotations

from typing import Iterator

from twisted.logger import Logger

from suto_server.core import wire
from suto_server.phases.classic import ClassicRules
from suto_server.phases.connection import ServerFactory

log = Logger()


def device_listeners(
    devices,
    legacy,
    *,
    clock,
    classic: ClassicRules,
    secure: dict,
    exchange_timeout: float,
    gate,
    store_failed=None,
) -> Iterator[tuple]:
    """
    The factories of the device listeners.

    @param devices: the endpoints of the framed listeners; those with a
        C{tls} attribute (L{suto_server.net.endpoint.server_endpoint}) are TLS.
    @param legacy: the endpoint of the SUTO 1.3.2 listener, or L{None}.
    @param secure: the phases a TLS listener offers besides the classic
        challenge, as L{ServerFactory} arguments (C{enrollment},
        C{rotation}); empty when the server does not enroll.
    @param store_failed: counts the exchanges the store failed
        (L{ServerFactory}'s C{store_failed}), if given.
    @return: C{(name, endpoint, factory)} for each listener.
    """
    counted = {} if store_failed is None else {"store_failed": store_failed}

    def factory(framing, phases) -> ServerFactory:
        return ServerFactory(
            framing=framing,
            clock=clock,
            classic=classic,
            exchange_timeout=exchange_timeout,
            gate=gate,
            **counted,
            **phases,
        )

    for endpoint in devices:
        tls = getattr(endpoint, "tls", None) is not None
        if not tls:
            log.warn(
                "a SUTO listener is plaintext: it serves only the classic "
                "salted challenge, never enrollment, rotation or "
                "reconnection; give it an ssl: endpoint"
            )
        yield (
            "SUTO listener",
            endpoint,
            factory(wire.Framing.FRAMED, secure if tls else {}),
        )
    if legacy is not None:
        log.warn(
            "the SUTO 1.3.2 legacy listener is on: it is plaintext and "
            "serves only the classic salted challenge"
        )
        yield "SUTO 1.3.2 legacy listener", legacy, factory(wire.Framing.LEGACY, {})
