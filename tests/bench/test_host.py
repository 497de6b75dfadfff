"""
What a fleet run says each process held (L{bench.holdings}), the host
rows of the rotation table (L{bench.host_report}) and the room a
PostgreSQL server of the run's own is given for several processes.

    python -m twisted.trial tests.bench.test_host
"""

from __future__ import annotations

import os
import socket

from twisted.trial.unittest import SynchronousTestCase

from bench import database, holdings, host_report
from bench.database import DatabaseUse
from bench.holdings import ServerShare
from bench.measurement import Measurement
from bench.rotation import FleetResult
from suto_server.store.dbthread import POOL_SIZE
from suto_server.store.open import open_store
from tests.support.postgres import new_location

_MB = 1024 * 1024

#: /proc/net/tcp as the kernel writes it: a header, then one socket a
#: line (local and remote address:port in hex, state, ..., inode).
_TABLE = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000     0        0 101 1 0 100 0 0 10 0\n"
    "   1: 0100007F:1F90 0201017F:9C40 01 00000000:00000000 00:00000000 "
    "00000000     0        0 102 1 0 20 4 30 10 -1\n"
    "   2: 0201017F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 "
    "00000000     0        0 103 1 0 20 4 30 10 -1\n"
    "   3: 0100007F:1F90 0301017F:9C41 06 00000000:00000000 00:00000000 "
    "00000000     0        0 104 1 0 20 4 30 10 -1\n"
    "   4: 0100007F:1F91 0401017F:9C42 01 00000000:00000000 00:00000000 "
    "00000000     0        0 105 1 0 20 4 30 10 -1\n"
)


