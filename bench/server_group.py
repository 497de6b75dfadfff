"""
Several C{twistd suto} processes serving one fleet, as README's "Several
processes and hosts" runs them: one PostgreSQL store, one master key
(copied into each process's own data folder, whose lock admits one
process), one certificate, and either one port shared with
C{reusePort=yes} (N processes on one host: the kernel spreads the
connections) or a port each (as several hosts are: the agents are told
every address and fail over between them).

One process on the data folder's SQLite file is the group of one the
other scenarios have always run.
"""

from __future__ import annotations

import os
import shutil

from twisted.internet.defer import gatherResults, inlineCallbacks

from bench.admin_client import AdminClient
from bench.children import Child, while_running
from bench.suto_server_process import (
    ServerSetup,
    free_port,
    make_identity,
    start_server,
    wait_until_serving,
)
from suto_server.datafolder import MASTER_KEY_FILE, prepare_data_folder

#: How the processes of a group listen.
SHARED_PORT = "shared"
OWN_PORTS = "own"


def prepare_group(
    directory: str, processes: int, store: str | None, ports: str = SHARED_PORT
) -> list[ServerSetup]:
    """
    Make the data folders of C{processes} servers in C{directory} (the
    first is C{data}, the others C{data-2}, ...) and their certificate.

    @param store: the PostgreSQL URI they share, or L{None} for the first
        data folder's SQLite file (one process only).
    @param ports: L{SHARED_PORT} or L{OWN_PORTS}.
    @raise ValueError: several processes without a shared store.
    """
    if processes > 1 and store is None:
        raise ValueError("several server processes need a PostgreSQL store")
    first = prepare_data_folder(os.path.join(directory, "data"))
    identity = make_identity(first)
    port = free_port()
    reuse = processes > 1 and ports == SHARED_PORT
    setups = [ServerSetup(first, identity, port, store, reuse)]
    for number in range(2, processes + 1):
        data = prepare_data_folder(os.path.join(directory, f"data-{number}"))
        setups.append(
            ServerSetup(
                data, identity, port if ports == SHARED_PORT else free_port(),
                store, reuse,
            )
        )
    return setups


def share_master_key(setups: list[ServerSetup]) -> None:
    """
    Copy the first data folder's master key (made when the store was
    seeded) into the others, read-only as C{install -m 400} leaves it.
    """
    source = os.path.join(setups[0].data, MASTER_KEY_FILE)
    for setup in setups[1:]:
        target = os.path.join(setup.data, MASTER_KEY_FILE)
        shutil.copyfile(source, target)
        os.chmod(target, 0o400)


class ServerGroup:
    """
    The running processes of a group, each with its admin client.

    @ivar children: the processes, in the order of their setups.
    """

    def __init__(self, reactor, setups: list[ServerSetup], children: list[Child]):
        self._reactor = reactor
        self.setups = setups
        self.children = children
        self.admins = [AdminClient(reactor, setup.admin_socket, 1) for setup in setups]

    @classmethod
    def start(
        cls, reactor, setups: list[ServerSetup], auth_timeout: float,
        options: tuple[str, ...] = (),
    ) -> ServerGroup:
        """
        Start one C{twistd -n suto} per setup, with more C{options}.
        """
        children = [
            start_server(reactor, setup, auth_timeout, options=options)
            for setup in setups
        ]
        for number, child in enumerate(children[1:], 2):
            child.name = f"the SUTO server {number}"
        return cls(reactor, setups, children)

    @property
    def pids(self) -> list[int]:
        """
        The pids of the processes still running.
        """
        return [child.pid for child in self.children if not child.exited]

    @inlineCallbacks
    def wait_until_serving(self, timeout: float):
        """
        Wait until every process answers on its admin socket.

        @raise ChildFailed: (through the L{Deferred}) one exited or did
            not answer in time.
        """
        yield gatherResults(
            [
                wait_until_serving(self._reactor, admin, child, timeout)
                for admin, child in zip(self.admins, self.children)
            ],
            consumeErrors=True,
        )

    def watch(self, work):
        """
        @return: C{work}, failing at once should a running process exit
            first (L{while_running}).
        """
        for child in self.children:
            if not child.exited:
                work = while_running(child, work)
        return work

    def kill(self, index: int) -> None:
        """
        Kill process C{index} at once (SIGKILL), as a host's death would.
        """
        self.children[index].transport.signalProcess("KILL")

    @inlineCallbacks
    def stop(self):
        """
        Close the admin clients and stop every process.
        """
        yield gatherResults([admin.close() for admin in self.admins])
        yield gatherResults([child.stop(self._reactor) for child in self.children])
