"""
The storm scenario's own parts: how key ids are compared at the end, how
what an endpoint counts as a reconnection,
and how the report judges the target.

    python -m twisted.trial tests.bench.test_storm
"""

from __future__ import annotations

import os
from dataclasses import replace

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bench import fleet, report, storm
from bench.ceilings import Ceilings
from bench.cpu import CpuUse
from bench.measurement import Measurement
from bench.storm_client import Phases, StormEndpoint
from suto_client.state import EnrolledProfile


def _result(back: float | None, lost: int = 0) -> storm.StormResult:
    latencies = (1.0, 2.0, 3.0, 4.0) if back is not None else (1.0,)
    return storm.StormResult(
        endpoints=4,
        connected=4,
        interval=10.0,
        grace=5.0,
        seeding_seconds=0.1,
        connect_seconds=1.0,
        down_seconds=17.0,
        client_offline=4,
        server_offline=4,
        start_seconds=0.5,
        storm=Measurement(
            count=len(latencies),
            seconds=5.0,
            generator_cpu=0.2,
            server_cpu=0.4,
            latencies=latencies,
        ),
        all_back_seconds=back,
        conversations=(0.01, 0.02),
        retries={"down": 8},
        down_errors={},
        blacklisted=0,
        still_offline=0,
        keys_current=4 - lost,
        keys_previous=0,
        keys_lost=lost,
    )


def _ceilings() -> Ceilings:
    one = Measurement(count=100, seconds=1.0)
    return Ceilings(one, one, 2, one, Measurement(count=500, seconds=1.0), 10)


class CompareKeysTests(SynchronousTestCase):
    """
    L{storm.compare_keys} tells the server's current key, its previous
    key while the current is unconfirmed, and a key it does not accept.
    """

    def test_kinds(self):
        """
        Each endpoint counts once, under the key it holds.
        """
        keys = {"a": ("k1", None), "b": ("k2", "k1"), "c": ("k3", None)}
        entries = [
            {"user": "a", "key_id": "k1"},
            {"user": "b", "key_id": "k1"},
            {"user": "c", "key_id": "k1"},
            {"user": "gone", "key_id": "k1"},
        ]
        self.assertEqual(storm.compare_keys(entries, keys), (1, 1, 2))


class MeasuredPhaseTests(SynchronousTestCase):
    """
    L{storm.measured_phase} adds up the generators' reports of a phase.
    """

    def test_sums(self):
        """
        Errors, their reasons and the generators' CPU are summed over the
        reports; the count is the endpoints served again.
        """
        reports = [
            {"errors": 1, "error_reasons": {"cut": 1}, "cpu": 0.5},
            {"errors": 2, "error_reasons": {"cut": 1, "busy": 1}, "cpu": 0.25},
        ]
        cpu = CpuUse(generator=0.1, server=0.4, machine=1.0)
        phase = storm.measured_phase(reports, [0.5, 1.5, 2.0], 3.0, cpu)
        self.assertEqual(
            (phase.count, phase.seconds, phase.errors, phase.generator_cpu),
            (3, 3.0, 3, 0.75),
        )
        self.assertEqual(phase.error_reasons, {"cut": 2, "busy": 1})
        self.assertEqual((phase.server_cpu, phase.machine_cpu), (0.4, 1.0))
        self.assertEqual(phase.latencies, (0.5, 1.5, 2.0))


class StormEndpointTests(SynchronousTestCase):
    """
    L{StormEndpoint} counts a reconnection when a rotation is stored from
    an offline profile, and nothing else.
    """

    def setUp(self):
        self.member = fleet.Member(_profile(), b"f" * 32)
        self.phases = Phases()
        self.phases.current = "storm"
        self.endpoint = StormEndpoint(
            Clock(), self.member, "127.1.0.1", 10.0, self.phases
        )

    def test_offline_mark_is_not_back(self):
        """
        Storing the offline mark itself is not a reconnection.
        """
        old = self.member.profile
        self.endpoint._stored(old, replace(old, offline_since=5.0))
        self.assertIsNone(self.endpoint.back_at)

    def test_rotation_from_offline_is_back(self):
        """
        A new key stored over an offline profile is a reconnection.
        """
        old = replace(self.member.profile, offline_since=5.0)
        self.endpoint._stored(old, replace(old, key_id="f" * 32, offline_since=None))
        self.assertIsNotNone(self.endpoint.back_at)

    def test_back_before_storm_is_not_back(self):
        """
        A reconnection before the restart is not the storm's: an agent
        whose seeded profile is older than its interval when it starts
        (C{--interval 2} on a busy machine) reconnects as the fleet
        connects, and that would pass for a return before the restart, a
        negative time, while its profile is offline again.
        """
        old = replace(self.member.profile, offline_since=5.0)
        for phase in ("connect", "down"):
            self.phases.current = phase
            self.endpoint._stored(
                old, replace(old, key_id="f" * 32, offline_since=None)
            )
            self.assertIsNone(self.endpoint.back_at, phase)

    def test_rotation_online_is_not_back(self):
        """
        An ordinary rotation is not a reconnection.
        """
        old = self.member.profile
        self.endpoint._stored(old, replace(old, key_id="f" * 32))
        self.assertIsNone(self.endpoint.back_at)


def _profile() -> EnrolledProfile:
    return EnrolledProfile(
        user="rot00000",
        server_host="127.0.0.1",
        server_port=1,
        pin="ab" * 32,
        key=os.urandom(32),
        key_id="0" * 32,
        generation=0,
        enrolled_at=0.0,
    )


class StormReportTests(SynchronousTestCase):
    """
    The storm report judges the 15 s target on the last endpoint back.
    """

    def test_met(self):
        """
        Everyone back within 15 s meets the target; the rate is endpoints
        over that time.
        """
        figures = report.storm_json(_result(12.0), _ceilings())
        self.assertEqual(figures["reconnections_per_second"], round(4 / 12.0, 2))
        self.assertEqual(figures["back_p50_s"], 2.0)
        rows = {row[0]: row[3] for row in report.storm_rows(_result(12.0), _ceilings())}
        self.assertIn("target 15 s: met", rows["all back"])

    def test_missed(self):
        """
        Someone not back, or back after 15 s, misses it.
        """
        for result in (_result(None), _result(16.0)):
            rows = {row[0]: row[3] for row in report.storm_rows(result, _ceilings())}
            self.assertIn("target 15 s: missed", rows["all back"])

    def test_ceiling(self):
        """
        The storm ceiling is one handshake and five exchanges.
        """
        self.assertAlmostEqual(
            report.storm_ceiling(_ceilings()), 1 / (1 / 100 + 5 / 500)
        )

