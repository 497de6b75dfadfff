"""
Tests for L{suto_server.keyrules}: the rules of a server with a master key
are put together from its settings, and the daemon's assembly alone
starts the services they need.
"""

from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.log import AuditLog
from suto_server.cred.hashpool import HashPool
from suto_server.keyrules import assemble, key_rules
from suto_server.locations import Locations
from suto_server.masterkey import MASTER_KEY_SIZE, MasterKey
from suto_server.net.checks import CheckService
from suto_server.rules.offline import OfflineWatch
from suto_server.rules.registry import LiveSessions
from suto_server.settings import Alerting, EnrollmentSettings, Network, Timing
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.memory import MemoryStore

#: Settings other than the defaults, so that each is seen to arrive.
TIMING = Timing(
    rotation_interval=30.0, rotation_grace=5.0, offline_step=60, offline_window=3
)
ALERTING = Alerting(fingerprint_alert=7)


def _parts(reactor) -> dict:
    """
    What both L{assemble} and L{key_rules} take, over a memory store.
    """
    store = MemoryStore()
    return {
        "store": store,
        "calls": LocalCalls(store),
        "audit": AuditLog(store),
        "live": LiveSessions(),
        "hash_pool": HashPool(reactor),
        "committer": GroupCommitter(reactor, store.commit_rotations),
        "locations": Locations(),
        "settings": EnrollmentSettings(MasterKey(bytes(MASTER_KEY_SIZE))),
        "timing": TIMING,
        "alerting": ALERTING,
    }


class AssembleTests(SynchronousTestCase):
    """
    L{assemble} wires the rules to each other and to the settings.
    """

    def setUp(self):
        self.checks = object()
        self.keys = assemble(checks=self.checks, **_parts(MemoryReactorClock()))

    def test_settings(self):
        """
        The rotation's alert threshold is the alerting's, the
        reconnection's offline step and window the timing's.
        """
        self.assertEqual(self.keys.rotation.failures.alert, 7)
        self.assertEqual(
            (self.keys.reconnection.step, self.keys.reconnection.window), (60, 3)
        )

    def test_phases(self):
        """
        The listener's phases hold these rules: rotation connections go
        quiet for the timing's idle period, and enrollments check their
        responses through the rules' portal.
        """
        phases = self.keys.phases(TIMING)
        rotation = phases["rotation"]
        self.assertIs(rotation.rotation, self.keys.rotation)
        self.assertIs(rotation.reconnection, self.keys.reconnection)
        self.assertIs(rotation.tracking, self.keys.tracking)
        self.assertEqual(rotation.idle_timeout, TIMING.idle_timeout)
        self.assertIs(phases["enrollment"].enrollment, self.keys.enrollment)
        self.assertIs(phases["enrollment"].portal, self.keys.portal)


class KeyRulesTests(SynchronousTestCase):
    """
    L{key_rules} runs the check packets and the offline sweep besides.
    """

    def test_services(self):
        """
        The check service runs under the parent, the offline sweep under
        the jobs of the one process that sweeps.
        """
        parent, jobs = MultiService(), MultiService()
        key_rules(
            MemoryReactorClock(),
            parent,
            network=Network(),
            jobs=jobs,
            **_parts(MemoryReactorClock()),
        )
        self.assertEqual([type(service) for service in parent], [CheckService])
        self.assertEqual([type(service) for service in jobs], [OfflineWatch])

    def test_sweep_under_parent(self):
        """
        Without jobs, the sweep runs under the parent too.
        """
        parent = MultiService()
        key_rules(
            MemoryReactorClock(),
            parent,
            network=Network(),
            **_parts(MemoryReactorClock()),
        )
        self.assertEqual(
            sorted(type(service).__name__ for service in parent),
            ["CheckService", "OfflineWatch"],
        )
