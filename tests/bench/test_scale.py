"""
The parts of the benchmark issue 18's runs added, without a server: the
store and process options, the database's counters and their arithmetic,
the bound the shared cores put on the scaling ratios, the several
servers' data folders and command lines, the failover generator's server
order and the failover report.

    python -m twisted.trial tests.bench.test_scale
"""

from __future__ import annotations

import io
import os
import stat
import sys

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from bench import database, failover, run, scale_report
from bench.database import DatabaseUse
from bench.failover import FailoverResult
from bench.failover_client import server_name, server_order
from bench.measurement import Measurement
from bench.run import parse
from bench.scale_report import Configuration
from bench.server_group import OWN_PORTS, prepare_group, share_master_key
from bench.suto_server_process import twistd_argv
from suto_server.datafolder import MASTER_KEY_FILE
from tests.support.postgres import new_location

#: A store URI as an operator gives it.
URI = "postgresql://suto@db.example.com/suto_bench?sslmode=require"


class OptionTests(SynchronousTestCase):
    """
    C{--store} and C{--processes}: several processes need one shared
    store.
    """

    def setUp(self):
        self.patch(sys, "stderr", io.StringIO())

    def test_defaults(self):
        """
        Rotation and storm default to one process on SQLite; scaling to
        two processes; failover takes its own timing options.
        """
        for scenario in ("rotation", "storm"):
            options = parse([scenario])
            self.assertEqual((options.store, options.processes), ("sqlite", 1))
        self.assertEqual(parse(["scaling"]).processes, 2)
        options = parse(["failover"])
        self.assertEqual(
            (options.endpoints, options.interval, options.kill_after),
            (1000, 10.0, 5.0),
        )

    def test_stores(self):
        """
        C{postgres} and a C{postgresql://} URI are stores several
        processes may share.
        """
        for store in ("postgres", URI):
            options = parse(["rotation", "--store", store, "--processes", "2"])
            self.assertEqual((options.store, options.processes), (store, 2))

    def test_refused(self):
        """
        Several processes over SQLite, an unknown store and a count of
        processes out of bounds are refused.
        """
        for bad in (
            ["rotation", "--processes", "2"],
            ["storm", "--store", "mysql://x", "--processes", "2"],
            ["rotation", "--store", "postgres", "--processes", "0"],
            ["rotation", "--store", "postgres", "--processes", "17"],
        ):
            self.assertRaises(SystemExit, parse, bad)


class DatabaseTests(SynchronousTestCase):
    """
    The database's counters and the URIs it makes.
    """

    def test_store_option(self):
        """
        A store is C{sqlite}, C{postgres} or a PostgreSQL URI.
        """
        for good in ("sqlite", "postgres", URI, "postgres://h/d"):
            self.assertEqual(database.store_option(good), good)
        self.assertRaises(ValueError, database.store_option, "/var/lib/suto.db")

    def test_database_name(self):
        """
        A URI's database is its path, else its user's name, else
        C{postgres}, as libpq defaults.
        """
        self.assertEqual(database.database_name(URI), "suto_bench")
        self.assertEqual(database.database_name("postgresql://ann@h"), "ann")
        self.assertEqual(
            database.database_name("postgresql://@/?host=/tmp/x"), "postgres"
        )

    def test_with_database(self):
        """
        Naming another database keeps the URI's host and parameters.
        """
        uri = "postgresql://postgres@/postgres?host=/tmp/suto-postgres-1"
        self.assertEqual(
            database.with_database(uri, "suto_bench_2"),
            "postgresql://postgres@/suto_bench_2?host=/tmp/suto-postgres-1",
        )

    def test_use_arithmetic(self):
        """
        Two readings' difference is the phase's use; per operation, the
        CPU is in milliseconds; what one reading lacks, the difference
        lacks.
        """
        phase = DatabaseUse(2500, 9000, 4.0) - DatabaseUse(500, 1000, 3.0)
        self.assertEqual(phase, DatabaseUse(2000, 8000, 1.0))
        self.assertEqual(phase.per(1000), DatabaseUse(2.0, 8.0, 1.0))
        self.assertIsNone(phase.per(0))
        partial = DatabaseUse(10, None, None) - DatabaseUse(4, 5, 1.0)
        self.assertEqual(partial, DatabaseUse(6, None, None))
        self.assertEqual(partial.per(3), DatabaseUse(2.0, None, None))


