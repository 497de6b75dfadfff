"""
The store a fleet scenario's servers share, and what the database did for
it.

C{--store} names it: C{sqlite} (the default: each server's data folder
holds its SQLite file, so one process only), C{postgres} (a PostgreSQL
server of the run's own, L{bench.postgres_server}, with a fresh database
for each fleet), or the C{postgresql://} URI of an empty database the
operator made.

Over PostgreSQL the database's own counters say what each rotation cost
it, read at the start and the end of the measured phase:

  - transactions: C{pg_stat_database.xact_commit + xact_rollback} of the
    fleet's database.  A backend adds its counts to these when it goes
    idle, but a backend kept busy holds them back for up to ten seconds
    (measured: 4 of 50 transactions visible after 1.2 s, all 51 after
    11 s), so a short phase reads them high or low; the statements
    below say more over phases under a minute;
  - statements: the calls C{pg_stat_statements} counted in that database
    (BEGIN and COMMIT included: C{track_utility} is on), each one round
    trip from a store's connection unless it was sent in a pipeline.  A
    server of the run's own preloads the extension; on an operator's
    server it is read if the extension is there, and left out if not;
  - CPU: of the PostgreSQL server's processes (the postmaster and its
    children), on a server of the run's own.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import urllib.parse
from dataclasses import dataclass

from bench.cpu import process_cpu_seconds
from bench.holdings import proportional_bytes
from bench.postgres_server import NO_SERVER, StartedServer, start_server
from suto_server.store.dbthread import POOL_SIZE
from suto_server.store.open import is_postgres

#: The C{--store} of the default, a SQLite file per data folder.
SQLITE = "sqlite"

#: The C{--store} asking for a PostgreSQL server of the run's own.
POSTGRES = "postgres"

#: The extension counting statements, preloaded into a server of our own.
_STATEMENTS = "pg_stat_statements"

#: Connections one server process holds to its store: the pool's threads,
#: the ordered thread's, the reactor thread's, the leader lock's and the
#: notices' (L{suto_server.store.dbthread}).
CONNECTIONS_PER_PROCESS = POOL_SIZE + 4

#: Connections a server of our own keeps besides the server processes':
#: the bench's own, and PostgreSQL's reserved superuser slots (3).
SPARE_CONNECTIONS = 20

#: PostgreSQL's own default C{max_connections}, never lowered.
DEFAULT_MAX_CONNECTIONS = 100


def max_connections(processes: int) -> int:
    """
    @return: the C{max_connections} a server of our own is given for
        C{processes} server processes: their connections twice over (a
        process that restarts opens its sessions before the old ones are
        gone), and L{SPARE_CONNECTIONS}; PostgreSQL's default at least.
    """
    return max(
        DEFAULT_MAX_CONNECTIONS,
        2 * processes * CONNECTIONS_PER_PROCESS + SPARE_CONNECTIONS,
    )


class DatabaseUnavailable(Exception):
    """
    The PostgreSQL store asked for cannot be had here.
    """


def store_option(text: str) -> str:
    """
    Check a C{--store}.

    @return: C{text}: L{SQLITE}, L{POSTGRES} or a C{postgresql://} URI.
    @raise ValueError: it is none of these.
    """
    if text in (SQLITE, POSTGRES) or is_postgres(text):
        return text
    raise ValueError(
        f"must be {SQLITE}, {POSTGRES} (a server of the run's own) or a "
        f"postgresql:// URI"
    )


@dataclass(frozen=True)
class DatabaseUse:
    """
    What the database did over a phase; L{None} where it was not read.

    @ivar transactions: transactions committed or rolled back.
    @ivar statements: statements executed.
    @ivar cpu: CPU seconds of the database server's processes.
    """

    transactions: int
    statements: int | None
    cpu: float | None

    def __sub__(self, earlier: DatabaseUse) -> DatabaseUse:
        return DatabaseUse(
            self.transactions - earlier.transactions,
            _minus(self.statements, earlier.statements),
            _minus(self.cpu, earlier.cpu),
        )

    def per(self, count: int) -> DatabaseUse | None:
        """
        @return: these figures per one of C{count} operations (L{None}
            for none), the CPU in milliseconds.
        """
        if count <= 0:
            return None
        return DatabaseUse(
            self.transactions / count,
            None if self.statements is None else self.statements / count,
            None if self.cpu is None else 1000.0 * self.cpu / count,
        )


def _minus(later, earlier):
    return None if later is None or earlier is None else later - earlier


def database_name(uri: str) -> str:
    """
    @return: the database a libpq URI names (its path), or the user's
        name as libpq defaults to, or C{postgres}.
    """
    parts = urllib.parse.urlsplit(uri)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    return name or parts.username or "postgres"


def with_database(uri: str, name: str) -> str:
    """
    @return: C{uri} naming the database C{name} instead of its own.
    """
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def cluster_pids(postmaster: int) -> list[int]:
    """
    @return: the pid C{postmaster} and those of its children (its
        backends and background workers), as C{/proc} lists them now.
    """
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read(4096)
        except OSError:
            continue
        # The parent's pid is the second field after the parenthesised name.
        if int(stat[stat.rindex(b")") + 2 :].split()[1]) == postmaster:
            pids.append(int(entry))
    return pids


class Database:
    """
    A PostgreSQL server the fleets' stores are made on, and its counters.
    """

    def __init__(self, admin_uri: str, server: StartedServer | None) -> None:
        """
        @param admin_uri: a URI for reading the counters and making
            databases (a superuser's, on a server of our own).
        @param server: the server, if it is the run's own.
        """
        import psycopg

        self._admin_uri = admin_uri
        self._server = server
        self._connection = psycopg.connect(admin_uri, autocommit=True)
        self._names = itertools.count(1)
        self._statements = self._has_statements()

    @classmethod
    def of_our_own(cls, processes: int = 1) -> Database:
        """
        Start a server of the run's own, with C{pg_stat_statements}
        preloaded and room for the connections of C{processes} server
        processes (L{max_connections}).

        @raise DatabaseUnavailable: no server can be started here.
        """
        import psycopg

        try:
            server = start_server()
            if server is None:
                raise DatabaseUnavailable(NO_SERVER)
            with psycopg.connect(server.uri, autocommit=True) as connection:
                connection.execute(
                    f"ALTER SYSTEM SET shared_preload_libraries = '{_STATEMENTS}'"
                )
                connection.execute(
                    f"ALTER SYSTEM SET max_connections = {max_connections(processes)}"
                )
            server.restart()
        except (OSError, subprocess.SubprocessError, psycopg.Error) as error:
            raise DatabaseUnavailable(f"PostgreSQL could not be started: {error}") from None
        return cls(server.uri, server)

    def _has_statements(self) -> bool:
        if self._server is not None:
            self._connection.execute(f"CREATE EXTENSION IF NOT EXISTS {_STATEMENTS}")
        row = self._connection.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = %s", (_STATEMENTS,)
        ).fetchone()
        return bool(row[0])

    @property
    def counts_statements(self) -> bool:
        return self._statements

    def new_store(self) -> str:
        """
        @return: the URI of a new empty database on a server of our own,
            or the operator's URI (which must name an empty database, so
            it serves one fleet only).
        """
        if self._server is None:
            return self._admin_uri
        name = f"suto_bench_{next(self._names)}"
        self._connection.execute(f"CREATE DATABASE {name}")
        return with_database(self._server.uri, name)

    def use(self, store: str) -> DatabaseUse:
        """
        @param store: the URI of the fleet's database.
        @return: its counters now (since the server started).
        """
        name = database_name(store)
        transactions = self._connection.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = %s",
            (name,),
        ).fetchone()[0]
        statements = None
        if self._statements:
            statements = self._connection.execute(
                f"SELECT coalesce(sum(calls), 0) FROM {_STATEMENTS} s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
                (name,),
            ).fetchone()[0]
        return DatabaseUse(int(transactions), _int(statements), self._cpu())

    def _over_processes(self, reading) -> float | None:
        """
        @param reading: reads one figure of a process of its pid, or
            gives L{None} for one gone meanwhile.
        @return: the sum of C{reading} over the server's processes, on a
            server of our own; L{None} on an operator's.
        """
        if self._server is None:
            return None
        postmaster = self._server.postmaster_pid()
        if postmaster is None:
            return None
        readings = [reading(pid) for pid in cluster_pids(postmaster)]
        return sum(value for value in readings if value is not None)

    def _cpu(self) -> float | None:
        return self._over_processes(process_cpu_seconds)

    def memory(self) -> int | None:
        """
        @return: the bytes the server's processes hold together (their
            proportional set sizes added up, L{bench.holdings}), on a
            server of our own; L{None} on an operator's.
        """
        return self._over_processes(proportional_bytes)

    def connections(self, store: str) -> int:
        """
        @return: the connections open to the fleet's database C{store}
            now: every server process's store sessions.
        """
        return self._connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
            (database_name(store),),
        ).fetchone()[0]

    def close(self) -> None:
        self._connection.close()


def _int(value) -> int | None:
    return None if value is None else int(value)


def open_database(store: str, processes: int = 1) -> Database | None:
    """
    @param store: a checked C{--store} (L{store_option}).
    @param processes: the server processes a fleet on it will have.
    @return: the database it names, or L{None} for SQLite.
    @raise DatabaseUnavailable: it cannot be had.
    """
    if store == SQLITE:
        return None
    if store == POSTGRES:
        return Database.of_our_own(processes)
    return Database(store, None)
