"""
The SUTO server under test, run as the operator runs it: C{twistd -n suto}
in a process of its own, with a data folder prepared beforehand (accounts
in its store, a self-signed ECDSA P-256 certificate), its TLS listener on
a free loopback port and its admin socket in the data folder.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from dataclasses import dataclass

from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import quoteStringArgument
from twisted.internet.task import deferLater

from bench.children import Child, python_argv, spawn
from suto_server.core import schemes
from suto_server.datafolder import ADMIN_SOCKET, DATABASE_FILE, prepare_data_folder
from suto_server.net import certificate
from suto_server.store.sqlite import SQLiteStore

#: The name the server sends in its hellos and puts in its certificate.
HOSTNAME = "bench"

#: The address the server under test listens on.
SERVER_ADDRESS = "127.0.0.1"

#: Seconds between two looks at whether the server answers yet.
_POLL_INTERVAL = 0.1

# twistd's own entry point, run by this Python, so the server imports the
# same SUTO and Twisted as the benchmark.
_TWISTD = ("-c", "from twisted.scripts.twistd import run; run()")


@dataclass(frozen=True)
class Identity:
    """
    The server's TLS identity.

    @ivar key: path of the private key.
    @ivar cert: path of the certificate.
    @ivar pin: the certificate's SHA-256 fingerprint, as agents pin it.
    """

    key: str
    cert: str
    pin: str


def make_identity(directory: str) -> Identity:
    """
    Make a self-signed ECDSA P-256 certificate in C{directory}, as the
    server makes its own on first start.
    """
    key, cert, _ = certificate.ensure_self_signed(
        directory, HOSTNAME, datetime.datetime.now(datetime.timezone.utc)
    )
    with open(cert, "rb") as handle:
        pin = certificate.describe(handle.read()).fingerprint
    return Identity(key, cert, pin)


def free_port() -> int:
    """
    @return: a TCP port on 127.0.0.1 that nothing listens on right now
        (twistd takes a fixed port, so it is chosen before the start).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((SERVER_ADDRESS, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ServerSetup:
    """
    A prepared data folder and how to reach the server that will use it.

    @ivar data: the data folder.
    @ivar identity: its TLS identity.
    @ivar port: the TLS listener's port on 127.0.0.1.
    @ivar store: the C{--store} URI of a PostgreSQL store, or L{None} for
        the data folder's SQLite file.
    @ivar reuse_port: whether the listener shares its port with other
        processes (C{reusePort=yes}).
    """

    data: str
    identity: Identity
    port: int
    store: str | None = None
    reuse_port: bool = False

    @property
    def admin_socket(self) -> str:
        return os.path.join(self.data, ADMIN_SOCKET)

    @property
    def log_file(self) -> str:
        return os.path.join(self.data, "suto.log")


def prepare_server(directory: str, passwords: dict[str, str]) -> ServerSetup:
    """
    Create the data folder C{directory} with one sha512-crypt account per
    entry of C{passwords}, and a certificate.

    @param passwords: user name to password.
    """
    data = prepare_data_folder(directory)
    store = SQLiteStore.open(os.path.join(data, DATABASE_FILE))
    try:
        for user, password in passwords.items():
            store.add_user(
                user, schemes.hash_password(password, "sha512_crypt"), time.time()
            )
    finally:
        store.close()
    return ServerSetup(data, make_identity(data), free_port())


def twistd_argv(
    setup: ServerSetup,
    auth_timeout: float,
    profile: str | None = None,
    options: tuple[str, ...] = (),
) -> list[str]:
    """
    The command line of the server under test.

    @param profile: if given, where twistd writes a cProfile of the
        server's reactor thread.
    @param options: more options of C{twistd suto}, after the usual ones.
    """
    listen = (
        f"ssl:{setup.port}:interface={SERVER_ADDRESS}"
        f":privateKey={quoteStringArgument(setup.identity.key)}"
        f":certKey={quoteStringArgument(setup.identity.cert)}"
    )
    if setup.reuse_port:
        listen += ":reusePort=yes"
    if setup.store is not None:
        options = ("--store", setup.store, *options)
    profiling = []
    if profile is not None:
        profiling = ["--profile", profile, "--profiler", "cprofile", "--savestats"]
    return python_argv(
        *_TWISTD,
        "--nodaemon",
        "--pidfile", os.path.join(setup.data, "twistd.pid"),
        "--logfile", setup.log_file,
        *profiling,
        "suto",
        "--data", setup.data,
        "--listen", listen,
        "--hostname", HOSTNAME,
        "--hello-interface", "127.0.0.1",
        "--auth-timeout", str(auth_timeout),
        *options,
    )


def start_server(
    reactor,
    setup: ServerSetup,
    auth_timeout: float,
    profile: str | None = None,
    options: tuple[str, ...] = (),
) -> Child:
    """
    Start C{twistd -n suto} on C{setup}, with more C{options} if given.
    """
    return spawn(
        reactor,
        "the SUTO server",
        twistd_argv(setup, auth_timeout, profile, options),
        log_file=setup.log_file,
    )


@inlineCallbacks
def wait_until_serving(reactor, admin, server: Child, timeout: float):
    """
    Wait until the server answers on its admin socket.

    @param admin: an L{bench.admin_client.AdminClient} for that server.
    @raise ChildFailed: (through the L{Deferred}) the server exited, or
        did not answer within C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout
    while reactor.seconds() < deadline:
        if server.exited:
            break
        try:
            code, _ = yield admin.status()
        except Exception:
            code = None
        if code == 200:
            return
        yield deferLater(reactor, _POLL_INTERVAL)
    raise server.failure(
        "exited" if server.exited else f"did not answer in {timeout:g} s"
    )
