"""
A L{SutoServer} for tests: the in-memory store and the classic challenge
alone unless a test says otherwise, every other setting the daemon's own
default, so a test names only the settings it is about.
"""

from __future__ import annotations

from suto_server.service import SutoServer
from suto_server.settings import ENROLLMENT_OFF
from suto_server.store.memory import MemoryStore


def make_server(reactor, *, store=None, enrollment=ENROLLMENT_OFF, **settings):
    """
    @param settings: L{SutoServer}'s other arguments (C{listeners},
        C{network}, C{timing}, C{capacity}, C{alerting}, C{database}).
    """
    return SutoServer(
        reactor,
        store=MemoryStore() if store is None else store,
        enrollment=enrollment,
        **settings,
    )
