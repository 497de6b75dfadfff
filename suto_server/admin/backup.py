# -*- test-case-name: tests.admin.test_backup -*-
"""
C{suto-admin init|backup|restore}: the data folder as a whole.

C{init} is, with the daemon's first start, the only way a data folder
and its store come to be (C{restore} puts back one that was lost): every
other command refuses a folder, or a store, that is not there, so a
command run in the wrong directory fails instead of making an empty
server there.

A server is its store, its master key (every enrolled profile's key is
sealed with it: a store without its key is a store of dead profiles) and
its TLS key and certificate (the agents pin the certificate).  C{backup}
copies all of them while the daemon runs: the store through SQLite's
online backup API, so the copy holds what is still in the write-ahead
log, which a plain C{cp} of the file misses.  The copy is made in a
hidden folder beside the destination and renamed to it once complete, so
a destination that exists is a whole backup.  C{restore} checks a backup
(its audit chain, and that its master key opens its profiles' keys)
before it replaces anything, refuses while the daemon runs, and
replaces the files as one set (L{suto_server.restoration}), so a crash
halfway never leaves a store beside another server's master key.

A PostgreSQL store (C{--store}) is its server's to copy: SQLite's backup
API does not reach it, so C{backup} and C{restore} refuse it, pointing
to C{pg_dump} and C{pg_restore}; C{init} creates its schema there, and
the master key in the data folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from suto_server.admin.client import DaemonUnreachable, call
from suto_server.admin.reports import read_only_store
from suto_server.core.atomicfile import sync_directory, write_atomically
from suto_server.core.commandline import CommandError
from suto_server.datafolder import (
    DATABASE_FILE,
    MASTER_KEY_FILE,
    existing_store,
    prepare_data_folder,
)
from suto_server.restoration import restore_files
from suto_server.store.errors import StoreError

#: The data folder's files besides the store that a backup holds: the
#: master key, and the generated TLS key and certificate (the names of
#: L{suto_server.net.certificate}, which loads the cryptography package).
KEY_FILES = (MASTER_KEY_FILE, "server.key", "server.crt")

def _master_key(path: str):
    """
    @return: the master key in the file C{path}, which must exist.
    @raise CommandError: it cannot be read.
    """
    from suto_server.masterkey import MasterKey, MasterKeyError

    if not os.path.isfile(path):
        raise CommandError(f"there is no master key {path}")
    try:
        return MasterKey.load_or_create(path)
    except MasterKeyError as error:
        raise CommandError(str(error)) from None


def init(args, io) -> int:
    """
    Make the data folder (mode 0700), its store (or the schema of the
    PostgreSQL store) and its master key, as the daemon's first start
    would; the TLS certificate is left to the daemon, which makes it for
    the host name it serves.
    """
    from suto_server.masterkey import MasterKey, MasterKeyError
    from suto_server.store.open import open_store

    data = os.path.abspath(args.data)
    database = args.store or os.path.join(data, DATABASE_FILE)
    if args.store is None and os.path.exists(database):
        raise CommandError(f"{data} already holds a store")
    try:
        data = prepare_data_folder(data)
        MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
        open_store(database).close()
    except (OSError, MasterKeyError, StoreError) as error:
        raise CommandError(f"cannot create {data}: {error}") from None
    store = args.store or DATABASE_FILE
    io.say(f"created {data}: store {store}, master key {MASTER_KEY_FILE}")
    return 0


def _refuse_postgres(args, command: str) -> None:
    """
    @raise CommandError: the store is a PostgreSQL database, which
        C{command} cannot copy.
    """
    if args.store is not None:
        raise CommandError(
            f"suto-admin {command} copies a SQLite store only: back up a "
            "PostgreSQL store with pg_dump and restore it with pg_restore, "
            f"and copy {MASTER_KEY_FILE} from the data folder yourself"
        )


def _fill(data: str, staging: str) -> list[str]:
    """
    Copy the data folder C{data} into the empty folder C{staging}.

    @return: the names of the files copied.
    """
    with read_only_store(existing_store(data)) as store:
        store.backup_to(os.path.join(staging, DATABASE_FILE))
    written = [DATABASE_FILE]
    for name in KEY_FILES:
        source = os.path.join(data, name)
        if os.path.exists(source):
            with open(source, "rb") as handle:
                write_atomically(os.path.join(staging, name), handle.read())
            written.append(name)
    return written


def backup(args, io) -> int:
    """
    Copy the data folder's store, master key and TLS files into the new
    folder C{args.destination} (mode 0700, files 0600), live.
    """
    _refuse_postgres(args, "backup")
    destination = os.path.abspath(args.destination)
    if os.path.lexists(destination):
        raise CommandError(f"{destination} exists: a backup goes to a new folder")
    parent, name = os.path.split(destination)
    try:
        staging = tempfile.mkdtemp(prefix=f".{name}.", dir=parent)
    except OSError as error:
        raise CommandError(f"cannot create {destination}: {error}") from None
    try:
        written = _fill(args.data, staging)
        os.rename(staging, destination)
        # The backup's name must survive a power cut before it is reported.
        sync_directory(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in written:
        io.say(f"wrote {os.path.join(destination, name)}")
    return 0


def _refuse_running_daemon(data: str, socket: str) -> None:
    """
    @raise CommandError: the daemon of the data folder C{data} answers on
        its admin socket C{socket}, or holds the socket's lock file or the
        data folder's lock.
    """
    from twisted.python.lockfile import isLocked

    from suto_server.datalock import is_held

    try:
        call(socket, "GET", "/v1/status", timeout=10.0)
    except DaemonUnreachable:
        socket_locked = os.path.isdir(os.path.dirname(socket)) and isLocked(
            f"{socket}.lock"
        )
        if not (socket_locked or is_held(data)):
            return
    raise CommandError(f"the daemon of {data} is running: stop it to restore")


def refuse_unopened(key_file: str, profiles, whose: str, done: str) -> None:
    """
    @param key_file: the master key's file, which must exist.
    @param whose: names the key in the message (C{"the master key of
        DIR"}).
    @param done: what was not done, for the message (C{"restored"}).
    @raise CommandError: the key cannot be read, or does not open the key
        of one of C{profiles}: the store would serve dead profiles with
        it.
    """
    from suto_server.masterkey import MasterKeyError

    key = _master_key(key_file)
    for profile in profiles:
        try:
            key.open_key(profile.username, profile.key_id, profile.key_sealed)
        except MasterKeyError:
            raise CommandError(
                f"{whose} does not open the key of {profile.username}: not {done}"
            ) from None


def _check_backup(source: str) -> list[str]:
    """
    Check the backup in the folder C{source}: a sound store whose audit
    chain is intact, and a master key that opens every profile's key.

    @return: the names of the files to put back.
    @raise CommandError: it is not a backup to restore.
    """
    with read_only_store(os.path.join(source, DATABASE_FILE)) as store:
        problems = store.verify_audit()
        profiles = store.list_profiles()
    if problems:
        raise CommandError(
            f"the audit log of {source} is broken ({problems[0]}): not restored"
        )
    refuse_unopened(
        os.path.join(source, MASTER_KEY_FILE),
        profiles,
        f"the master key of {source}",
        "restored",
    )
    return [DATABASE_FILE] + [
        name for name in KEY_FILES if os.path.exists(os.path.join(source, name))
    ]


def restore(args, io) -> int:
    """
    Put the backup in the folder C{args.source} back into the data folder,
    once it is checked and the daemon is known to be stopped.
    """
    from suto_server.masterkey import MASTER_KEY_MODE

    _refuse_postgres(args, "restore")
    source = os.path.abspath(args.source)
    names = _check_backup(source)
    data = os.path.abspath(args.data)
    _refuse_running_daemon(data, args.admin_socket)
    from suto_server.datalock import DataFolderLock, DataFolderLocked

    try:
        data = prepare_data_folder(data)
        # Held while the files are put back, so a server started meanwhile
        # (systemd restarting it) stops at its start instead of serving a
        # half-restored folder.
        lock = DataFolderLock.acquire(data)
    except DataFolderLocked as error:
        raise CommandError(f"{error}: stop it to restore") from None
    except OSError as error:
        raise CommandError(f"cannot restore into {data}: {error}") from None
    try:
        restore_files(
            data,
            {
                name: (
                    os.path.join(source, name),
                    MASTER_KEY_MODE if name == MASTER_KEY_FILE else 0o600,
                )
                for name in names
            },
        )
    except OSError as error:
        raise CommandError(f"cannot restore into {data}: {error}") from None
    finally:
        lock.release()
    for name in names:
        io.say(f"restored {os.path.join(data, name)}")
    return 0
