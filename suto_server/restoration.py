# -*- test-case-name: tests.test_restoration -*-
"""
Putting a set of files back into the data folder as one: all of them, or
none.

A restore replaces the store, the master key and the TLS files.  They
only work together: a restored store beside the old master key holds
keys nobody can open, so every enrolled device would have to enroll
again.  Files are renamed into place one at a time, so a power cut
between two renames would leave such a mix.  Hence a journal, the way a
database commits: every file is first written into the hidden folder
C{.restore} of the data folder, then the list of names (the manifest) is
written atomically, which is the commit point; only then are the files
renamed into place.  Whoever takes the data folder's lock next (the
daemon at its start, or the next C{suto-admin restore}) calls
L{finish_restore}: a journal without its manifest was never committed and
is thrown away, leaving the old set whole; one with its manifest is
carried through, leaving the new set whole.
"""

from __future__ import annotations

import os
import shutil

from suto_server.core.atomicfile import sync_directory, write_atomically
from suto_server.datafolder import DATABASE_FILE

#: The journal's folder in the data folder.
JOURNAL = ".restore"

#: The journal's commit record: the names to move into place, one a line.
MANIFEST = "manifest"

#: The store's own companions: a write-ahead log left by a daemon that
#: stopped uncleanly belongs to the store it was written for, never to a
#: restored one.
_STORE_COMPANIONS = (f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm")


def restore_files(data: str, files: dict[str, tuple[str, int]]) -> None:
    """
    Replace files of the data folder C{data} as one set.  The caller
    holds the data folder's lock.

    @param files: for each name to put into C{data}, the path to copy it
        from and the mode it gets.
    @raise OSError: a file could not be written; the old set is whole,
        unless the failure came after the commit point, in which case the
        next L{finish_restore} completes the new set.
    """
    finish_restore(data)
    journal = os.path.join(data, JOURNAL)
    os.mkdir(journal, 0o700)
    try:
        for name, (source, mode) in files.items():
            with open(source, "rb") as handle:
                write_atomically(os.path.join(journal, name), handle.read(), mode)
        write_atomically(
            os.path.join(journal, MANIFEST),
            "".join(f"{name}\n" for name in files).encode("utf-8"),
        )
    except BaseException:
        shutil.rmtree(journal, ignore_errors=True)
        raise
    finish_restore(data)


def _file_name(name: str) -> str:
    """
    @return: C{name}, a plain file name of the data folder.
    @raise OSError: it names anything else (a damaged manifest), which
        must not move a file out of the journal to another place.
    """
    if os.path.basename(name) != name or name.startswith("."):
        raise OSError(f"the restore journal names {name!r}, not a file of the data folder")
    return name


def finish_restore(data: str) -> bool:
    """
    Settle a restore left in the data folder C{data} by a crash: carry a
    committed one through, throw an uncommitted one away.  The caller
    holds the data folder's lock.

    @return: whether a committed restore was carried through.
    """
    journal = os.path.join(data, JOURNAL)
    if not os.path.isdir(journal):
        return False
    manifest = os.path.join(journal, MANIFEST)
    committed = os.path.isfile(manifest)
    if committed:
        with open(manifest, encoding="utf-8") as handle:
            names = [_file_name(line.strip()) for line in handle if line.strip()]
        for name in names:
            staged = os.path.join(journal, name)
            if not os.path.exists(staged):
                continue  # moved before the crash
            if name == DATABASE_FILE:
                for companion in _STORE_COMPANIONS:
                    if os.path.exists(os.path.join(data, companion)):
                        os.unlink(os.path.join(data, companion))
            os.rename(staged, os.path.join(data, name))
        sync_directory(data)
    shutil.rmtree(journal)
    sync_directory(data)
    return committed
