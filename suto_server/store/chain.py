# -*- test-case-name: tests.audit.test_log -*-
"""
The audit log as a hash chain: each record's hash covers the record and
the hash of the record before it, so a record removed, moved or edited
breaks the chain where it was.

    hash = SHA-256(encode_parts(previous hash, time, event, user, source,
                                reason, locations))

The first record's previous hash is L{GENESIS}, 32 zero bytes.  The time
is its IEEE 754 double, big-endian (so the same time stored as an int or
read back as a float links the same); the user and the source, either of
which may be absent, and the locations are each a nested C{encode_parts}
of zero or more parts, so an absent value never encodes like a present
one.

Every record also keeps the previous hash it was linked to.  That lets
L{verify} tell a record edited in place (its hash no longer matches what
it says) from one with a record missing before it or one out of order (its
previous hash is not the hash of the record before it).

A chain shows breaks inside itself only.  Records removed from its end
leave it whole (the ids a store numbers its records by show those, see
L{verify_numbered}), and whoever can rewrite the whole database can
rebuild the chain after the record they changed: the alerts sent elsewhere as things happen are the copy such an
intruder cannot reach.
"""

import hashlib
import struct
from dataclasses import replace

from suto_server.core.keyschedule import KeyScheduleError, encode_parts

#: The previous hash of the first record.
GENESIS = bytes(32)


def _optional(value):
    """
    @return: the nested encoding of C{value}: no parts for L{None}, one
        part otherwise.
    """
    return encode_parts() if value is None else encode_parts(value)


def link(previous, event):
    """
    The hash of C{event} appended after a record whose hash is
    C{previous}.

    @param previous: the previous record's hash (L{GENESIS} for the
        first).
    @param event: an L{suto_server.store.records.AuditEvent}.
    @return: 32 bytes.
    @raise ValueError: a field cannot be encoded (as happens to a record
        edited with a value of the wrong type).
    """
    try:
        return hashlib.sha256(
            encode_parts(
                previous,
                struct.pack(">d", event.time),
                event.event,
                _optional(event.username),
                _optional(event.source),
                event.reason,
                encode_parts(*event.locations),
            )
        ).digest()
    except (KeyScheduleError, TypeError, struct.error) as error:
        raise ValueError(f"a record cannot be encoded: {error}") from None


def chained(previous, event):
    """
    @return: C{event} as the store keeps it after a record whose hash is
        C{previous}: with its previous hash and its own.
    @raise ValueError: see L{link}.
    """
    return replace(event, previous_hash=previous, hash=link(previous, event))


def chained_all(previous, events):
    """
    @return: C{events} as the store keeps them after a record whose hash
        is C{previous}, each chained to the one before it.
    @raise ValueError: see L{link}.
    """
    stored = []
    for event in events:
        stored.append(chained(previous, event))
        previous = stored[-1].hash
    return stored


def verify(events):
    """
    Walk a chain and say where it is broken.

    @param events: the L{suto_server.store.records.AuditEvent}s, in the
        order they were appended.
    @return: a L{list} of problems, each a L{str} naming the record (by its
        position, from 1) and what is wrong with it, first break first;
        empty when the chain is intact.
    """
    return [problem for _, problem in breaks(events)]


def breaks(events):
    """
    L{verify}, with the position of each problem.

    @return: a L{list} of C{(position, problem)}, by position.
    """
    events = list(events)
    positions = {GENESIS: 0}
    for position, event in enumerate(events, 1):
        positions.setdefault(event.hash, position)
    found = []
    expected = GENESIS
    for position, event in enumerate(events, 1):
        problem = _problem(position, event, expected, positions)
        if problem is not None:
            found.append((position, problem))
        expected = event.hash
    return found


def _problem(position, event, expected, positions):
    """
    @param expected: the hash of the record before C{event}.
    @param positions: the position of each record by its hash, with
        L{GENESIS} at 0.
    @return: what is wrong with C{event} at C{position}, or L{None}.
    """
    try:
        intact = event.hash == link(event.previous_hash, event)
    except ValueError:
        intact = False
    if not intact:
        return f"record {position} was edited: its hash does not match it"
    if event.previous_hash == expected:
        return None
    follows = positions.get(event.previous_hash)
    if follows is None and position == 1:
        return "record 1 is not the first: the records before it were removed"
    if follows is None:
        return (
            f"record {position} does not follow record {position - 1}: a "
            f"record between them was removed, or the one before rewritten"
        )
    if follows == 0:
        return f"record {position} is out of order: it was the first record"
    return (
        f"record {position} is out of order: it was appended after record "
        f"{follows}"
    )


def verify_numbered(records, last_given):
    """
    L{verify} for a store that numbers its records: the ids tell what the
    chain alone cannot.  They are given out one after the other from 1,
    and the store remembers the last one given, so records removed from
    the end, even if more were appended since, leave missing ids.

    @param records: C{(id, event)} pairs, by id.
    @param last_given: the last id the store gave out, or L{None} if it
        never gave one.
    @return: what L{verify} returns, with the missing ids among the
        problems, in the order of the records.
    """
    records = list(records)
    found = breaks(event for _, event in records)
    expected = 1
    for position, (number, _) in enumerate(records, 1):
        if number != expected:
            found.append((position, _missing(expected, number - 1)))
        expected = number + 1
    if last_given is not None and last_given >= expected:
        found.append((len(records) + 1, _missing(expected, last_given)))
    found.sort(key=lambda problem: problem[0])
    return [problem for _, problem in found]


def _missing(first, last):
    """
    @return: the problem of the records of ids C{first} to C{last} having
        been removed.
    """
    if first == last:
        return f"the record of id {first} was removed"
    return f"the records of ids {first} to {last} were removed"
