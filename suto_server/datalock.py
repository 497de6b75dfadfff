# -*- test-case-name: tests.test_datalock -*-
"""
One server per data folder.

Two servers on one folder would share its store, its master key and its
admin socket, and each would believe it alone decides what the store
says.  So a server takes an exclusive C{flock} on the file C{suto.lock}
in its data folder before it opens anything else there, and keeps it
while it runs: the lock goes with the process (a crashed server leaves no
stale lock behind, and a daemonizing fork keeps it), and a second server
finds it held and stops at start.  The file also says which process holds
it, so the refusal can name that process.  C{suto-admin} takes no lock:
its store commands are made to run beside the daemon.
"""

from __future__ import annotations

import fcntl
import os

from twisted.application.service import Service

#: The lock file's name in the data folder.
LOCK_FILE = "suto.lock"


class DataFolderLocked(Exception):
    """
    Another process holds the data folder's lock.

    @ivar folder: the data folder.
    @ivar pid: the process holding it, as its lock file says, or L{None}
        when the file names none.
    """

    def __init__(self, folder: str, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        holder = "another server" if pid is None else f"the server with pid {pid}"
        super().__init__(f"the data folder {folder} is in use by {holder}")


def is_held(folder: str) -> bool:
    """
    @return: whether a process holds the C{flock} a running daemon keeps on
        the lock file of the data folder C{folder}; probed with a shared
        lock, let go at once, and without making the file.
    """
    try:
        fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class DataFolderLock(Service):
    """
    The held lock of one data folder, as a service of the server using
    it: the lock file names the serving process once it starts (after
    twistd has daemonized), and the lock is let go when it stops.
    """

    name = "data folder lock"

    def __init__(self, folder: str, handle) -> None:
        self.folder = folder
        self._handle = handle

    @classmethod
    def acquire(cls, folder: str) -> DataFolderLock:
        """
        Lock C{folder} for this process.

        @raise DataFolderLocked: another process holds it.
        @raise OSError: the lock file cannot be opened.
        """
        fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        handle = os.fdopen(fd, "r+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(handle)
            handle.close()
            raise DataFolderLocked(folder, pid) from None
        lock = cls(folder, handle)
        lock._write_pid()
        return lock

    def _write_pid(self) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{os.getpid()}\n")
        self._handle.flush()

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._write_pid()

    def stopService(self) -> None:
        super().stopService()
        self.release()

    def release(self) -> None:
        """
        Let the folder go (closing the file drops the lock).
        """
        self._handle.close()


def _read_pid(handle) -> int | None:
    handle.seek(0)
    text = handle.read(32).strip()
    return int(text) if text.isdigit() else None
