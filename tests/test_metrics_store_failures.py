"""
Tests for C{suto_store_failures_total} (L{ServerMetrics.store_failed}):
the operators' count of the exchanges the store failed, by exchange, and
its wiring to the device listeners and the admin API.
"""

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.metrics import STORE_FAILURE_EXCHANGES, ServerMetrics
from suto_server.settings import Listeners
from suto_server.store.errors import StoreError
from tests.support.admin import render
from tests.support.server import make_server


def failures(metrics, exchange: str) -> float:
    """
    @return: the count of C{exchange}'s store failures in C{metrics}.
    """
    return metrics.registry.get_sample_value(
        "suto_store_failures_total", {"exchange": exchange}
    )


class StoreFailuresTests(SynchronousTestCase):
    """
    The counter itself.
    """

    def test_counted(self):
        """
        Every exchange's series is there from the start at 0, so a rate()
        reads 0 before the first outage; each failure counts under its
        exchange alone.
        """
        metrics = ServerMetrics()
        self.assertEqual(
            [failures(metrics, exchange) for exchange in STORE_FAILURE_EXCHANGES],
            [0.0] * len(STORE_FAILURE_EXCHANGES),
        )
        metrics.store_failed("rotation")
        metrics.store_failed("rotation")
        metrics.store_failed("admin")
        self.assertEqual(
            {
                exchange: failures(metrics, exchange)
                for exchange in STORE_FAILURE_EXCHANGES
            },
            {"opening": 0, "classic": 0, "enrollment": 0, "rotation": 2, "admin": 1},
        )


class WiringTests(SynchronousTestCase):
    """
    A server counts its device listeners' and its admin API's store
    failures in its metrics.
    """

    def test_device_listener(self):
        """
        A device listener's failures are the server's metric's.
        """
        reactor = MemoryReactorClock()
        server = make_server(reactor, listeners=Listeners(devices=("a device",)))
        [listener] = server.listeners
        listener._factory.store_failed("classic")
        self.assertEqual(failures(server.metrics, "classic"), 1)

    def test_admin_api(self):
        """
        An admin request answered 503 because the store failed counts
        under C{admin}.
        """
        server = make_server(MemoryReactorClock())

        def away(*args, **kwargs):
            raise StoreError("the database went away")

        self.patch(server.store, "audit_events_matching", away)
        request = render(server._admin_site(), b"GET", "/v1/alerts")
        self.assertEqual(request.responseCode, 503)
        self.assertEqual(failures(server.metrics, "admin"), 1)