class EstablishedTests(SynchronousTestCase):
    """
    L{holdings.established_on} finds a server's accepted connections on
    its port, and L{holdings.held_sockets} counts a process's share.
    """

    def test_table(self):
        """
        Only established sockets whose local end is the server's address
        and port count: not the listener, not the client's end (its own
        address has the same port), not one in TIME_WAIT, not another
        port's.
        """
        path = self.mktemp()
        with open(path, "w", encoding="ascii") as handle:
            handle.write(_TABLE)
        self.assertEqual(holdings.established_on("127.0.0.1", 0x1F90, path), {102})

    def test_own_process(self):
        """
        A connection this process accepted on a loopback listener is one
        of its sockets on that port; its client end is not.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        accepted, _ = listener.accept()
        self.addCleanup(accepted.close)
        inodes = holdings.established_on("127.0.0.1", port)
        self.assertEqual(holdings.held_sockets(os.getpid(), inodes), 1)
        self.assertEqual(len(inodes), 1)
        self.assertEqual(holdings.established_on("127.0.0.1", port, self.mktemp()), set())

    def test_gone(self):
        """
        A process that cannot be read holds an unknown count.
        """
        self.assertIsNone(holdings.held_sockets(2**22 + 1, {1}))

    def test_share_meter(self):
        """
        L{holdings.ShareMeter} gives each process's connections and
        memory when it was made, and its CPU since.
        """
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        port = listener.getsockname()[1]
        for _ in range(2):
            client = socket.create_connection(("127.0.0.1", port))
            self.addCleanup(client.close)
            accepted, _ = listener.accept()
            self.addCleanup(accepted.close)
        meter = holdings.ShareMeter([os.getpid()], "127.0.0.1", port, [_MB])
        sum(range(10**5))
        [share] = meter.read()
        self.assertEqual((share.connections, share.rss_before), (2, _MB))
        self.assertGreater(share.rss_after, _MB)
        self.assertGreaterEqual(share.cpu, 0.0)


class MemoryTests(SynchronousTestCase):
    """
    L{holdings.proportional_bytes} reads a process's proportional set
    size; L{holdings.summed} adds figures only when all were read.
    """

    def test_own(self):
        """
        This process's proportional set size is some megabytes.
        """
        self.assertGreater(holdings.proportional_bytes(os.getpid()), _MB)

    def test_gone(self):
        """
        A process that cannot be read has none.
        """
        self.assertIsNone(holdings.proportional_bytes(2**22 + 1))

    def test_summed(self):
        """
        A missing figure makes the sum unknown, as does having none.
        """
        self.assertEqual(holdings.summed([1, 2, 3]), 6)
        self.assertIsNone(holdings.summed([1, None]))
        self.assertIsNone(holdings.summed([]))


def _fleet(connected: int, server_cpu: float, rss_after: int) -> FleetResult:
    """
    @return: a run of two processes and two generators over 600 s.
    """
    shares = (
        ServerShare(connected // 2 + 10, 80 * _MB, rss_after // 2, server_cpu / 2),
        ServerShare(connected - connected // 2 - 10, 80 * _MB, rss_after // 2,
                    server_cpu / 2),
    )
    return FleetResult(
        endpoints=100_000,
        connected=connected,
        interval=600.0,
        seeding_seconds=8.0,
        connect_seconds=120.0,
        warmup_rotations=connected,
        warmup_errors={},
        rss_before=160 * _MB,
        rss_after=rss_after,
        generator_rss=2 * 1000 * _MB,
        generators=2,
        file_limit=20_000,
        measured=Measurement(count=100_000, seconds=600.0, server_cpu=server_cpu),
        processes=2,
        store="postgres",
        database=DatabaseUse(transactions=200_000, statements=700_000, cpu=30.0),
        shares=shares,
        generator_sizes=(1000 * _MB, 1000 * _MB),
        database_memory=300 * _MB,
        database_connections=16,
    )


class HostReportTests(SynchronousTestCase):
    """
    The host rows give each process's share and judge issue 21's target
    on the processes added up.
    """

    def test_figures(self):
        """
        Each process's connections, memory and load over the measured
        phase; PostgreSQL's load and memory; each generator's memory.
        """
        figures = host_report.host_json(_fleet(100_000, 120.0, 2000 * _MB))
        first = figures["server_processes"][0]
        self.assertEqual(first["connections"], 50_010)
        self.assertEqual(first["rss_before_mb"], 80.0)
        self.assertEqual(first["rss_after_mb"], 1000.0)
        self.assertEqual(first["load"], 0.1)
        self.assertEqual(figures["connections_held"], 100_000)
        self.assertEqual(figures["database_load"], 0.05)
        self.assertEqual(figures["database_memory_mb"], 300.0)
        self.assertEqual(figures["database_connections"], 16)
        self.assertEqual(figures["generator_rss_each_mb"], [1000.0, 1000.0])

    def test_met(self):
        """
        The whole fleet connected, 20% of a core and 2000 MB meet it.
        """
        result = _fleet(100_000, 120.0, 2000 * _MB)
        self.assertTrue(host_report.host_json(result)["host_target_met"])
        notes = {row[0]: row[3] for row in host_report.host_rows(result)}
        self.assertIn("under 25%: met", notes["host target"])
        self.assertIn("under 2560 MB: met", notes["host target"])

    def test_missed(self):
        """
        Too much memory misses it, and so does a fleet not all connected,
        whatever the CPU.
        """
        heavy = _fleet(100_000, 120.0, 3600 * _MB)
        self.assertFalse(host_report.host_json(heavy)["host_target_met"])
        notes = {row[0]: row[3] for row in host_report.host_rows(heavy)}
        self.assertIn("under 2560 MB: missed", notes["host target"])
        partial = _fleet(99_999, 60.0, 2000 * _MB)
        self.assertFalse(host_report.host_json(partial)["host_target_met"])

    def test_rows(self):
        """
        One row per process, the connections held together with the
        file check's bound, PostgreSQL's row and the generators'.
        """
        rows = {row[0]: row for row in host_report.host_rows(
            _fleet(100_000, 120.0, 2000 * _MB)
        )}
        self.assertEqual(rows["server process 2"][1], "49990")
        self.assertIn("the file check's bound for the busiest", rows["connections held"][3])
        self.assertIn("300.0 MB", rows["PostgreSQL load"][3])
        self.assertEqual(rows["generators' RSS each"][1], "1000.0, 1000.0")


class MaxConnectionsTests(SynchronousTestCase):
    """
    A PostgreSQL server of the run's own has room for every process's
    sessions.
    """

    def test_default_kept(self):
        """
        A few processes fit in PostgreSQL's default of 100.
        """
        self.assertEqual(database.max_connections(1), 100)
        self.assertEqual(database.max_connections(4), 100)

    def test_grows(self):
        """
        Sixteen processes get their sessions twice over and the spare.
        """
        self.assertEqual(
            database.max_connections(16),
            2 * 16 * (POOL_SIZE + 4) + database.SPARE_CONNECTIONS,
        )

    def test_counted(self):
        """
        A store's sessions show among the connections to its database.
        """
        location = new_location(self)
        found = database.Database(location, None)
        self.addCleanup(found.close)
        before = found.connections(location)
        store = open_store(location)
        self.addCleanup(store.close)
        self.assertGreater(found.connections(location), before)
        self.assertIsNone(found.memory())
