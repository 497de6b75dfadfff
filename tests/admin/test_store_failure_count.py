"""
Tests that the admin API counts the requests it answers 503 because the
store failed (L{suto_server.admin.httpjson.count_store_failures}), the
operators' metric of an outage, and nothing else.
"""

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin.api import admin_site
from suto_server.admin.httpjson import count_store_failures
from suto_server.locations import Locations
from suto_server.rules.enrollment import Enrollment
from suto_server.rules.windows import WindowDesk
from suto_server.store.memory import MemoryStore
from tests.support.admin import FakeAuthenticator, render
from tests.support.away import AwayStore
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool


class StoreFailureCountTests(SynchronousTestCase):
    """
    The admin API's site, its window desk over a store that goes away.
    """

    def setUp(self):
        self.store = AwayStore(MemoryStore())
        desk = WindowDesk(
            Enrollment(self.store, new_master_key(self), ImmediatePool()),
            Locations(),
            task.Clock(),
            RecordingHello(),
            2020,
            list,
        )
        self.site = admin_site(FakeAuthenticator(), 2020, dict, list, desk=desk)
        self.counted = []
        count_store_failures(self.site, lambda: self.counted.append("admin"))

    def test_store_away(self):
        """
        Each request answered 503 because the store failed is counted.
        """
        self.store.away = True
        for _ in range(2):
            request = render(self.site, b"GET", "/v1/windows")
            self.assertEqual(request.responseCode, 503)
        self.assertEqual(self.counted, ["admin", "admin"])

    def test_other_answers(self):
        """
        A request answered, or refused for what it asked, is not counted.
        """
        self.assertEqual(render(self.site, b"GET", "/v1/windows").responseCode, 200)
        refused = render(self.site, b"POST", "/v1/cancel", {"user": "alice"})
        self.assertEqual(refused.responseCode, 404)
        self.assertEqual(self.counted, [])
