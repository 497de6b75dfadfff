# -*- test-case-name: tests.store.postgres.test_session -*-
"""
Tests for L{suto_server.store.postgres.session}: the bounds every
connection to PostgreSQL gets, on a real server, and the operator's own
settings winning over them.
"""

import os
import resource
import urllib.parse

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from suto_server.store.errors import StoreError
from suto_server.store.postgres import PostgresStore
from suto_server.store.postgres.session import (
    CLIENT_DEFAULTS,
    SESSION_DEFAULTS,
    as_store_error,
    client_settings,
    connect,
    usable,
)
from tests.support.postgres import admin_connection, new_location

#: The descriptors C{select} takes: those of a process holding a fleet's
#: connections are above it.
_SELECT_LIMIT = 1024


def _settings(connection, names):
    """
    @return: the server's setting of each of C{names} for C{connection}'s
        session, by name.
    """
    return {
        name: connection.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
        for name in names
    }


def _restore(name, value):
    """
    Give the environment variable C{name} back its C{value} (L{None}:
    unset).
    """
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


class ClientSettingsTests(SynchronousTestCase):
    """
    The libpq parameters SUTO adds to a URI.
    """

    def test_defaults(self):
        """
        A URI that sets none of them gets them all.
        """
        self.assertEqual(client_settings("postgresql://db/suto", {}), CLIENT_DEFAULTS)

    def test_uri_wins(self):
        """
        What the URI sets, with one host or several, is left to it.
        """
        settings = client_settings(
            "postgresql://db1,db2/suto?target_session_attrs=read-write"
            "&connect_timeout=2&keepalives=0",
            {},
        )
        self.assertNotIn("connect_timeout", settings)
        self.assertNotIn("keepalives", settings)
        self.assertEqual(settings["tcp_user_timeout"], "10000")

    def test_environment_wins(self):
        """
        C{PGCONNECT_TIMEOUT}, which libpq reads, is left to libpq.
        """
        settings = client_settings("postgresql://db/suto", {"PGCONNECT_TIMEOUT": "9"})
        self.assertNotIn("connect_timeout", settings)