class OperatorDatabaseTests(SynchronousTestCase):
    """
    L{database.Database} on a real PostgreSQL server it did not start (the
    tests' own, L{tests.support.postgres}), as on an operator's.
    """

    def test_counters(self):
        """
        Its counters read from PostgreSQL's own statistics: transactions
        from C{pg_stat_database}; no statements without the extension and
        no CPU on a server it did not start; every fleet gets the
        operator's one database.
        """
        location = new_location(self)
        found = database.Database(location, None)
        self.addCleanup(found.close)
        self.assertEqual(found.new_store(), location)
        before = found.use(location)
        self.assertIsInstance(before.transactions, int)
        self.assertEqual(
            (before.statements is None, before.cpu), (not found.counts_statements, None)
        )
        self.assertGreaterEqual((found.use(location) - before).transactions, 0)


def _measured(count: int, server: float, generators: float) -> Measurement:
    """
    @return: C{count} rotations over 10 s costing C{server} and
        C{generators} ms each.
    """
    return Measurement(
        count=count,
        seconds=10.0,
        server_cpu=server * count / 1000.0,
        generator_cpu=generators * count / 1000.0,
        machine_cpu=20.0,
    )


class BoundTests(SynchronousTestCase):
    """
    The most rotations per second the shared cores allow, and the ratios
    it bounds.
    """

    def test_cores_bound(self):
        """
        When server, generators and database together cost more than the
        processes can spend, the cores set the bound.
        """
        measured = _measured(10000, 0.5, 0.5)
        use = DatabaseUse(20000, 70000, 3.0)  # 0.3 ms per rotation
        self.assertAlmostEqual(
            scale_report.shared_core_bound(measured, use, 2, 1), 2000 / 1.3
        )

    def test_process_bound(self):
        """
        When the cores have room, one process's reactor is the bound.
        """
        measured = _measured(10000, 0.5, 0.1)
        self.assertAlmostEqual(
            scale_report.shared_core_bound(measured, None, 4, 1), 1000 / 0.5
        )
        self.assertAlmostEqual(
            scale_report.shared_core_bound(measured, None, 4, 2), 2000 / 0.5
        )
        self.assertEqual(
            Configuration("sqlite x 1", 1, measured, None).held_by(4),
            scale_report.SERVERS,
        )

    def test_missing_cost(self):
        """
        Without the database's CPU, or with no rotation, there is no bound.
        """
        self.assertIsNone(
            scale_report.shared_core_bound(
                _measured(100, 0.5, 0.5), DatabaseUse(1, None, None), 2, 1
            )
        )
        self.assertIsNone(
            scale_report.shared_core_bound(Measurement(count=0, seconds=1.0), None, 2, 1)
        )

    def test_ratios_out_of_reach(self):
        """
        On two cores shared with generators and PostgreSQL, a second
        process adds less than the 1.6x target: the report says so, and
        gives the measured ratio as measured.
        """
        use = DatabaseUse(20000, 70000, 3.0)
        sqlite = Configuration("sqlite x 1", 1, _measured(15000, 0.45, 0.5), None)
        one = Configuration("postgres x 1", 1, _measured(10000, 0.6, 0.5), use)
        two = Configuration("postgres x 2", 2, _measured(11000, 0.6, 0.5), use)
        figures = scale_report.scaling_json([sqlite, one, two], 2)
        self.assertEqual(figures["scaling_ratio"]["measured"], 1.1)
        # one: min(2000 / (0.6 + 0.5 + 0.3), 1000 / 0.6) = 1428.6;
        # two: min(2000 / (0.6 + 0.5 + 0.273), 2000 / 0.6) = 1457.0
        self.assertEqual(figures["scaling_ratio"]["reachable_here"], 1.02)
        self.assertEqual(
            figures["scaling_ratio"]["held_by"],
            [scale_report.CORES, scale_report.CORES],
        )
        self.assertEqual(figures["postgres_ratio"]["measured"], 0.667)
        rows = scale_report.scaling_rows([sqlite, one, two], 2, 5000.0)
        name, value, _, note = rows[-2]
        self.assertEqual((name, value), ("postgres x 2 / postgres x 1", "1.10"))
        self.assertIn("missed", note)
        self.assertIn("out of reach here by arithmetic", note)


