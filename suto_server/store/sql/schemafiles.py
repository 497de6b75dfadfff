# -*- test-case-name: tests.store.sqlite.test_upgrade,tests.store.postgres.test_connection -*-
"""
How a SQL store's schema files are named and read, for every SQL store.

A store's schema lives in versioned SQL files in a folder of its own: each
C{upgrade-to-vN.sql} turns version N-1 into version N, and a C{vN.sql} is
the full schema of version N (it creates the one-row C{version} table
too).  Only v1 and the newest version are kept whole: v1 is where every
chain of upgrades starts, and the newest creates a fresh database in one
script.  A database of any version between is v1 followed by its upgrade
scripts, so no version's tables are written out twice.  The highest
version named by either kind of file is the version the store writes.
"""

import os
import re

from suto_server.store.errors import StoreError

_SCHEMA_NAME = re.compile(r"(upgrade-to-)?v([1-9][0-9]*)\.sql")


def _schema_versions(schema_dir):
    """
    @param schema_dir: a directory of schema files.
    @return: two sets: the versions C{schema_dir} holds a full schema
        (C{vN.sql}) of, and those it holds an upgrade script
        (C{upgrade-to-vN.sql}) to.
    @raise StoreError: it holds no full schema, or cannot be listed.
    """
    try:
        names = os.listdir(schema_dir)
    except OSError as e:
        raise StoreError(f"cannot list schema files: {e}") from e
    full, upgrades = set(), set()
    for match in map(_SCHEMA_NAME.fullmatch, names):
        if match is not None:
            kind = upgrades if match.group(1) else full
            kind.add(int(match.group(2)))
    if not full:
        raise StoreError(f"no vN.sql schema file in {schema_dir}")
    return full, upgrades


def newest_version(schema_dir):
    """
    @param schema_dir: a directory of schema files.
    @return: the highest N for which C{schema_dir} holds C{vN.sql} or
        C{upgrade-to-vN.sql}.
    @raise StoreError: it holds no full schema, or cannot be listed.
    """
    return max(set().union(*_schema_versions(schema_dir)))


def upgrade_scripts(schema_dir, version, target):
    """
    Read every script that upgrades schema C{version} to C{target}.

    @return: a list of (step, script) pairs, one for each version after
        C{version} up to C{target}, in order.
    @raise StoreError: a script is missing or cannot be read.
    """
    return [
        (step, read_script(schema_dir, f"upgrade-to-v{step}.sql"))
        for step in range(version + 1, target + 1)
    ]


def creation_scripts(schema_dir, version):
    """
    Read the scripts that build a new database of schema C{version}: the
    newest full schema up to C{version}, then the upgrades from it.

    @return: the full schema's text and a list of (step, script) pairs as
        L{upgrade_scripts} gives them.
    @raise StoreError: a script is missing or cannot be read.
    """
    full, _ = _schema_versions(schema_dir)
    base = max(number for number in full if number <= version)
    return (
        read_script(schema_dir, f"v{base}.sql"),
        upgrade_scripts(schema_dir, base, version),
    )


def read_script(schema_dir, name):
    """
    @return: the text of the schema file C{name} in C{schema_dir}.
    @raise StoreError: the file cannot be read.
    """
    try:
        with open(os.path.join(schema_dir, name), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise StoreError(f"cannot read schema file {name}: {e}") from e