class SessionTests(SynchronousTestCase):
    """
    The settings of a connection on a real server.
    """

    def setUp(self):
        self.location = new_location(self)

    def connect(self, location=None, **kwargs):
        connection = connect(location or self.location, **kwargs)
        self.addCleanup(connection.close)
        return connection

    def test_session_defaults(self):
        """
        A connection to a server configured with PostgreSQL's defaults
        gets SUTO's bounds, on the server's side and on libpq's, and no
        statement timeout unless asked for one.
        """
        connection = self.connect()
        settings = _settings(connection, SESSION_DEFAULTS)
        self.assertEqual(settings["lock_timeout"], "10s")
        self.assertEqual(settings["idle_in_transaction_session_timeout"], "1min")
        self.assertEqual(
            _settings(connection, ["statement_timeout"]), {"statement_timeout": "0"}
        )
        parameters = connection.info.get_parameters()
        for name in ("connect_timeout", "keepalives_idle", "tcp_user_timeout"):
            self.assertEqual(parameters[name], CLIENT_DEFAULTS[name])
        self.assertEqual(
            _settings(self.connect(statement_timeout="5s"), ["statement_timeout"]),
            {"statement_timeout": "5s"},
        )

    def test_operator_wins(self):
        """
        A setting the URI's C{options} give, and a libpq parameter it
        gives, are kept.
        """
        extra = urllib.parse.quote("-c lock_timeout=3s -c statement_timeout=7s ")
        location = self.location.replace(
            "&options=", f"&connect_timeout=2&options={extra}"
        )
        connection = self.connect(location, statement_timeout="5s")
        self.assertEqual(
            _settings(connection, ["lock_timeout", "statement_timeout"]),
            {"lock_timeout": "3s", "statement_timeout": "7s"},
        )
        self.assertEqual(connection.info.get_parameters()["connect_timeout"], "2")

    def test_read_only(self):
        """
        A read-only connection gets the bounds too.
        """
        connection = self.connect(read_only=True)
        self.assertEqual(
            _settings(connection, ["lock_timeout", "default_transaction_read_only"]),
            {"lock_timeout": "10s", "default_transaction_read_only": "on"},
        )

    def test_read_only_keeps_environment(self):
        """
        A read-only connection (a C{store copy}'s source, the reports)
        keeps the options C{PGOPTIONS} gives when the URI gives none: its
        search path names the store's schema.
        """
        uri, options = self.location.split("&options=")
        options = urllib.parse.unquote(options)
        previous = os.environ.get("PGOPTIONS")
        os.environ["PGOPTIONS"] = options
        self.addCleanup(_restore, "PGOPTIONS", previous)
        connection = self.connect(uri, read_only=True)
        self.assertEqual(
            _settings(connection, ["search_path", "default_transaction_read_only"]),
            {
                "search_path": options.split("=")[1],
                "default_transaction_read_only": "on",
            },
        )

    def above_select_limit(self):
        """
        Hold open descriptors (closed after the test) until the next one
        opened is above L{_SELECT_LIMIT}, as in a server holding a fleet.

        @raise SkipTest: this process may not open that many.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = _SELECT_LIMIT + 64
        if soft < wanted:
            if hard != resource.RLIM_INFINITY and hard < wanted:
                raise SkipTest(f"this process may open only {hard} files")
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        held = []
        self.addCleanup(lambda: [os.close(fd) for fd in held])
        while not held or held[-1] < _SELECT_LIMIT:
            held.append(os.open(os.devnull, os.O_RDONLY))

    def test_usable_above_select_limit(self):
        """
        A connection whose descriptor is above what C{select} takes is
        usable while its session lives (it is not opened again at every
        call), and not once the server ended the session.
        """
        self.above_select_limit()
        connection = self.connect()
        self.assertGreater(connection.fileno(), _SELECT_LIMIT)
        self.assertTrue(usable(connection))
        # Returns once the session's process has ended, its last words
        # sent and its socket closed.
        admin_connection().execute(
            "SELECT pg_terminate_backend(%s, 10000)", (connection.info.backend_pid,)
        )
        self.assertFalse(usable(connection))

    def test_store_keeps_bounds(self):
        """
        The store's connection keeps the lock timeout once the schema is
        ready (its preparation waits for the schema lock without one).
        """
        store = PostgresStore.open(self.location)
        self.addCleanup(store.close)
        self.assertEqual(
            _settings(store._connection, ["lock_timeout"]), {"lock_timeout": "10s"}
        )

    def test_snapshot_may_idle(self):
        """
        A read-only snapshot (C{audit verify}, the source of a C{store
        copy}, which streams each table to the destination between two
        reads) is not ended after SUTO's minute idle in its transaction:
        it holds no row lock, and the destination's writes may take
        longer.  A transaction that writes keeps the bound, and an
        operator's own setting holds in the snapshot too.
        """
        name = "idle_in_transaction_session_timeout"
        store = PostgresStore.open(self.location)
        self.addCleanup(store.close)
        with store._transaction("reading", snapshot=True):
            self.assertEqual(_settings(store._connection, [name]), {name: "0"})
        with store._transaction("writing"):
            self.assertEqual(_settings(store._connection, [name]), {name: "1min"})
        extra = urllib.parse.quote(f"-c {name}=5min ")
        own = PostgresStore.open(
            self.location.replace("&options=", f"&options={extra}")
        )
        self.addCleanup(own.close)
        with own._transaction("reading", snapshot=True):
            self.assertEqual(_settings(own._connection, [name]), {name: "5min"})

    def test_detail_left_out(self):
        """
        A server's error becomes a L{StoreError} with its primary message
        only: its detail, which may quote the row it refused (a sealed key,
        a hash), stays out of the message and so out of the log.
        """
        connection = self.connect()
        with self.assertRaises(StoreError) as raised:
            with as_store_error("writing to the store"):
                connection.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'row refused'"
                    " USING DETAIL = 'Failing row contains (sealed-key-bytes)';"
                    " END $$"
                )
        self.assertEqual(
            str(raised.exception), "writing to the store failed: row refused"
        )

    def test_refused(self):
        """
        A server that refuses the connection is a L{StoreError}.
        """
        self.assertRaises(
            StoreError, connect, "postgresql://suto@/suto?host=/nonexistent"
        )
