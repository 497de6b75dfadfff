"""
An enrolled fleet made without the enrollment conversation, for the
rotation and memory scenarios.

Enrolling one endpoint through the real conversation costs a one-time
password hash on each side (sha512-crypt, about 4 ms of CPU each), so ten
thousand would take minutes before anything is measured.  Instead the
server's store is seeded before the server starts, with the server's own
code, leaving each profile as L{suto_server.rules.enrollment.Enrollment.complete}
does: the first key comes from L{keyschedule.first_key} over fresh random
data and a fresh fingerprint hash, and it is stored sealed with the
server's L{MasterKey}.  The profiles go in together, through the store's
bulk load, SQLite or a PostgreSQL store several server processes share.
The load generator gets the matching client profiles (key, key id,
fingerprint hash) in a file of the run's temporary folder.

What seeding skips is the password proof, the sealed transport of the
random data and the enrollment window's own row; every rotation afterwards is the real conversation, so a
profile seeded wrongly shows at once as a rotation that fails.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field

from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, schemes
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE
from suto_server.masterkey import MasterKey
from suto_server.store.checks import check_profile
from suto_server.store.open import open_store
from suto_server.store.records import Profile
from suto_server.store.sql.rows import PROFILE_COLUMNS, profile_row
from suto_server.store.sql.transfer import TableRows

#: The most endpoints one run may seed: issue 21's fleet on one host.
#: Whether a host can hold it depends on its open-file limit
#: (L{bench.descriptors}).
MAX_ENDPOINTS = 100_000

#: How many loopback addresses the endpoints connect from, spread
#: evenly: at most ten endpoints share one at L{MAX_ENDPOINTS}, below the
#: server's default --max-per-source of 32 connections per address.
#: Ports are no bound: a socket bound to its own address draws its
#: ephemeral port among that address's, so each address has the whole
#: range (32768-60999 by default) for its ten connections.
SOURCE_ADDRESSES = 10_000

#: The columns of L{profile_row}'s rows, as L{TableRows} names them.
_PROFILE_COLUMNS = tuple(name.strip() for name in PROFILE_COLUMNS.split(","))


class FleetFileError(ValueError):
    """
    A fleet file is malformed.
    """


@dataclass(frozen=True)
class Member:
    """
    One seeded endpoint: the profile the agent would have stored, and the
    fingerprint hash its machine computes.
    """

    profile: EnrolledProfile
    fingerprint_hash: bytes = field(repr=False)


def user_name(index: int) -> str:
    """
    @return: the profile name of endpoint C{index}.
    """
    return f"rot{index:05d}"


def source_address(index: int) -> str:
    """
    @return: the loopback address endpoint C{index} connects from
        (127.1.0.1 to 127.1.39.250, L{SOURCE_ADDRESSES} in all).  Its
        profile is seeded as enrolled from there, so the server's location
        tracking sees an endpoint that never moved.
    """
    slot = index % SOURCE_ADDRESSES
    return f"127.1.{slot // 250}.{slot % 250 + 1}"


def seed(
    data: str, count: int, server_port: int, pin: str, store: str | None = None
) -> list[Member]:
    """
    Enroll C{count} profiles in the store of the data folder C{data} (the
    server must not be running), with the master key the server will load
    from there.

    The profiles go in through the store's bulk path, its
    L{IStoreTransfer.load} (what C{suto-admin store copy} writes with), in
    one transaction: one enrollment's transaction per profile took 13-39 s
    for 10 000 profiles over PostgreSQL on two busy cores, so several
    minutes for 100 000.  What lands in the store is what
    L{IWindowStore.complete_enrollment} leaves behind (the profile, no
    window), each profile passing the same L{check_profile}.

    @param server_port: where the endpoints will reach the server.
    @param store: the location of the store (L{open_store}), if not the
        data folder's SQLite file; it must hold nothing yet.
    @param pin: the server certificate's fingerprint, as enrollment gives
        it to the agent.
    @return: the endpoints, in order.
    @raise ValueError: C{count} is out of range.
    """
    if not 1 <= count <= MAX_ENDPOINTS:
        raise ValueError(f"the fleet must have 1 to {MAX_ENDPOINTS} endpoints")
    master_key = MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
    # The windows' one-time password, which the first keys are derived
    # from: one hash serves every endpoint, since seeding never proves it.
    otp_hash = schemes.hash_password(secrets.token_urlsafe(16), "sha512_crypt")
    members, rows = [], []
    for index in range(count):
        member, profile = _enrolled(index, otp_hash, master_key, server_port, pin)
        check_profile(profile)
        members.append(member)
        rows.append(profile_row(profile))
    store = open_store(store or os.path.join(data, DATABASE_FILE))
    try:
        store.load([TableRows("profiles", _PROFILE_COLUMNS, rows)])
    finally:
        store.close()
    return members


def _enrolled(
    index: int, otp_hash: str, master_key: MasterKey, server_port: int, pin: str
) -> tuple[Member, Profile]:
    """
    @return: endpoint C{index} as its agent holds it, and its profile as
        L{suto_server.rules.enrollment.Enrollment.complete} stores it:
        the first key from fresh random data and a fresh fingerprint hash,
        sealed with C{master_key}, enrolled from the endpoint's address.
    """
    user = user_name(index)
    now = time.time()
    fingerprint_hash = os.urandom(keyschedule.FINGERPRINT_SIZE)
    key = keyschedule.first_key(
        os.urandom(keyschedule.RANDOM_SIZE),
        fingerprint_hash,
        keyschedule.password_secret(otp_hash, user),
        user,
    )
    key_id = keyschedule.key_id(key)
    profile = Profile(
        username=user,
        fingerprint_hash=fingerprint_hash,
        key_sealed=master_key.seal_key(user, key_id, key),
        key_id=key_id,
        generation=0,
        enrolled_at=now,
        location=source_address(index),
        location_name=None,
    )
    member = Member(
        EnrolledProfile(
            user=user,
            server_host="127.0.0.1",
            server_port=server_port,
            pin=pin,
            key=key,
            key_id=key_id,
            generation=0,
            enrolled_at=now,
        ),
        fingerprint_hash,
    )
    return member, profile


def write(path: str, members: list[Member]) -> None:
    """
    Write C{members} to C{path}, one JSON object a line, readable by this
    user only (it holds keys).
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        for member in members:
            profile = member.profile
            handle.write(
                json.dumps(
                    {
                        "user": profile.user,
                        "port": profile.server_port,
                        "pin": profile.pin,
                        "key": profile.key.hex(),
                        "key_id": profile.key_id,
                        "generation": profile.generation,
                        "enrolled_at": profile.enrolled_at,
                        "fingerprint": member.fingerprint_hash.hex(),
                    }
                )
                + "\n"
            )


def read(path: str, first: int, count: int) -> list[Member]:
    """
    Read C{count} endpoints from C{path}, from the C{first} (from 0).

    @raise FleetFileError: the file holds fewer, or a line is malformed.
    @raise OSError: the file cannot be read.
    """
    if first < 0 or not 1 <= count <= MAX_ENDPOINTS:
        raise FleetFileError("the range of endpoints is out of bounds")
    members = []
    with open(path, encoding="ascii") as handle:
        for number, line in enumerate(handle):
            if number < first:
                continue
            if len(members) == count:
                break
            members.append(_member(line))
    if len(members) != count:
        raise FleetFileError(f"{path} holds fewer than {first + count} endpoints")
    return members


def _member(line: str) -> Member:
    try:
        entry = json.loads(line)
        return Member(
            EnrolledProfile(
                user=entry["user"],
                server_host="127.0.0.1",
                server_port=int(entry["port"]),
                pin=entry["pin"],
                key=bytes.fromhex(entry["key"]),
                key_id=entry["key_id"],
                generation=int(entry["generation"]),
                enrolled_at=float(entry["enrolled_at"]),
            ),
            bytes.fromhex(entry["fingerprint"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise FleetFileError(f"a fleet line is malformed: {error}") from None
