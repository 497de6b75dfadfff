"""
The rotation and memory scenarios' own parts, with tiny fleets so the
module runs in well under a second: seeded profiles hold the keys the
server's store holds, the fleet file round-trips and refuses what is
malformed, the measured window counts what it should and ends on time or
count, memory is read from /proc, and the report judges the targets.

    python -m twisted.trial tests.bench.test_fleet
"""

from __future__ import annotations

import ipaddress
import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bench import fleet, report
from bench.ceilings import Ceilings
from bench.measurement import Measurement, add_counts
from bench.memory import resident_bytes
from bench.rotation import FleetResult, interval_options, offline_step
from bench.rotation_client import MeasuredWindow
from suto_client.rotation_outcome import RotationOutcome
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.masterkey import MasterKey
from suto_server.store.open import open_store
from suto_server.store.sqlite import SQLiteStore
from tests.support.postgres import new_location


class SeedTests(SynchronousTestCase):
    """
    L{fleet.seed} enrolls profiles the server can rotate, and
    L{fleet.write}/L{fleet.read} hand them to the generators.
    """

    def setUp(self):
        self.data = self.mktemp()
        os.makedirs(self.data)
        self.members = fleet.seed(self.data, 3, 4321, "ab" * 32)

    def test_store_holds_the_same_keys(self):
        """
        Every seeded profile is in the store, generation 0, under the key
        id the endpoint holds, with the endpoint's fingerprint hash, its
        key sealed with the master key the server loads, and enrolled
        from the address the endpoint connects from.
        """
        master_key = MasterKey.load_or_create(
            os.path.join(self.data, MASTER_KEY_FILE)
        )
        store = SQLiteStore.open(os.path.join(self.data, DATABASE_FILE))
        self.addCleanup(store.close)
        for index, member in enumerate(self.members):
            profile = store.get_profile(fleet.user_name(index))
            self.assertEqual(profile.key_id, member.profile.key_id)
            self.assertEqual(profile.generation, 0)
            self.assertEqual(profile.fingerprint_hash, member.fingerprint_hash)
            self.assertEqual(profile.last_address, fleet.source_address(index))
            self.assertEqual(
                master_key.open_key(profile.username, profile.key_id, profile.key_sealed),
                member.profile.key,
            )
        self.assertEqual(store.list_windows(), [])

    def test_round_trip(self):
        """
        A range of the fleet read back from its file equals what was
        written, and the file is readable by its owner only.
        """
        path = os.path.join(self.data, "fleet.jsonl")
        fleet.write(path, self.members)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(fleet.read(path, 1, 2), self.members[1:])

    def test_out_of_range(self):
        """
        Asking for more endpoints than the file holds raises
        L{fleet.FleetFileError}.
        """
        path = os.path.join(self.data, "fleet.jsonl")
        fleet.write(path, self.members)
        self.assertRaises(fleet.FleetFileError, fleet.read, path, 2, 2)
        self.assertRaises(fleet.FleetFileError, fleet.read, path, -1, 1)

    def test_malformed(self):
        """
        A line that is not a complete endpoint raises
        L{fleet.FleetFileError}, not whatever the parser raised.
        """
        path = os.path.join(self.data, "bad.jsonl")
        with open(path, "w") as handle:
            handle.write('{"user": "rot00000", "key": "zz"}\n')
        self.assertRaises(fleet.FleetFileError, fleet.read, path, 0, 1)

    def test_count_bounded(self):
        """
        A fleet of no endpoints, or of more than L{fleet.MAX_ENDPOINTS},
        is refused before anything is written.
        """
        for count in (0, fleet.MAX_ENDPOINTS + 1):
            self.assertRaises(ValueError, fleet.seed, self.data, count, 1, "ab" * 32)


class PostgresSeedTests(SynchronousTestCase):
    """
    L{fleet.seed} loads the fleet into a PostgreSQL store the same way,
    in one bulk load, as several server processes share it.
    """

    def test_store_holds_the_same_keys(self):
        """
        Every seeded profile is in the PostgreSQL store under the key the
        endpoint holds, sealed with the first data folder's master key,
        and no window is left open.
        """
        location = new_location(self)
        data = self.mktemp()
        os.makedirs(data)
        members = fleet.seed(data, 3, 4321, "ab" * 32, location)
        master_key = MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
        store = open_store(location)
        self.addCleanup(store.close)
        for index, member in enumerate(members):
            profile = store.get_profile(fleet.user_name(index))
            self.assertEqual(
                master_key.open_key(profile.username, profile.key_id, profile.key_sealed),
                member.profile.key,
            )
            self.assertEqual(profile.location, fleet.source_address(index))
        self.assertEqual(store.list_windows(), [])