class ServerGroupTests(SynchronousTestCase):
    """
    The data folders and command lines of several processes.
    """

    def test_shared_port(self):
        """
        Several processes share the first one's port with reusePort, each
        with a data folder of its own and the store's URI.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        setups = prepare_group(folder, 3, URI)
        self.assertEqual(len({setup.data for setup in setups}), 3)
        self.assertEqual({setup.port for setup in setups}, {setups[0].port})
        argv = twistd_argv(setups[1], 5.0)
        listen = argv[argv.index("--listen") + 1]
        self.assertTrue(listen.startswith(f"ssl:{setups[0].port}:interface=127.0.0.1"))
        self.assertTrue(listen.endswith(":reusePort=yes"))
        self.assertEqual(argv[argv.index("--store") + 1], URI)

    def test_own_ports(self):
        """
        As two hosts, each process has a port of its own, not shared.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        setups = prepare_group(folder, 2, URI, OWN_PORTS)
        self.assertNotEqual(setups[0].port, setups[1].port)
        self.assertNotIn("reusePort", " ".join(twistd_argv(setups[0], 5.0)))

    def test_one_sqlite_process(self):
        """
        One process on SQLite gets no --store; several are refused.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        (setup,) = prepare_group(folder, 1, None)
        self.assertNotIn("--store", twistd_argv(setup, 5.0))
        self.assertRaises(ValueError, prepare_group, folder, 2, None)

    def test_master_key(self):
        """
        Every data folder gets the first one's master key, read-only.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        setups = prepare_group(folder, 2, URI)
        with open(os.path.join(setups[0].data, MASTER_KEY_FILE), "wb") as handle:
            handle.write(b"k" * 32)
        share_master_key(setups)
        copy = os.path.join(setups[1].data, MASTER_KEY_FILE)
        with open(copy, "rb") as handle:
            self.assertEqual(handle.read(), b"k" * 32)
        self.assertEqual(stat.S_IMODE(os.stat(copy).st_mode), 0o400)


def _failover(lost: int = 0, alerts: dict | None = None) -> FailoverResult:
    return FailoverResult(
        endpoints=4,
        connected=4,
        interval=10.0,
        seeding_seconds=0.1,
        connect_seconds=1.0,
        cut=2,
        after=Measurement(
            count=4, seconds=12.0, server_cpu=0.3, generator_cpu=0.2,
            latencies=(1.0, 2.0, 4.0, 9.0),
        ),
        cut_again=(2.0, 4.0),
        all_again_seconds=9.0,
        retries={"failover": 6},
        blacklisted=0,
        keys_current=4 - lost,
        keys_previous=0,
        keys_lost=lost,
        alerts=alerts or {},
    )


class FailoverTests(SynchronousTestCase):
    """
    Which server each endpoint tries first, the database it asks for, and
    the failover report.
    """

    def test_server_order(self):
        """
        Even endpoints try the first server first, odd ones the second,
        so each server holds half the fleet.
        """
        self.assertEqual(server_order(0, 2021, 2022), [2021, 2022])
        self.assertEqual(server_order(7, 2021, 2022), [2022, 2021])
        self.assertEqual(server_name(2021), "127.0.0.1:2021")

    def test_report(self):
        """
        The report gives the time until the last endpoint rotated again,
        the moved endpoints' times, and judges keys and alerts on 0.
        """
        figures = scale_report.failover_json(_failover())
        self.assertEqual(
            (figures["all_again_seconds"], figures["moved_again_max_s"]), (9.0, 4.0)
        )
        self.assertEqual((figures["keys_lost"], figures["false_alerts"]), (0, 0))
        notes = {row[0]: row[3] for row in scale_report.failover_rows(_failover(), 2)}
        self.assertIn("target 0: met", notes["keys lost"])
        self.assertIn("target 0: met", notes["false alerts"])

    def test_false_alerts(self):
        """
        clone_suspected, reconnect_failed and blacklisted alerts count as
        false alerts; other alerts are shown but not counted.
        """
        result = _failover(
            lost=1, alerts={"clone_suspected": 1, "blacklisted": 1, "rate_limited": 3}
        )
        figures = scale_report.failover_json(result)
        self.assertEqual(figures["false_alerts"], 2)
        notes = {row[0]: row[3] for row in scale_report.failover_rows(result, 2)}
        self.assertIn("target 0: missed", notes["keys lost"])
        self.assertIn("3x rate_limited", notes["false alerts"])

    def test_database_sized(self):
        """
        The scenario asks for a PostgreSQL server with room for the
        processes it starts, as the rotation scenario does for its own.
        """
        asked = []

        def opened(store, processes):
            asked.append((store, processes))

        class Started(Exception):
            pass

        def started(*args, **kwargs):
            raise Started()

        self.patch(run, "open_database", opened)
        self.patch(run, "run_failover", started)
        self.patch(sys, "stderr", io.StringIO())
        ran = Deferred.fromCoroutine(
            run._run_failover(MemoryReactor(), self.mktemp(), parse(["failover"]))
        )
        self.failureResultOf(ran, Started)
        self.assertEqual(asked, [(database.POSTGRES, failover.PROCESSES)])
        self.assertEqual(failover.PROCESSES, 2)
