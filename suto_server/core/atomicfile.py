# -*- test-case-name: tests.core.test_atomicfile -*-
"""
Crash-safe file replacement: a reader sees the old contents or the new,
never a torn file, and the new contents survive a power cut once the call
returns.
"""

import errno
import os
import tempfile


def write_atomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """
    Replace C{path} with C{data}: write a temporary file in the same folder
    (created with C{mode}, so the data is never readable by others even for
    a moment), fsync it, rename it over C{path}, and fsync the folder so
    the rename itself is durable.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    sync_directory(directory)


def sync_directory(path: str) -> None:
    """
    Flush a folder's entries to disk, so that a new name in it (a rename,
    a link) survives a power cut.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        # Some file systems cannot sync a directory; the data itself is
        # already on disk there, so only real I/O errors count.
        if error.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
