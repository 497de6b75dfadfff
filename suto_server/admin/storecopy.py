# -*- test-case-name: tests.admin.test_storecopy -*-
"""
C{suto-admin store copy --from LOCATION --to LOCATION [--replace]}: a
whole deployment moved from one store to another, SQLite to PostgreSQL
or back (a location is a SQLite file's path or a C{postgresql://} URI,
which names no password, as C{--store} does).

Everything goes through the stores' one export and import surface,
L{suto_server.store.transfer.IStoreTransfer}: accounts with their
hashes, windows, profiles with their current and previous sealed keys,
confirmation, offline marks and reconnection steps, retired keys, moves,
the blacklist and the audit log with its ids and chain fields unchanged.
The source is read from one snapshot and written to the destination in
one transaction, so the destination holds the whole copy or nothing new.

The copy is a move: a daemon still serving the source afterwards would
rotate keys the destination never learns of, and its agents would look
like clones to the daemon started on the destination.  So the copy
refuses while a daemon holds the data folder lock of a SQLite source or
destination.  A PostgreSQL store is shared by daemons on other hosts,
whose locks cannot be seen from here: the rule is to stop them all
first, and the copy checks it afterwards, by reading the source again
and failing when it changed meanwhile.

Then it verifies: the source's audit chain before anything is written
(a broken log is not carried along), and afterwards the destination's
(the verification C{suto-admin audit verify} runs) and every table's
rows against the source's, by count and by content.

The profiles' keys travel sealed under the deployment's master key
(PROTOCOL.md §8.4), which stays in the data folder: the daemon that
serves the destination must be given the same C{master.key}.  Given
C{--master-key FILE}, the copy first checks that this key opens every
profile's key, and refuses otherwise.

Exit status: 0 copied and verified; 1 refused or failed, the destination
unchanged; 3 copied but not verified (the source changed meanwhile, or
the destination differs): do not serve the destination, stop what wrote
and copy again with C{--replace}; 2 a usage error.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import ExitStack, closing

from suto_server.admin.backup import refuse_unopened
from suto_server.admin.deployment import without_password
from suto_server.core.commandline import CommandError
from suto_server.store.errors import StoreError

#: The exit status of a copy made but not verified.
UNVERIFIED = 3


def _folder_of(location: str) -> str | None:
    """
    @return: the data folder a SQLite store at C{location} is in, or
        L{None} for a PostgreSQL store.
    """
    from suto_server.store.open import is_postgres

    if is_postgres(location):
        return None
    return os.path.dirname(os.path.abspath(location))


def _refuse_served(location: str, role: str) -> None:
    """
    @raise CommandError: a daemon holds the data folder lock of the
        SQLite store at C{location}, the copy's C{role}.
    """
    from suto_server.datalock import is_held

    folder = _folder_of(location)
    if folder is not None and is_held(folder):
        raise CommandError(
            f"a daemon serves the {role} {location}: stop it first, so no "
            "key rotates after the copy is made"
        )


def _same(source: str, destination: str) -> bool:
    """
    @return: whether both locations name the same store.
    """
    if _folder_of(source) is None or _folder_of(destination) is None:
        return source == destination
    return os.path.realpath(source) == os.path.realpath(destination)


def _transferable(store, location: str):
    """
    @return: C{store}, which must provide L{IStoreTransfer}.
    @raise CommandError: it does not.
    """
    from suto_server.store.transfer import IStoreTransfer

    if not IStoreTransfer.providedBy(store):
        raise CommandError(f"the store at {location} cannot be copied")
    return store


def _digest(table) -> tuple[int, str]:
    """
    @return: how many rows C{table} holds, and a digest of all of them in
        order: two stores hold the same rows exactly when these match.
    """
    digest = hashlib.sha256()
    for row in table.rows:
        digest.update(repr(row).encode("utf-8"))
    return len(table.rows), digest.hexdigest()


def _noting(tables, digests: dict):
    """
    @return: C{tables}, each one's L{_digest} put into C{digests} as it
        goes by.
    """
    for table in tables:
        digests[table.name] = _digest(table)
        yield table


def _digests(store) -> dict:
    """
    @return: the L{_digest} of every table of C{store}, by name.
    """
    digests = {}
    with closing(store.dump()) as tables:
        for _ in _noting(tables, digests):
            pass
    return digests


def _refuse_broken(source, location: str) -> None:
    """
    @raise CommandError: the audit log of C{source} is broken, which a
        copy would only hide.
    """
    problems = source.verify_audit()
    if problems:
        raise CommandError(
            f"the audit log of {location} is broken ({problems[0]}): not copied"
        )


def _refuse_filled(destination, location: str, replace: bool) -> dict:
    """
    @return: how many rows each table of C{destination} holds.
    @raise CommandError: it holds some and C{replace} is not given.
    """
    counts = destination.count_rows()
    held = sum(counts.values())
    if held and not replace:
        raise CommandError(
            f"{location} already holds a deployment ({held} row(s)): give "
            "--replace to replace everything it holds with the copy"
        )
    return counts


def _verify(source, destination, digests: dict, location: str) -> None:
    """
    Check the copy in C{destination}: its audit chain is intact, its
    tables hold the rows the source gave (C{digests}), and the source
    still holds them.

    @raise CommandError: (status L{UNVERIFIED}) one of these does not hold.
    """
    problems = destination.verify_audit()
    if problems:
        raise CommandError(
            f"the copy's audit log is broken ({problems[0]}): do not serve {location}",
            UNVERIFIED,
        )
    differ = sorted(
        name for name, value in _digests(destination).items() if digests[name] != value
    )
    if differ:
        raise CommandError(
            f"the copy's {', '.join(differ)} differ from the source's: do "
            f"not serve {location}",
            UNVERIFIED,
        )
    if _digests(source) != digests:
        raise CommandError(
            "the source changed while it was copied: a daemon still serves "
            f"it; stop them all, then copy again with --replace (do not "
            f"serve {location} as it is)",
            UNVERIFIED,
        )


def _open(stores: ExitStack, location: str, read_only: bool):
    """
    @return: the store at C{location}, closed with C{stores}.
    @raise CommandError: it cannot be opened.
    """
    from suto_server.store.open import open_store

    try:
        store = open_store(location, read_only=read_only)
    except StoreError as error:
        raise CommandError(f"cannot open {location}: {error}") from None
    stores.callback(store.close)
    return _transferable(store, location)


def _copy(args, io, created: list) -> dict:
    """
    Copy and verify, with the checks every refusal needs done before the
    destination is touched.

    @param created: given the destination's path if this made a new
        SQLite file there.
    @return: the row counts of the copy, by table.
    """
    with ExitStack() as stores:
        source = _open(stores, args.source, read_only=True)
        _refuse_broken(source, args.source)
        if args.master_key is not None:
            refuse_unopened(
                args.master_key,
                source.list_profiles(),
                f"the master key {args.master_key}",
                "copied",
            )
        fresh = bool(_folder_of(args.destination)) and not os.path.exists(
            args.destination
        )
        destination = _open(stores, args.destination, read_only=False)
        if fresh:
            created.append(args.destination)
        replaced = _refuse_filled(destination, args.destination, args.replace)
        digests = {}
        with closing(source.dump()) as tables:
            destination.load(_noting(tables, digests))
        if args.replace and any(replaced.values()):
            io.say(f"replaced what {args.destination} held")
        del created[:]
        try:
            _verify(source, destination, digests, args.destination)
        except StoreError as error:
            raise CommandError(
                f"copied, but the copy could not be verified ({error}): do "
                f"not serve {args.destination}",
                UNVERIFIED,
            ) from None
    return {name: count for name, (count, _) in digests.items()}


def _remove(path: str) -> None:
    """
    Remove the SQLite file at C{path}, with its journal files.
    """
    for name in (path, f"{path}-wal", f"{path}-shm"):
        if os.path.exists(name):
            os.unlink(name)


def store_copy(args, io) -> int:
    """
    Copy the whole store at C{args.source} into the store at
    C{args.destination} (made if it is a SQLite file not there yet),
    verify the copy, and print what it holds.
    """
    for location in (args.source, args.destination):
        if _folder_of(location) is None:
            without_password(location)
    if _same(args.source, args.destination):
        raise CommandError("--from and --to name the same store")
    _refuse_served(args.source, "source")
    _refuse_served(args.destination, "destination")
    created = []
    try:
        counts = _copy(args, io, created)
    except StoreError as error:
        raise CommandError(f"not copied: {error}") from None
    finally:
        # A SQLite file made for a copy that failed holds nothing of it.
        for path in created:
            _remove(path)
    io.say("table\trows")
    for name, count in counts.items():
        io.say(f"{name}\t{count}")
    io.say(
        f"copied {args.source} to {args.destination}: every table matches, "
        "and the audit log is intact"
    )
    io.say(
        "the profiles' keys are sealed under the master key: serve the copy "
        "with the same master.key"
    )
    return 0