class SourceAddressTests(SynchronousTestCase):
    """
    L{fleet.source_address} spreads the endpoints over loopback addresses.
    """

    def test_spread(self):
        """
        Consecutive endpoints use L{fleet.SOURCE_ADDRESSES} distinct
        loopback addresses, none of them the server's 127.0.0.1.
        """
        addresses = {
            fleet.source_address(index)
            for index in range(2 * fleet.SOURCE_ADDRESSES)
        }
        self.assertEqual(len(addresses), fleet.SOURCE_ADDRESSES)
        for address in addresses:
            self.assertTrue(ipaddress.ip_address(address).is_loopback)
        self.assertNotIn("127.0.0.1", addresses)

    def test_below_the_per_source_limit(self):
        """
        A fleet of L{fleet.MAX_ENDPOINTS} puts fewer endpoints on one
        address than the server's default --max-per-source (32) admits.
        """
        per_address = -(-fleet.MAX_ENDPOINTS // fleet.SOURCE_ADDRESSES)
        self.assertLess(per_address, 32)


class ServerOptionsTests(SynchronousTestCase):
    """
    The server of a fleet run is told the agents' interval, as an operator
    tells it.
    """

    def test_within_offline_deadline(self):
        """
        The offline step passed to the server is its default when the
        agents' offline deadline (their longest wait) is longer, and never
        longer than that deadline, so C{twistd suto} accepts short
        intervals.
        """
        self.assertEqual(offline_step(60), 30)
        self.assertEqual(offline_step(10), 11)
        self.assertEqual(offline_step(1), 1)

    def test_interval(self):
        """
        At interval 600 the server's rotation interval is 600, so it does
        not close connections silent for its default 96 s; its offline
        step stays the default.
        """
        self.assertEqual(
            interval_options(600.0),
            ("--rotation-interval", "600.0", "--offline-step", "30"),
        )

    def test_lockstep(self):
        """
        Lockstep rotations (interval 0) keep the server's defaults.
        """
        self.assertEqual(interval_options(0.0), ())


class WindowTests(SynchronousTestCase):
    """
    L{MeasuredWindow} counts the rotations of the measured phase only, and ends
    it on time or on count.
    """

    def test_warmup_apart(self):
        """
        Rotations before the window starts count as warm-up, those after
        as measured, with their latencies; failures keep their reason.
        """
        clock = Clock()
        window = MeasuredWindow(clock)
        window.record(RotationOutcome.ROTATED, "", 0.5)
        window.start(10.0, 100)
        window.record(RotationOutcome.ROTATED, "", 0.25)
        window.record(RotationOutcome.TIMEOUT, "slow", 10.0)
        self.assertEqual(window.warmup.count, 1)
        measured = window.tally.measurement(1.0)
        self.assertEqual((measured.count, measured.latencies), (1, (0.25,)))
        self.assertEqual(measured.error_reasons, {"timeout: slow": 1})

    def test_ends_on_time(self):
        """
        The window ends once its duration has passed, and nothing counts
        after that (closing the connections fails their rotations).
        """
        clock = Clock()
        window = MeasuredWindow(clock)
        window.start(2.0, 100)
        clock.advance(1.9)
        self.assertFalse(window.ended.called)
        clock.advance(0.1)
        self.assertTrue(window.ended.called)
        window.record(RotationOutcome.ERROR, "connection lost", 0.0)
        self.assertEqual(window.tally.measurement(1.0).errors, 0)

    def test_ends_on_count(self):
        """
        The window ends at its C{max_count}-th rotation, and its timer is
        cancelled.
        """
        clock = Clock()
        window = MeasuredWindow(clock)
        window.start(60.0, 2)
        window.record(RotationOutcome.ROTATED, "", 0.1)
        self.assertFalse(window.ended.called)
        window.record(RotationOutcome.ROTATED, "", 0.1)
        self.assertTrue(window.ended.called)
        self.assertEqual(clock.getDelayedCalls(), [])


class MemoryTests(SynchronousTestCase):
    """
    L{resident_bytes} reads a process's resident memory.
    """

    def test_own(self):
        """
        This process's resident memory reads as more than a megabyte (a
        Python process with Twisted loaded holds far more).
        """
        size = resident_bytes(os.getpid())
        self.assertGreater(size, 1024 * 1024)

    def test_gone(self):
        """
        A process that does not exist has no resident memory: L{None}.
        """
        self.assertIsNone(resident_bytes(2**22 + 1))


class AddCountsTests(SynchronousTestCase):
    """
    L{add_counts} adds up failure reasons reported by several processes.
    """

    def test_sum(self):
        """
        Counts of the same reason add up; others are kept.
        """
        self.assertEqual(
            add_counts([{"a": 1, "b": 2}, {"b": 3}, {}]), {"a": 1, "b": 5}
        )


def _result(count: int, seconds: float, server_cpu: float, interval: float = 0.0):
    return FleetResult(
        endpoints=10,
        connected=10,
        interval=interval,
        seeding_seconds=0.1,
        connect_seconds=0.2,
        warmup_rotations=10,
        warmup_errors={},
        rss_before=50 * 1024 * 1024,
        rss_after=50 * 1024 * 1024 + 10 * 40 * 1024,
        generator_rss=2 * 30 * 1024 * 1024,
        generators=2,
        file_limit=20000,
        measured=Measurement(
            count=count,
            seconds=seconds,
            generator_cpu=1.0,
            server_cpu=server_cpu,
            machine_cpu=None,
            latencies=(0.001,) * count,
        ),
        commits=count // 4,
    )


def _ceilings(messages: int) -> Ceilings:
    one = Measurement(count=100, seconds=1.0)
    return Ceilings(
        one, one, 2, one, Measurement(count=messages, seconds=1.0), 10
    )


class FleetReportTests(SynchronousTestCase):
    """
    The rotation and memory reports derive their figures and judge the
    targets as documented.
    """

    def test_per_endpoint(self):
        """
        The memory per endpoint is the growth of the server's resident
        memory divided by the endpoints connected.
        """
        self.assertEqual(_result(1, 1.0, 1.0).rss_per_endpoint, 40 * 1024)

    def test_rotation_figures(self):
        """
        The rotation ceiling is the message ceiling (a primed rotation is
        one exchange); CPU is per completed rotation.
        """
        figures = report.rotation_json(_result(6000, 1.0, 1.2), _ceilings(10000))
        self.assertEqual(figures["rotation_ceiling"], 10000)
        self.assertEqual(figures["ratio"], 0.6)
        self.assertEqual(figures["server_cpu_ms_per_rotation"], 0.2)
        self.assertEqual(figures["latency_p99_ms"], 1.0)
        self.assertEqual(figures["commits"], 1500)
        self.assertEqual(figures["rotations_per_commit"], 4.0)

    def test_verdicts(self):
        """
        The table says which targets were met: here the rate and the
        latency are, and a fleet costing 20% of a core misses the idle
        target.
        """
        rows = report.rotation_rows(_result(6000, 1.0, 0.2, 60.0), _ceilings(10000))
        notes = {row[0]: row[3] for row in rows}
        self.assertIn("target 5000: met", notes["rotations"])
        self.assertIn("target 50: met", notes["latency p99"])
        self.assertIn("missed", notes["idle fleet target"])
        self.assertIn("met", notes["server RSS per endpoint"])

    def test_generators(self):
        """
        The report says how many generators ran, the open-file limit and
        their memory.
        """
        figures = report.rotation_json(_result(6000, 1.0, 1.2), _ceilings(10000))
        self.assertEqual(figures["generators"], 2)
        self.assertEqual(figures["file_limit"], 20000)
        self.assertEqual(figures["generator_rss_mb"], 60.0)
        notes = {row[0]: row[3] for row in report.rotation_rows(
            _result(6000, 1.0, 1.2), _ceilings(10000)
        )}
        self.assertIn("open files per process: 20000", notes["generators"])

    def test_memory_scenario(self):
        """
        The memory report names its scenario and says how the profiles
        were made.
        """
        figures = report.memory_scenario_json(_result(0, 5.0, 0.05), 2)
        self.assertEqual(figures["scenario"], "memory")
        self.assertEqual(figures["profiles"], "seeded")
        self.assertEqual(figures["server_load"], 0.01)
        rows = report.memory_rows(_result(0, 5.0, 0.05), 2)
        self.assertIn("seeded", rows[0][3])
